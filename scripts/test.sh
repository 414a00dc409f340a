#!/usr/bin/env bash
# `npm test`: typecheck, then every test/**/*.test.ts with Node 24, one file at
# a time (files start their own Kafka brokers; 2 cores don't fit several).
#
#   npm test                                  # everything
#   npm test -- test/support/kafka-broker.test.ts
#   npm test -- --test-name-pattern=checkpoint
# Arguments that start with "-" go to `node --test` (use --opt=value); any
# other argument is a test file or glob and replaces the default glob.
# KAFKA_BOOTSTRAP_SERVERS=host:port runs the tests against that broker instead.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib-node24.sh

opts=() files=()
for a in "$@"; do
  if [[ $a == -* ]]; then opts+=("$a"); else files+=("$a"); fi
done
((${#files[@]})) || files=('test/**/*.test.ts')

status=0
echo "test: typecheck (tsc --noEmit -p .)"
tsc --noEmit -p . || { status=1; echo "test: typecheck FAILED"; }

echo "test: node --test $(node --version)"
# A per-test timeout so a hung test fails the run instead of eating the CI budget.
node --test --test-concurrency=1 --test-timeout=600000 "${opts[@]}" "${files[@]}" || { status=1; echo "test: tests FAILED"; }
exit "$status"
