#!/bin/sh
# npm run bench: builds, then runs every benchmark in bench/ and prints a JSON summary.
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node dist/bench/run.js
