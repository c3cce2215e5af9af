#!/usr/bin/env bash
# Runs the e2e latency workload N times, each against a fresh standalone
# broker, and prints one line per run with the hypervisor's steal beside the
# latency figures, then the runs sorted by steal.
#
#   perf/e2e_series.sh [RUNS] [BUILD_DIR]      (defaults: 10, ./build)
#
# Each run: a new broker (default shards) on 127.0.0.1:9393 with its data in
# a temp dir, then runnel-perf e2e, 250,000 × 100 B records at 50,000/s,
# acks=all, linger 1 ms, 6 partitions, the first second as warm-up.
set -euo pipefail
runs=${1:-10}
build=${2:-./build}
broker_bin=$build/bin/runnel-broker
perf_bin=$build/bin/runnel-perf
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
results=$work/results
for ((i = 1; i <= runs; i++)); do
  rm -rf "$work/data"
  "$broker_bin" --data-dir "$work/data" --listen 127.0.0.1:9393 >/dev/null 2>"$work/broker.err" &
  pid=$!
  for _ in $(seq 50); do  # up to 5 s for the listener
    (exec 3<>/dev/tcp/127.0.0.1/9393) 2>/dev/null && break
    sleep 0.1
  done
  line=$("$perf_bin" e2e --bootstrap 127.0.0.1:9393 --topic e2e --partitions 6 --record-size 100 \
    --records 250000 --rate 50000 --acks all --linger-ms 1 --warmup-seconds 1 --max-seconds 60 2>/dev/null)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  row=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("steal_ms %5d  p50 %5.2f  p99 %6.2f  p99.9 %6.2f  ack_p99 %6.2f  send_lag_p99 %5.2f" % (d["host_steal_ms"], d["p50_ms"], d["p99_ms"], d["p999_ms"], d["ack_p99_ms"], d["send_lag_p99_ms"]))' "$line")
  echo "run $i: $row"
  echo "$row" >>"$results"
done
echo "by steal:"
sort -n -k2 "$results"
