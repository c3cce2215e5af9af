#!/usr/bin/env bash
# The message-id window's cost (issue 11): W2 (100 B, 6 partitions,
# acks=all), every record with a unique runnel.msg.id, on a topic without a
# window and on one with dedup.window.ms=600000, alternating on one fresh
# standalone broker. Prints, per run, rec/s and the broker's CPU time per
# record (utime + stime from /proc/<pid>/stat), then the machine's own
# limits (runnel-perf limits) from the same run.
#   perf/window_ab.sh [RUNS] [BUILD] [RECORDS]
set -euo pipefail
RUNS=${1:-3}
BUILD=${2:-build}
RECORDS=${3:-3000000}
BIN=$(cd "$(dirname "$0")/.." && pwd)/$BUILD/bin
PORT=${PORT:-9395}
WORK=$(mktemp -d /tmp/window_ab.XXXXXX)
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
ctl() { timeout 30 "$BIN/runnelctl" --bootstrap "127.0.0.1:$PORT" "$@" >/dev/null; }
ctl topic create nw --partitions 6
ctl topic create ww --partitions 6 --config dedup.window.ms=600000

BROKER_PID=$(pgrep -P "$BROKER" runnel-broker)  # $BROKER is the timeout wrapper
ticks() { awk '{print $14 + $15}' "/proc/$BROKER_PID/stat"; }
run() {  # run TOPIC -> "rec/s ns/record"
  local c0 c1 out rate
  c0=$(ticks)
  out=$(timeout 600 "$BIN/runnel-perf" produce --bootstrap "127.0.0.1:$PORT" --topic "$1" --partitions 6 \
        --record-size 100 --records "$RECORDS" --acks all --msg-ids unique 2>/dev/null | tail -1)
  c1=$(ticks)
  rate=$(sed -n 's/.*"records_per_sec":\([0-9.]*\).*/\1/p' <<<"$out")
  awk -v r="$rate" -v t=$((c1 - c0)) -v n="$RECORDS" 'BEGIN { printf "%.0f %.0f\n", r, t * 1e7 / n }'
}

echo "| run | no window rec/s | broker ns/record | 10-minute window rec/s | broker ns/record | ratio |"
echo "|---|---:|---:|---:|---:|---:|"
for i in $(seq "$RUNS"); do
  read -r a ca < <(run nw)
  read -r b cb < <(run ww)
  awk -v i="$i" -v a="$a" -v ca="$ca" -v b="$b" -v cb="$cb" \
    'BEGIN { printf "| %d | %d | %d | %d | %d | %.0f %% |\n", i, a, ca, b, cb, 100 * b / a }'
done
mkdir -p "$WORK/limits"
timeout 300 "$BIN/runnel-perf" limits --dir "$WORK/limits" | tail -3
