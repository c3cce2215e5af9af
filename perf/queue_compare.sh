#!/usr/bin/env bash
# Runnel's share groups (a work queue on a log, issue 13) against two peers
# people use for queues, in one run, one system at a time (each started
# fresh, measured, stopped; all on 127.0.0.1, all state in one temp dir):
#   - Runnel: a standalone runnel-broker; per consumer count C, a fresh
#     topic of 6 partitions, `runnel-perf produce` of MESSAGES x 100 B with
#     acks=all, then `runnel-perf share` by C share consumers (implicit
#     acknowledgement of every record).
#   - RabbitMQ 3.10 (Debian's rabbitmq-server, our own node and epmd): one
#     durable quorum queue per run (a queue is the counterpart of a
#     partition), publisher confirms (1000 in flight), then C consumers,
#     each its own connection, prefetch 500, a manual ack per message.
#   - NATS JetStream (Debian's nats-server 2.9, -js): one work-queue stream
#     per run, file storage, PublishAsync (1000 PubAcks pending), then C
#     consumers, each its own connection, on one durable pull consumer,
#     Fetch(500) and an explicit msg.Ack() per message.
# The peers are driven by perf/peers/queue_peer.go (built here with `go
# build`, offline, against Debian's Go client sources), which checks that
# every message id came back and counts duplicates. C is 1 and 4. Ends
# with the machine's limits (runnel-perf limits) and one summary table.
# Installs the peers with `./dev.sh peer-deps` when they are missing.
#   perf/queue_compare.sh [BUILD] [MESSAGES]      (defaults: build 200000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) BIN=$BUILD/bin ;; *) BIN=$ROOT/$BUILD/bin ;; esac
MESSAGES=${2:-200000}
CONSUMERS=(1 4)
WORK=$(mktemp -d /tmp/queue_compare.XXXXXX)
RUNNEL_PID="" RABBIT_PID="" EPMD_PID="" NATS_PID=""
RABBIT_NODE="qc$$@localhost"
RABBIT_SBIN=/usr/lib/rabbitmq/bin
EPMD_PORT="" RABBIT_PORT="" RABBIT_DIST_PORT=""
R=$WORK/rabbit
ROWS=()
FAILED=0

# stop PID: PID is a `timeout` wrapper (or epmd): SIGTERM reaches the server
# through it (SIGKILL would not); whatever is left after 20 s is killed.
stop() {
  local p=$1
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then pkill -9 -P "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; fi
  wait "$p" 2>/dev/null || true
}
rabbit_env() {
  env HOME="$R/home" RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RABBIT_PORT" RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" \
    RABBITMQ_MNESIA_BASE="$R/mnesia" RABBITMQ_LOG_BASE="$R/log" RABBITMQ_CONFIG_FILE="$R/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$R/enabled_plugins" RABBITMQ_CONF_ENV_FILE="$R/rabbitmq-env.conf" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" "$@"
}
stop_rabbit() {
  if [ -n "$RABBIT_PID" ]; then
    rabbit_env timeout 60 "$RABBIT_SBIN/rabbitmqctl" -n "$RABBIT_NODE" -q stop >/dev/null 2>&1 || true
    stop "$RABBIT_PID"; RABBIT_PID=""
  fi
  if [ -n "$EPMD_PORT" ]; then
    stop "$EPMD_PID"; EPMD_PID=""
    # An epmd the node started itself (ours died first) listens on our port only.
    local p
    for p in $(ss -Htlnp "sport = :$EPMD_PORT" 2>/dev/null | grep -o '"epmd",pid=[0-9]*' | cut -d= -f2 | sort -u); do
      kill "$p" 2>/dev/null || true
    done
  fi
}
cleanup() {
  stop "$RUNNEL_PID"; RUNNEL_PID=""
  stop "$NATS_PID"; NATS_PID=""
  stop_rabbit
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM  # the EXIT trap then stops what was started

TAKEN=" "
free_port() {  # free_port VAR: a 127.0.0.1 port nothing listens on, not handed out before
  local p  # (no command substitution: its subshell would forget TAKEN)
  while :; do
    p=$((20000 + RANDOM % 30000))
    case "$TAKEN" in *" $p "*) continue ;; esac
    ss -Htln "sport = :$p" | grep -q . && continue
    TAKEN="$TAKEN$p "
    printf -v "$1" '%s' "$p"
    return
  done
}
wait_port() {  # wait_port PORT PID SECONDS: until PORT accepts, PID is alive
  for _ in $(seq $(($3 * 10))); do
    kill -0 "$2" 2>/dev/null || return 1
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
field() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2" | head -1; }
row() {  # row SYSTEM C JSON_PRODUCE PRODUCE_FIELD JSON_CONSUME CONSUME_FIELD OK
  local p c
  p=$(field "$4" "$3"); c=$(field "$6" "$5")
  p=$(printf '%.0f' "${p:-0}"); c=$(printf '%.0f' "${c:-0}")
  [ "$7" = ok ] || c="$c (FAILED)"
  ROWS+=("$(printf '%-10s %9s %14s %22s' "$1" "$2" "$p" "$c")")
}

# --- the peers: installed, and queue_peer built ---
if ! command -v go >/dev/null || ! command -v nats-server >/dev/null || [ ! -x "$RABBIT_SBIN/rabbitmq-server" ] ||
  [ ! -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go ] || [ ! -d /usr/share/gocode/src/github.com/nats-io/nats.go ]; then
  echo "queue_compare: installing the peers (./dev.sh peer-deps)" >&2
  timeout 900 "$ROOT/dev.sh" peer-deps >"$WORK/peer-deps.log" 2>&1 || { tail -20 "$WORK/peer-deps.log" >&2; exit 1; }
  # The package's own service (if systemd started one) would share the CPUs.
  if [ -d /run/systemd/system ]; then timeout 60 systemctl stop rabbitmq-server nats-server >/dev/null 2>&1 || true; fi
fi
mkdir -p "$WORK/gopath/src/queue_peer" "$WORK/gocache"
cp "$ROOT/perf/peers/queue_peer.go" "$WORK/gopath/src/queue_peer/"
(cd "$WORK/gopath/src/queue_peer" && GO111MODULE=off GOPATH="$WORK/gopath:/usr/share/gocode" GOCACHE="$WORK/gocache" \
  GOFLAGS='' GOPROXY=off GOENV=off timeout 600 go build -o "$WORK/queue_peer" .)
for b in runnel-broker runnel-perf runnelctl; do
  [ -x "$BIN/$b" ] || { echo "queue_compare: $BIN/$b missing (build first)" >&2; exit 1; }
done
echo "queue_compare: $MESSAGES messages of 100 B per run; consumers ${CONSUMERS[*]}; work dir $WORK"

# --- Runnel (started as perf/share_bench.sh does) ---
free_port RUNNEL_PORT
timeout 3600 "$BIN/runnel-broker" --data-dir "$WORK/runnel" --listen "127.0.0.1:$RUNNEL_PORT" >"$WORK/runnel.log" 2>&1 &
RUNNEL_PID=$!
for _ in $(seq 100); do
  timeout 5 "$BIN/runnelctl" --bootstrap "127.0.0.1:$RUNNEL_PORT" topic list >/dev/null 2>&1 && break
  sleep 0.1
done
perf() { timeout 600 "$BIN/runnel-perf" "$@" --bootstrap "127.0.0.1:$RUNNEL_PORT" 2>>"$WORK/runnel-perf.err" | tail -1; }
for c in "${CONSUMERS[@]}"; do
  ok=ok
  prod=$(perf produce --topic "q$c" --partitions 6 --record-size 100 --records "$MESSAGES" --acks all) || ok=failed
  echo "$prod"
  cons=""
  if [ "$ok" = ok ]; then
    cons=$(perf share --topic "q$c" --group "g$c" --consumers "$c" --records "$MESSAGES" --max-seconds 300) || ok=failed
    echo "$cons"
  fi
  [ "$ok" = ok ] || { FAILED=1; tail -3 "$WORK/runnel-perf.err" >&2; }
  row runnel "$c" "$prod" records_per_sec "$cons" records_per_sec "$ok"
done
stop "$RUNNEL_PID"; RUNNEL_PID=""

# peer NAME URL EXTRA...: queue_peer for every consumer count
peer() {
  local name=$1 url=$2 c out ok
  for c in "${CONSUMERS[@]}"; do
    ok=ok
    out=$(timeout 700 "$WORK/queue_peer" "$name" --url "$url" --messages "$MESSAGES" --size 100 --consumers "$c" \
      --max-seconds 300 2>>"$WORK/$name.err" | tail -1) || ok=failed
    echo "$out"
    [ "$ok" = ok ] || { FAILED=1; tail -3 "$WORK/$name.err" >&2; }
    row "$name" "$c" "$out" produce_rec_s "$out" consume_rec_s "$ok"
  done
}

# --- RabbitMQ ---
# Debian's /usr/sbin/rabbitmq-server wrapper `su`s to the rabbitmq user and
# drops this environment; the scripts under /usr/lib/rabbitmq/bin run as
# root as they are. Everything (node name, ports, mnesia, logs, config,
# plugins, the Erlang cookie in $HOME) is in $WORK; RABBITMQ_CONF_ENV_FILE
# keeps /etc/rabbitmq/rabbitmq-env.conf out. Our own epmd on a free port
# (started first, in the foreground, so we hold its PID; the node finds it
# through ERL_EPMD_PORT and starts no other).
free_port RABBIT_PORT
free_port RABBIT_DIST_PORT
free_port EPMD_PORT
mkdir -p "$R/home" "$R/mnesia" "$R/log"
echo "[]." >"$R/enabled_plugins"
: >"$R/rabbitmq-env.conf"
cat >"$R/rabbitmq.conf" <<CFG
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
CFG
ERL_EPMD_ADDRESS=127.0.0.1 timeout 3600 epmd -port "$EPMD_PORT" -address 127.0.0.1 >"$R/epmd.log" 2>&1 &
EPMD_PID=$!
wait_port "$EPMD_PORT" "$EPMD_PID" 10 || { echo "queue_compare: epmd did not start" >&2; cat "$R/epmd.log" >&2; exit 1; }
rabbit_env timeout 3600 "$RABBIT_SBIN/rabbitmq-server" >"$R/server.log" 2>&1 &
RABBIT_PID=$!
up=""
for _ in $(seq 60); do
  kill -0 "$RABBIT_PID" 2>/dev/null || break
  if rabbit_env timeout 10 "$RABBIT_SBIN/rabbitmq-diagnostics" -n "$RABBIT_NODE" -q ping >/dev/null 2>&1; then
    rabbit_env timeout 120 "$RABBIT_SBIN/rabbitmqctl" -n "$RABBIT_NODE" -q await_startup --timeout 110 >/dev/null 2>&1 && up=1
    break
  fi
  sleep 1
done
if [ -z "$up" ] || ! wait_port "$RABBIT_PORT" "$RABBIT_PID" 30; then
  echo "queue_compare: RabbitMQ did not start" >&2; tail -20 "$R/server.log" >&2; exit 1
fi
peer rabbit "amqp://guest:guest@127.0.0.1:$RABBIT_PORT/"
stop_rabbit

# --- NATS JetStream ---
free_port NATS_PORT
timeout 3600 nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
wait_port "$NATS_PORT" "$NATS_PID" 30 || { echo "queue_compare: nats-server did not start" >&2; tail -20 "$WORK/nats.log" >&2; exit 1; }
peer nats "nats://127.0.0.1:$NATS_PORT"
stop "$NATS_PID"; NATS_PID=""

mkdir -p "$WORK/limits"
timeout 300 "$BIN/runnel-perf" limits --dir "$WORK/limits" | tail -3

echo
echo "$MESSAGES x 100 B per run; produce with acknowledged writes, consume with a per-message ack"
printf '%-10s %9s %14s %22s\n' system consumers "produce rec/s" "consume rec/s"
printf '%s\n' "${ROWS[@]}"
exit "$FAILED"
