#!/usr/bin/env bash
# Restart time after kill -9 of a standalone broker that took GB of acks=1
# traffic: how long until it listens again, with and without flush.ms.
# Usage: perf/restart_after_crash.sh [GB] [BUILD_DIR] [FLUSH_MS...]
#   GB        data written before the kill (default 20)
#   FLUSH_MS  one run per value; 0 = flush.ms off (default: "0 1000")
# Prints one line per run: flush.ms, bytes written, restart seconds, and
# the broker's own open line ("opened N partition logs").
set -u
gb=${1:-20}
build=${2:-build}
shift 2 2>/dev/null || shift $#
flushes=("$@")
[[ ${#flushes[@]} -gt 0 ]] || flushes=(0 1000)
perf="$build/bin/runnel-perf"
broker="$build/bin/runnel-broker"
[[ -x $perf && -x $broker ]] || { echo "restart_after_crash.sh: build first (./dev.sh build)" >&2; exit 2; }
record=16384
records=$((gb * 1024 * 1024 * 1024 / record))
for f in "${flushes[@]}"; do
  dir=$(mktemp -d /tmp/runnel-restart.XXXXXX)
  port=$((20000 + RANDOM % 20000))
  # Started directly (no timeout wrapper): kill -9 must reach the broker itself.
  "$broker" --data-dir "$dir/data" --listen "127.0.0.1:$port" --shards 2 --set "log.flush.ms=$f" \
    >"$dir/out" 2>"$dir/broker.log" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
  timeout 3000 "$perf" produce --bootstrap "127.0.0.1:$port" --topic r --partitions 6 --record-size $record \
    --records $records --acks 1 --max-seconds 2400 >"$dir/perf.out" 2>&1
  sleep 2  # let flush.ms pass once after the last write
  kill -9 $pid; wait $pid 2>/dev/null
  written=$(du -sb "$dir/data" | cut -f1)
  start=$(date +%s%N)
  "$broker" --data-dir "$dir/data" --listen "127.0.0.1:$port" --shards 2 --set "log.flush.ms=$f" \
    >"$dir/out2" 2>"$dir/broker2.log" &
  pid=$!
  for _ in $(seq 6000); do grep -q listening "$dir/out2" 2>/dev/null && break; sleep 0.01; done
  end=$(date +%s%N)
  kill $pid; wait $pid 2>/dev/null
  printf 'flush.ms=%-6s written %6.1f GB  restart %6.2f s  | %s\n' "$f" "$(awk -v w="$written" 'BEGIN{print w/1073741824}')" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN{print (b-a)/1e9}')" "$(grep -o 'opened .*' "$dir/broker2.log" | head -1)"
  grep -m1 '"mode"' "$dir/perf.out" | sed 's/^/    produce: /'
  rm -rf "$dir"
done
