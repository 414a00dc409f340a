#!/usr/bin/env bash
# `npm run demo`: the whole path on this machine, nothing from the internet at run time:
#   a local Kafka broker -> a local replay of the real relay capture (looped, 100 events/s)
#   -> atkafka firehose relay -> a live view of what lands in Kafka.
# Runs for DEMO_SECONDS (default 30; 0 = until Ctrl-C), then stops everything cleanly and
# prints what landed. Installs prerequisites first when needed (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh

# ---- the PLC directory: a real @did-plc/server (tools/peers/plc.ts) seeded with the capture's
# own DID documents, so the bridge's identity enrichment resolves every DID locally. The bridge
# gets it as --plc-host through its env var ATKAFKA_PLC_HOST (demo.ts builds the command line).
[[ -d tools/peers/node_modules/@did-plc/server ]] || bash scripts/setup.sh || exit 1
plc_out="$(mktemp)"
# Its own process group (set -m): Ctrl-C goes to the demo, which drains the bridge
# while the PLC still answers; the PLC stops on exit below.
set -m
node tools/peers/plc.ts --seed test/fixtures/corpus/did_docs.json.zst --serve-handles >"$plc_out" &
plc_pid=$!
set +m
stop_plc() {
  kill -TERM "$plc_pid" 2>/dev/null && wait "$plc_pid" 2>/dev/null
  rm -f "$plc_out"
}
trap stop_plc EXIT
trap 'exit 143' TERM
plc_url=''
for _ in $(seq 1 300); do
  plc_url="$(sed -n 's/^{"url":"\(http[^"]*\)"}$/\1/p' "$plc_out")"
  [[ -n $plc_url ]] && break
  kill -0 "$plc_pid" 2>/dev/null || { echo "demo: the PLC directory (tools/peers/plc.ts) exited" >&2; exit 1; }
  sleep 0.1
done
[[ -n $plc_url ]] || { echo "demo: the PLC directory printed no URL within 30 s" >&2; exit 1; }
echo "demo: PLC directory at $plc_url (@did-plc/server, the capture's DID documents): --plc-host $plc_url" >&2
export ATKAFKA_PLC_HOST="$plc_url"
# ---- end of the PLC directory

node scripts/demo.ts "$@"
