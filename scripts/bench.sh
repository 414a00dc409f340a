#!/usr/bin/env bash
# `npm run bench`: bench/relay-to-kafka.ts with the project's Node 24 and the bridge's V8 flags.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh
exec node --max-semi-space-size=8 bench/relay-to-kafka.ts "$@"
