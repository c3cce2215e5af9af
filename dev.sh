#!/usr/bin/env bash
# Runnel developer entry point. Every command is safe to rerun.
#   ./dev.sh deps    install the missing Debian packages
#   ./dev.sh build   configure + build (Release) into build/, binaries in build/bin/
#   ./dev.sh test    deps + build + the whole ctest suite, then the unit tests under ASan+UBSan,
#                    then each libFuzzer target for 15 s (RUNNEL_SKIP_ASAN=1 / RUNNEL_SKIP_FUZZ=1 skip those)
#   ./dev.sh run     deps + build + start a standalone broker on 127.0.0.1:9292, data in ./data
#   ./dev.sh asan    build + run the unit tests under ASan+UBSan only (build-asan/)
#   ./dev.sh fuzz [SECONDS]  clang-16 libFuzzer targets (build-fuzz/), each run SECONDS (60) over its seed corpus
#   ./dev.sh peer-deps  install RabbitMQ, NATS and their Go clients for perf/queue_compare.sh
set -euo pipefail
cd "$(dirname "$0")"

JOBS=${JOBS:-2}
PACKAGES=(
  g++ cmake ninja-build pkg-config
  libasio-dev libflatbuffers-dev flatbuffers-compiler
  libzookeeper-mt-dev zookeeper
  liburing-dev libspdlog-dev doctest-dev
  fuse3 libfuse3-dev
  libfaketime iproute2
)
# ./dev.sh fuzz only: clang-16 and its libFuzzer/sanitizer runtimes.
FUZZ_PACKAGES=(clang-16 libclang-rt-16-dev)
FUZZ_TARGETS=(request_decoder batch response_decoder log_recovery zk_state)
# ./dev.sh peer-deps only (perf/queue_compare.sh): the queue peers Runnel's share groups are
# measured against, RabbitMQ and NATS JetStream, and the Go toolchain with their Debian clients.
PEER_PACKAGES=(rabbitmq-server nats-server golang-go
  golang-github-rabbitmq-amqp091-go-dev golang-github-nats-io-go-nats-dev)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "dev.sh: need root (or sudo) to install packages: $*" >&2; exit 1
  fi
}

deps() { install_missing "${PACKAGES[@]}"; }

install_missing() {  # install_missing <package>...
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  echo "dev.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure() {  # configure <dir> [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}

build() {
  configure build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j "$JOBS"
}

build_asan() {
  configure build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNNEL_SANITIZE=ON -DRUNNEL_BUILD_PERF=OFF
  cmake --build build-asan -j "$JOBS" --target schemas_tests storage_tests meta_tests group_tests request_decoder_fuzz_driver
}

unit_tests_asan() {
  build_asan
  echo "== unit tests under ASan+UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure -j "$JOBS"
}

build_fuzz() {
  configure build-fuzz -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNNEL_BUILD_PERF=OFF \
    -DRUNNEL_FUZZ=ON
  cmake --build build-fuzz -j "$JOBS" --target fuzz_targets
}

# Each target for $1 seconds over a copy of tests/fuzz/corpus/<target>/
# (the seeds stay as committed); crash files land in build-fuzz/fuzz-run/<target>/.
run_fuzz() {
  local seconds=$1 failed=() t dir log rc execs cov
  build_fuzz
  echo "== fuzzing each target for ${seconds}s"
  printf '%-18s %14s %8s  %s\n' target executions cov result
  for t in "${FUZZ_TARGETS[@]}"; do
    dir=build-fuzz/fuzz-run/$t
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
    log=$dir/fuzz.log
    rc=0
    "build-fuzz/bin/${t}_fuzz" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)  # none if it died at once
    if [ "$rc" -eq 0 ]; then
      printf '%-18s %14s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" ok
    else
      failed+=("$t")
      printf '%-18s %14s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "CRASHED (exit $rc), log $log"
      grep -E 'ERROR: |SUMMARY: |runtime error|property broken|Test unit written to' "$log" | sed 's/^/    /' || true
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "dev.sh fuzz: crashed: ${failed[*]} (reproduce: build-fuzz/bin/<target>_fuzz <crash file>)" >&2
    exit 1
  fi
}

run_tests() {
  echo "== test suite (Release)"
  ctest --test-dir build --output-on-failure -j "$JOBS"
}

cmd=${1:-help}
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  test)
    deps; build
    run_tests
    if [ "${RUNNEL_SKIP_ASAN:-0}" != 1 ]; then unit_tests_asan; fi
    # CI's short fuzzing run: every libFuzzer target for 15 s (./dev.sh fuzz for longer).
    if [ "${RUNNEL_SKIP_FUZZ:-0}" != 1 ]; then
      install_missing "${FUZZ_PACKAGES[@]}"
      run_fuzz "${RUNNEL_FUZZ_SECONDS:-15}"
    fi
    ;;
  asan) deps; unit_tests_asan ;;
  peer-deps) install_missing "${PEER_PACKAGES[@]}" ;;
  fuzz)
    seconds=${2:-60}
    [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "dev.sh fuzz: SECONDS must be a number, not '$seconds'" >&2; exit 2; }
    deps; install_missing "${FUZZ_PACKAGES[@]}"
    run_fuzz "$seconds"
    ;;
  run)
    deps; build
    mkdir -p data
    echo "dev.sh: starting runnel-broker on 127.0.0.1:9292, data in ./data (Ctrl-C stops it cleanly)"
    exec build/bin/runnel-broker --listen 127.0.0.1:9292 --data-dir ./data "${@:2}"
    ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; [ "$cmd" = help ] || exit 2 ;;
esac
