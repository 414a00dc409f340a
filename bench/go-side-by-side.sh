#!/usr/bin/env bash
# The Go at-kafka and atkafka side by side at a steady rate (issue 13): one after the other, ROUNDS
# times, against the same broker, the replay relay looping the corpus at RATE frames/s, and the
# bench's PLC stand-in as --plc-host (both enrich by default). CPU of each process tree and of the
# broker from /proc over WINDOW s after WARM s.
#   GO_ATKAFKA=/path/to/at-kafka [RATE=2000] [ROUNDS=2] [WARM=10] [WINDOW=20] bash bench/go-side-by-side.sh
# The Go binary is yours to build (see docs/benchmarks.md); nothing here builds it.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${GO_ATKAFKA:?set GO_ATKAFKA to the Go at-kafka binary}"
source scripts/lib-node24.sh >/dev/null 2>&1
RATE=${RATE:-2000}; WARM=${WARM:-10}; WINDOW=${WINDOW:-20}; ROUNDS=${ROUNDS:-1}
out=$(mktemp -d); echo "logs in $out"
node scripts/kafka/broker.ts --full-jit > $out/broker.txt 2>&1 &
BL=$!
for i in $(seq 90); do grep -q KAFKA_BROKER_PID $out/broker.txt && break; sleep 1; done
B=$(grep KAFKA_BOOTSTRAP $out/broker.txt | cut -d= -f2); BP=$(grep KAFKA_BROKER_PID $out/broker.txt | cut -d= -f2)
node bench/plc-stand-in.ts 0 > $out/plc.txt 2>&1 &
PLCPID=$!; sleep 1; P=$(head -1 $out/plc.txt)
cpu() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null | head -1; }
cpus() { local t=0; for p in "$@"; do c=$(cpu $p); t=$((t + ${c:-0})); done; echo $t; }
tree() { echo $1 $(pgrep -P $1); }
limit=$(( RATE * (WARM + WINDOW + 30) ))
for round in $(seq $ROUNDS); do
for impl in go ts; do
  node bin/atkafka.js replay --file test/fixtures/corpus/frames.bin.zst --loop --rate $RATE --limit $limit > $out/relay-$impl.txt 2>$out/relay-$impl.err &
  RP=$!
  for i in $(seq 30); do [ -s $out/relay-$impl.txt ] && break; sleep 0.2; done
  R=$(head -1 $out/relay-$impl.txt)
  T=side-$impl-$round-$(date +%s)
  if [ $impl = go ]; then
    $GO_ATKAFKA --bootstrap-servers $B --output-topic $T firehose --relay-host $R --plc-host $P relay > $out/impl-$impl.log 2>&1 &
  else
    node bin/atkafka.js firehose relay --relay-host $R --bootstrap-servers $B --output-topic $T --plc-host $P --cursor-file $out/cursor-$T.json > $out/impl-$impl.log 2>&1 &
  fi
  IP=$!
  sleep $WARM
  c0=$(cpus $(tree $IP)); b0=$(cpu $BP); t0=$(date +%s.%N)
  sleep $WINDOW
  c1=$(cpus $(tree $IP)); b1=$(cpu $BP); t1=$(date +%s.%N)
  rss=$(awk '/VmRSS/{print $2}' /proc/$IP/status)
  kill -TERM $IP; sleep 3; kill -9 $IP 2>/dev/null; kill $RP 2>/dev/null
  awk -v c=$((c1-c0)) -v b=$((b1-b0)) -v t0=$t0 -v t1=$t1 -v r=$RATE -v impl=$impl -v rss=$rss -v round=$round 'BEGIN{s=t1-t0; printf "%s round %d: %.3f cores, %.1f CPU-s per M events; broker %.1f CPU-s per M; RSS %d MB\n", impl, round, c/100/s, c/100/(r*s)*1e6, b/100/(r*s)*1e6, rss/1024}'
done
done
kill $PLCPID; kill $BL 2>/dev/null; wait 2>/dev/null
