#!/usr/bin/env bash
# Build the real Tap (bluesky-social/indigo cmd/tap) from the Go module proxy with
# the machine's Go, once, and print the binary's path on stdout (last line).
#
#   bash scripts/tap.sh            # -> ~/.cache/atkafka/tap/<version>/tap
#
# The binary is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/atkafka/tap/<version>/
# and reused while it runs `--help`; a cold build takes minutes (cgo sqlite), a
# cached run well under a second. test/support/tap.ts finds the binary the same way.
# Progress goes to stderr; only the path goes to stdout.
set -euo pipefail

module=github.com/bluesky-social/indigo/cmd/tap
version=v0.0.0-20260605210604-af2fec94f34c

dir="${XDG_CACHE_HOME:-$HOME/.cache}/atkafka/tap/$version"
bin="$dir/tap"
say() { printf 'tap: %s\n' "$*" >&2; }

if [[ -x $bin ]] && "$bin" --help >/dev/null 2>&1; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v go >/dev/null || { say "Go is missing: Tap needs Go >= 1.26 on PATH to build (its go.mod says go 1.26)"; exit 1; }

# Build into a fresh folder next to the cache and move the binary in at the end,
# so an interrupted build never leaves a half-written binary behind.
mkdir -p "$dir"
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
say "building $module@$version with $(go version | cut -d' ' -f3) (cold: several minutes)"
start=$SECONDS
# Tap stores its state in SQLite through gorm's cgo driver (mattn/go-sqlite3): cgo on,
# with the C toolchain scripts/setup.sh installs (build-essential).
# GOTOOLCHAIN=local: build with this Go, never download another toolchain.
CGO_ENABLED=1 GOTOOLCHAIN=local GOBIN="$tmp" go install -trimpath "$module@$version" >&2
mv -f "$tmp/tap" "$bin"
"$bin" --help >/dev/null 2>&1 || { say "built $bin but it does not run --help"; exit 1; }
say "built in $((SECONDS - start)) s"
printf '%s\n' "$bin"
