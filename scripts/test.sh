#!/bin/sh
# The whole test suite, as .ci/run runs it: installs what is missing, builds, then runs every test file.
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
files=$(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=2 --test-reporter=spec $files
