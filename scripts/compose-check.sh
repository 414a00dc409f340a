#!/usr/bin/env bash
# Check the compose files with the Compose Specification's own loader
# (compose-spec/compose-go, what `docker compose` is built on), without a Docker
# engine: builds tools/compose-check once with the machine's Go and runs it.
#
#   bash scripts/compose-check.sh                          # the five compose files, strict
#   bash scripts/compose-check.sh --os-env --dotenv docker-compose.ozone.yml   # yours, with your .env
#   bash scripts/compose-check.sh --build-only              # just print the binary's path
#
# With no file given it checks docker-compose.yml, docker-compose.tap.yml,
# docker-compose.ozone.yml, docker-compose.jetstream.yml and
# docker-compose.learn.yml with tools/compose-check/ci.env (placeholder values
# for the variables the Ozone file requires) and prints the loader's JSON summary.
# Any other arguments go to the binary (see tools/compose-check/main.go).
#
# The binary is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/atkafka/compose-check/<hash of go.mod, go.sum, main.go>/
# and rebuilt only when one of those changes; a cold build fetches compose-go from
# the Go module proxy (under a minute), a cached run takes well under a second.
# test/deploy/compose.test.ts finds the binary the same way (--build-only).
# Progress goes to stderr.
set -euo pipefail
caller="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

src=tools/compose-check
hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/atkafka/compose-check/$hash"
bin="$dir/compose-check"
say() { printf 'compose-check: %s\n' "$*" >&2; }

if ! [[ -x $bin ]] || ! "$bin" --help >/dev/null 2>&1; then
  command -v go >/dev/null || { say "Go is missing: tools/compose-check needs Go >= 1.26 on PATH to build"; exit 1; }
  # Build into a fresh folder next to the cache and move the binary in at the end,
  # so an interrupted build never leaves a half-written binary behind.
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  say "building $src with $(go version | cut -d' ' -f3)"
  start=$SECONDS
  # GOTOOLCHAIN=local: build with this Go, never download another toolchain.
  # -mod=readonly: go.sum is the checked-in one; a missing entry is an error, not a silent update.
  (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -o "$tmp/compose-check" .) >&2
  mv -f "$tmp/compose-check" "$bin"
  "$bin" --help >/dev/null 2>&1 || { say "built $bin but it does not run --help"; exit 1; }
  say "built in $((SECONDS - start)) s"
fi

if [[ ${1:-} == --build-only ]]; then
  printf '%s\n' "$bin"
  exit 0
fi
if (($# == 0)); then
  exec "$bin" --env-file "$src/ci.env" docker-compose.yml docker-compose.tap.yml docker-compose.ozone.yml docker-compose.jetstream.yml docker-compose.learn.yml
fi
cd "$caller"   # file arguments are relative to where the script was called from
exec "$bin" "$@"
