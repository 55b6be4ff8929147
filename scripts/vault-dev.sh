#!/usr/bin/env bash
# Start a real Vault dev server (in-memory, unsealed, KV v2 at secret/) on a
# free loopback port, for local development and integration tests.
#
# Usage:  scripts/vault-dev.sh     # stays in the foreground until killed
#   It prints two lines on stdout once the server answers /v1/sys/health:
#     export VAULT_ADDR=http://127.0.0.1:PORT
#     export VAULT_TOKEN=...
#   e.g.  scripts/vault-dev.sh > /tmp/vault.env &
#         until grep -q VAULT_TOKEN /tmp/vault.env; do sleep 1; done
#         . /tmp/vault.env
#
# Env:
#   VAULT_DEV_TOKEN   root token to use (default: comet-dev-root)
#   VAULT_DEV_PORT    port to listen on (default: a free one picked at random)
#   VAULT_BIN         use this vault binary instead of building one
#   VAULT_DEV_TIMEOUT seconds to wait for /v1/sys/health (default: 60)
#   COMET_VAULT_CACHE where test/vault/build.sh keeps built binaries
#
# stdout gets only the `export VAULT_ADDR=...` and `export VAULT_TOKEN=...`
# lines once the server is healthy; Vault's own log goes to stderr. The script
# exec's into `vault server -dev`, so its pid is the server's: SIGTERM/SIGINT
# (or SIGKILL) on it stops the server. Data lives in memory only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[vault-dev] %s\n' "$*" >&2; }

vault_bin="${VAULT_BIN:-}"
if [[ -z "$vault_bin" ]]; then
  vault_bin="$("$root/test/vault/build.sh" | tail -n1)"
fi
if [[ ! -x "$vault_bin" ]]; then
  log "error: vault binary not found: $vault_bin"
  exit 1
fi

token="${VAULT_DEV_TOKEN:-comet-dev-root}"

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
  elif command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    log "error: need python3 or node to pick a free port (or set VAULT_DEV_PORT)"
    return 1
  fi
}

port="${VAULT_DEV_PORT:-$(free_port)}"
addr="http://127.0.0.1:${port}"

health() {
  if command -v curl >/dev/null 2>&1; then
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$addr/v1/sys/health" 2>/dev/null)" == "200" ]]
  else
    python3 - "$addr/v1/sys/health" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
  fi
}

# This script exec's into vault below, so this shell's pid becomes vault's
# pid: killing it (even with SIGKILL) stops the server, and nothing is left
# behind. A background watcher prints the export lines once vault answers.
server_pid=$$
timeout_s="${VAULT_DEV_TIMEOUT:-60}"
# Double fork so the watcher is not left as a zombie child of vault.
( (
  deadline=$(( $(date +%s) + timeout_s ))
  until health; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      log "error: vault exited before becoming healthy"
      exit 1
    fi
    if (( $(date +%s) >= deadline )); then
      log "error: vault not healthy at $addr after ${timeout_s}s; stopping it"
      kill -TERM "$server_pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  log "vault is up (pid $server_pid) at $addr; kill $server_pid to stop it"
  printf 'export VAULT_ADDR=%s\n' "$addr"
  printf 'export VAULT_TOKEN=%s\n' "$token"
) </dev/null & )

log "starting $("$vault_bin" version 2>/dev/null | head -n1) on $addr"
# -dev needs the root token on the command line; it is a throwaway dev token.
# -dev-no-store-token: don't write ~/.vault-token. VAULT_ADDR/VAULT_TOKEN from
# the caller are cleared so that the server's own dev client ignores them.
# Vault's output goes to stderr; stdout carries only the export lines.
unset VAULT_TOKEN VAULT_ADDR
export VAULT_DISABLE_MLOCK=true
exec "$vault_bin" server -dev \
  -dev-root-token-id="$token" \
  -dev-listen-address="127.0.0.1:${port}" \
  -dev-no-store-token >&2
