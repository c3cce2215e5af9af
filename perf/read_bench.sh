#!/usr/bin/env bash
# The consumer read path (issue 14, part 1): catch-up reads of stored
# records by one `runnel-perf consume` (a consumer group of one member, CRC
# verified on every batch) on one fresh standalone broker: RECORDS x 100 B,
# RECORDS/10 x 1 KiB and RECORDS/100 x 16 KiB, each over 6 partitions, RUNS
# times each; then `runnelctl consume --exit-at-end` of the 100 B topic to
# /dev/null. With OTHER (a second build dir, e.g. of the commit before a
# change) every read runs with both builds' runnel-perf, alternating, so a
# before/after comparison shares one host state. Ends with the machine's
# limits (runnel-perf limits).
#   perf/read_bench.sh [BUILD] [RECORDS] [RUNS] [OTHER]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/${1:-build}/bin
RECORDS=${2:-10000000}
RUNS=${3:-3}
OTHER=${4:-}
case "$OTHER" in /*) OTHER_BIN=$OTHER/bin ;; *) OTHER_BIN=$ROOT/$OTHER/bin ;; esac
PORT=${PORT:-9412}
WORK=$(mktemp -d /tmp/read_bench.XXXXXX)
BROKER=""
cleanup() {
  if [ -n "$BROKER" ]; then kill "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

timeout 3600 "$BIN/runnel-broker" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 100); do
  timeout 5 "$BIN/runnelctl" --bootstrap "127.0.0.1:$PORT" topic list >/dev/null 2>&1 && break
  sleep 0.1
done
rate() { grep -o '"records_per_sec":[0-9]*' | cut -d: -f2; }
produce() {  # produce TOPIC SIZE COUNT
  timeout 900 "$BIN/runnel-perf" produce --bootstrap "127.0.0.1:$PORT" --topic "$1" --partitions 6 \
    --record-size "$2" --records "$3" --acks 1 2>/dev/null | rate >/dev/null
}
consume() {  # consume BIN TOPIC COUNT GROUP
  timeout 900 "$1/runnel-perf" consume --bootstrap "127.0.0.1:$PORT" --topic "$2" --group "$4" \
    --records "$3" --max-seconds 600 2>/dev/null | rate
}
produce r100 100 "$RECORDS"
produce r1k 1024 $((RECORDS / 10))
produce r16k 16384 $((RECORDS / 100))
printf '%-6s %-4s %14s %14s\n' size run "rec/s" "rec/s (OTHER)"
for spec in "100 r100 $RECORDS" "1KiB r1k $((RECORDS / 10))" "16KiB r16k $((RECORDS / 100))"; do
  read -r label topic count <<<"$spec"
  for run in $(seq "$RUNS"); do
    this=$(consume "$BIN" "$topic" "$count" "g$run")
    other=-
    if [ -n "$OTHER" ]; then other=$(consume "$OTHER_BIN" "$topic" "$count" "o$run"); fi
    printf '%-6s %-4s %14s %14s\n' "$label" "$run" "$this" "$other"
  done
done
for run in $(seq "$RUNS"); do
  start=$(date +%s.%N)
  timeout 900 "$BIN/runnelctl" --bootstrap "127.0.0.1:$PORT" consume r100 --from-beginning --exit-at-end >/dev/null
  end=$(date +%s.%N)
  awk -v n="$RECORDS" -v a="$start" -v b="$end" 'BEGIN { printf "runnelctl consume r100 > /dev/null: %d rec/s\n", n / (b - a) }'
done
mkdir -p "$WORK/limits"
timeout 300 "$BIN/runnel-perf" limits --dir "$WORK/limits" | tail -3
