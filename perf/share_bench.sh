#!/usr/bin/env bash
# Share group consumption (issue 13) against a plain consumer group on the
# same data, on one fresh standalone broker: RECORDS stored records of
# 100 B over 6 partitions read by 1, 2 and 4 share consumers (each a new
# group, so each reads everything) and by a consumer group of as many
# members; then 2,000 records with a 1 ms handler by 1 and 4 share
# consumers (scaling). Ends with the machine's limits (runnel-perf limits).
#   perf/share_bench.sh [BUILD] [RECORDS]
set -euo pipefail
BUILD=${1:-build}
RECORDS=${2:-2000000}
BIN=$(cd "$(dirname "$0")/.." && pwd)/$BUILD/bin
PORT=${PORT:-9411}
WORK=$(mktemp -d /tmp/share_bench.XXXXXX)
BROKER=""
cleanup() {
  if [ -n "$BROKER" ]; then kill "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

timeout 1800 "$BIN/runnel-broker" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 100); do
  timeout 5 "$BIN/runnelctl" --bootstrap "127.0.0.1:$PORT" topic list >/dev/null 2>&1 && break
  sleep 0.1
done
perf() { timeout 600 "$BIN/runnel-perf" "$@" --bootstrap "127.0.0.1:$PORT" 2>/dev/null | tail -1; }
perf produce --topic s --partitions 6 --record-size 100 --records "$RECORDS" --acks 1
for c in 1 2 4; do
  perf share --topic s --group "share$c" --consumers "$c" --records "$RECORDS" --max-seconds 300
  perf consume --topic s --group "plain$c" --consumers "$c" --records "$RECORDS" --max-seconds 300
done
perf produce --topic slow --partitions 6 --record-size 100 --records 2000 --acks 1
for c in 1 4; do
  perf share --topic slow --group "slow$c" --consumers "$c" --processing-ms 1 --records 2000 --max-seconds 300
done
mkdir -p "$WORK/limits"
timeout 300 "$BIN/runnel-perf" limits --dir "$WORK/limits" | tail -3
