#!/usr/bin/env bash
# Collect an Apache Kafka broker's jars from Maven Central (see pom.xml) into
#   ${ATKAFKA_KAFKA_CACHE:-$HOME/.cache/atkafka}/kafka-<version>/libs
# and print that libs path as the last line of stdout. A complete cache is
# reused without running Maven, so a second run is instant and offline-safe.
#
# Env: ATKAFKA_KAFKA_VERSION  Kafka version (default: <kafka.version> in pom.xml)
#      ATKAFKA_KAFKA_CACHE    cache root (default: $HOME/.cache/atkafka)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
version="${ATKAFKA_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")}"
cache="${ATKAFKA_KAFKA_CACHE:-${HOME:?HOME is not set}/.cache/atkafka}"
dir="$cache/kafka-$version"
libs="$dir/libs"

# The marker is written last, so an interrupted download is never mistaken for a cache.
if [[ -f "$dir/.complete" ]] && compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "fetch.sh: mvn not found (install maven and a JDK 17+)" >&2; exit 1; }
mkdir -p "$dir"
# One download at a time (parallel test processes may all get here); whoever
# waited finds the finished cache.
exec 9>"$dir/.lock"
flock 9
if [[ -f "$dir/.complete" ]]; then echo "$libs"; exit 0; fi
echo "kafka: fetching Apache Kafka $version jars from Maven Central into $libs" >&2
# Download into a private folder and rename it into place, so a crash half-way
# never leaves a partial libs/.
tmp="$(mktemp -d "$dir/.libs.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
# Debian's Maven colours even batch output; strip the escapes.
mvn -B -q --no-transfer-progress -f "$pom" \
  -Dkafka.version="$version" \
  dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
if ! compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null; then
  echo "fetch.sh: Maven finished but no kafka_2.13 jar landed in $tmp" >&2
  exit 1
fi
rm -rf "$libs"
mv "$tmp" "$libs"
touch "$dir/.complete"
echo "kafka: $(ls "$libs" | wc -l) jars ready" >&2
echo "$libs"
