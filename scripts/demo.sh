#!/bin/sh
# npm run demo: installs, builds, plants two sentinels in ./demo/data on an embedded store in ./demo, and runs
# comet watch in the foreground. The demo procedure only writes a notice to ./demo/FENCED.txt.
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
umask 077
DEMO="$(pwd)/demo"
mkdir -p "$DEMO/data"
cat > "$DEMO/manifest.yaml" <<MANIFEST
node: demo
sentinels:
  - path: $DEMO/data/.~lock.ledger.ods#
    create: true
    on_read: fence
  - path: $DEMO/data/aaa-invoices-2026.xlsx
    create: true
    on_read: fence
fencing:
  notice: |
    echo "\$(date -Is) FENCED by comet: \$COMET_SENTINEL was \$COMET_REASON (incident \$COMET_INCIDENT)" >> '$DEMO/FENCED.txt'
default_fencing: notice
MANIFEST
export COMET_STORE="file:$DEMO/store" COMET_STATE_DIR="$DEMO/state" COMET_NODE=demo
status=0
./bin/run.js init --manifest "$DEMO/manifest.yaml" || status=$?
if [ "$status" -eq 1 ]; then
  echo "A sentinel was tampered with in an earlier demo: planting it anew (comet reset --replant)."
  ./bin/run.js reset --replant
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
cat <<HELP

comet watch is starting. In another terminal, play ransomware:
    echo encrypted >> '$DEMO/data/aaa-invoices-2026.xlsx'
then read $DEMO/FENCED.txt. As root, fanotify refuses the write itself (Operation not permitted) and
fences; otherwise inotify sees the write and fences. Stop the agent with Ctrl-C.
With the same environment, try: ./bin/run.js verify, ./bin/run.js reset --replant
    export COMET_STORE='file:$DEMO/store' COMET_STATE_DIR='$DEMO/state' COMET_NODE=demo

HELP
exec ./bin/run.js watch --interval 10
