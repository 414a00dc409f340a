#!/usr/bin/env bash
# `npm run fuzz`: scripts/fuzz.ts (seeded mutations of real frames through the
# pure decoder, checked against an independent oracle) with the project's Node 24.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh
exec node scripts/fuzz.ts "$@"
