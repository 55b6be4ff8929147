#!/bin/sh
# Compiles the fast procedure launcher when a C compiler is there; without one, the agent uses
# libexec/comet-launcher.sh (same protocol, a little slower) and says so in its log.
set -eu
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1; then
  echo "note: no C compiler; comet will use libexec/comet-launcher.sh" >&2
  exit 0
fi
if [ ! -x libexec/comet-launcher ] || [ libexec/comet-launcher.c -nt libexec/comet-launcher ]; then
  cc -O2 -Wall -Wextra -o libexec/comet-launcher.tmp libexec/comet-launcher.c
  chmod 0755 libexec/comet-launcher.tmp
  mv libexec/comet-launcher.tmp libexec/comet-launcher
fi
