#!/usr/bin/env bash
# `npm run demo`: the whole path on this machine, nothing from the internet at run time:
#   a local Kafka broker -> a local replay of the real relay capture (looped, 100 events/s)
#   -> atkafka firehose relay -> a live view of what lands in Kafka.
# Runs for DEMO_SECONDS (default 30; 0 = until Ctrl-C), then stops everything cleanly and
# prints what landed. Installs prerequisites first when needed (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh
exec node scripts/demo.ts "$@"
