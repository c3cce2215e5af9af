#!/usr/bin/env bash
# W7 (issue 14, part 2): 100 B records, 6 partitions, RF=3 on one machine:
# a real ZooKeeper (Debian's package) and three `runnel-broker --zookeeper`
# processes (2 shards each) on 127.0.0.1, all in one temp dir, and one
# `runnel-perf produce` with acks=1 and then acks=all, RUNS times each
# (a fresh topic each run). With OTHER (a second build dir, e.g. of the
# commit before a change), the same runs follow on a second cluster of
# OTHER's brokers, alternating, so before and after share the host's state.
# Ends with the machine's limits (runnel-perf limits).
#   perf/w7_bench.sh [BUILD] [RECORDS] [RUNS] [OTHER]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/${1:-build}/bin
RECORDS=${2:-3000000}
RUNS=${3:-3}
OTHER=${4:-}
case "$OTHER" in "") OTHER_BIN="" ;; /*) OTHER_BIN=$OTHER/bin ;; *) OTHER_BIN=$ROOT/$OTHER/bin ;; esac
WORK=$(mktemp -d /tmp/w7_bench.XXXXXX)
PIDS=()
cleanup() {
  # Each PID is a `timeout` wrapper: SIGTERM reaches the server through it
  # (SIGKILL would not); what is left after 10 s is killed outright.
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do pkill -9 -P "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM  # the EXIT trap then kills what was started

free_port() {  # a 127.0.0.1 port nothing listens on
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
ZK_PORT=$(free_port)
mkdir -p "$WORK/zk/data"
cat >"$WORK/zk/zoo.cfg" <<CFG
tickTime=500
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
timeout 3600 java -Xmx256m -cp "/usr/share/java/*:/etc/zookeeper/conf" org.apache.zookeeper.server.ZooKeeperServerMain \
  "$WORK/zk/zoo.cfg" >"$WORK/zk/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT; echo ruok >&3; cat <&3" 2>/dev/null)" = imok ] && break
  sleep 0.2
done

# start_cluster NAME BIN: three brokers under the chroot /NAME; their
# bootstrap list goes to $LIST (not printed: a command substitution's
# subshell would keep the PIDs from the cleanup).
start_cluster() {
  local name=$1 bin=$2 list=""
  for n in 1 2 3; do
    local port
    port=$(free_port)
    timeout 3600 "$bin/runnel-broker" --data-dir "$WORK/$name/b$n" --listen "127.0.0.1:$port" --shards 2 \
      --zookeeper "127.0.0.1:$ZK_PORT/$name" --broker-id "$n" \
      --set zookeeper.session.timeout.ms=2000 --set replica.lag.time.max.ms=2000 >"$WORK/$name.b$n.log" 2>&1 &
    PIDS+=($!)
    list="$list${list:+,}127.0.0.1:$port"
  done
  for _ in $(seq 150); do
    timeout 5 "$bin/runnelctl" --bootstrap "$list" cluster 2>/dev/null | grep -c "^ *[123] " | grep -q 3 && break
    sleep 0.2
  done
  LIST=$list
}
rate() { grep -o '"records_per_sec":[0-9]*' | cut -d: -f2; }
produce() {  # produce BIN BOOTSTRAP TOPIC ACKS
  timeout 600 "$1/runnel-perf" produce --bootstrap "$2" --topic "$3" --partitions 6 --replicas 3 \
    --record-size 100 --records "$RECORDS" --acks "$4" 2>/dev/null | rate
}
start_cluster this "$BIN"
THIS=$LIST
THAT=""
if [ -n "$OTHER_BIN" ]; then
  start_cluster other "$OTHER_BIN"
  THAT=$LIST
fi
sleep 2
printf '%-4s %14s %14s %14s %14s\n' run "acks=1" "acks=all" "acks=1 OTHER" "acks=all OTHER"
for run in $(seq "$RUNS"); do
  a1=$(produce "$BIN" "$THIS" "w7a1r$run" 1)
  aall=$(produce "$BIN" "$THIS" "w7allr$run" all)
  o1=- oall=-
  if [ -n "$THAT" ]; then
    o1=$(produce "$OTHER_BIN" "$THAT" "w7a1r$run" 1)
    oall=$(produce "$OTHER_BIN" "$THAT" "w7allr$run" all)
  fi
  printf '%-4s %14s %14s %14s %14s\n' "$run" "$a1" "$aall" "$o1" "$oall"
done
mkdir -p "$WORK/limits"
timeout 300 "$BIN/runnel-perf" limits --dir "$WORK/limits" | tail -3
