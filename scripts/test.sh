#!/bin/sh
# The whole test suite, as .ci/run runs it: installs what is missing, builds, then runs every test file.
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
files=$(find dist/test -name '*.test.js' | sort)
# A test that hangs fails after 5 minutes, and a file whose tests have ended exits even if a child it
# started is still alive: neither may hold CI until its limit.
exec node --test --test-concurrency=2 --test-timeout=300000 --test-force-exit --test-reporter=spec $files
