#!/usr/bin/env bash
# Build a real HashiCorp Vault server binary for integration tests.
#
# The Vault source is NOT vendored: test/vault/go.mod pins
# github.com/hashicorp/vault as a Go tool dependency and `go build` fetches it
# from the Go module proxy (or the local module cache).
#
# The binary goes into a cache dir outside the repo:
#   ${COMET_VAULT_CACHE:-$HOME/.cache/safecomet/vault}/vault-<tag>
# and its path is printed on stdout as the last line. Progress goes to stderr.
# Idempotent: an existing binary that runs `version` is reused as is.
set -euo pipefail

# Vault's own go.mod replaces its api/ and sdk/ submodules with local folders;
# as a dependency it gets the published api/sdk versions instead, and those
# only match its in-tree code for some tags. v1.15.1 builds and runs with
# sdk v0.10.2 and api v1.11.0 (pinned in go.mod); the 1.14.x tags tried
# (v1.14.1, v1.14.2, v1.14.10) fail to compile or panic at start-up.
VAULT_TAG="v1.15.1"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_dir="${COMET_VAULT_CACHE:-${HOME:-/root}/.cache/safecomet/vault}"
bin="${cache_dir}/vault-${VAULT_TAG}"

log() { printf '[vault-build] %s\n' "$*" >&2; }

if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
  log "using cached $("$bin" version 2>/dev/null | head -n1)"
  printf '%s\n' "$bin"
  exit 0
fi

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then
    GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
  else
    log "error: no Go toolchain found (set GO=/path/to/go)"
    exit 1
  fi
fi

# Sanity check: the pinned tag in go.mod must match VAULT_TAG.
if ! grep -Eq "github\.com/hashicorp/vault ${VAULT_TAG//./\\.}( |$)" "$here/go.mod"; then
  log "error: $here/go.mod does not pin github.com/hashicorp/vault ${VAULT_TAG}"
  exit 1
fi

mkdir -p "$cache_dir"
tmp="$(mktemp "${cache_dir}/.vault-${VAULT_TAG}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

log "building vault ${VAULT_TAG} with $("$GO" version) (a cold build takes ~5-15 min on 2 cores)"
start=$(date +%s)
(
  cd "$here"
  # GOTOOLCHAIN=local: never try to download another toolchain.
  # -mod=readonly: go.mod/go.sum pin every module; only the Go module proxy
  # (or the local module cache) is needed.
  # CGO_ENABLED=0: a static binary, no C toolchain needed.
  # Runtime GODEBUG defaults come from the godebug line in go.mod.
  GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    "$GO" build -trimpath -ldflags="-s -w" \
    -o "$tmp" github.com/hashicorp/vault
) >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
log "built in $(( $(date +%s) - start ))s: $("$bin" version 2>/dev/null | head -n1)"
printf '%s\n' "$bin"
