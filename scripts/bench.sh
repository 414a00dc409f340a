#!/usr/bin/env bash
# `npm run bench`: the relay benchmark (bench/relay-to-kafka.ts, with its stage cases), the Tap
# backfill benchmark (bench/tap-to-kafka.ts), the Jetstream one (bench/jetstream-to-kafka.ts) and the
# Wikimedia one (bench/wikimedia-to-kafka.ts),
# with the project's Node 24 and the bridge's V8 flags.
#   npm run bench                     # all four
#   npm run bench -- relay [...]      # only the relay one, with its own flags (--ops, --cases, ...)
#   npm run bench -- tap [...]        # only Tap's (--records, --window)
#   npm run bench -- jetstream [...]  # only Jetstream's (--events, --cases)
#   npm run bench -- wikimedia [...]  # only Wikimedia's (--events, --rates, --seconds)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh
case "${1:-}" in
  relay) shift; exec node --max-semi-space-size=8 bench/relay-to-kafka.ts "$@" ;;
  tap) shift; exec node --max-semi-space-size=8 bench/tap-to-kafka.ts "$@" ;;
  jetstream) shift; exec node --max-semi-space-size=8 bench/jetstream-to-kafka.ts "$@" ;;
  wikimedia) shift; exec node --max-semi-space-size=8 bench/wikimedia-to-kafka.ts "$@" ;;
esac
node --max-semi-space-size=8 bench/relay-to-kafka.ts "$@" || exit 1
echo
echo "Tap backfill (a replayed Tap stream, acks on):"
node --max-semi-space-size=8 bench/tap-to-kafka.ts || exit 1
echo
echo "Jetstream (the stand-in replaying real Jetstream output):"
node --max-semi-space-size=8 bench/jetstream-to-kafka.ts || exit 1
echo
echo "Wikimedia EventStreams (the stand-in serving the real recentchange events):"
exec node --max-semi-space-size=8 bench/wikimedia-to-kafka.ts
