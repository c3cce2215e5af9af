#!/usr/bin/env bash
# Runnel developer entry point. Every command is safe to rerun.
#   ./dev.sh deps    install the missing Debian packages
#   ./dev.sh build   configure + build (Release) into build/, binaries in build/bin/
#   ./dev.sh test    deps + build + the whole ctest suite, then the unit tests under ASan+UBSan
#   ./dev.sh run     deps + build + start a standalone broker on 127.0.0.1:9292, data in ./data
#   ./dev.sh asan    build + run the unit tests under ASan+UBSan only (build-asan/)
set -euo pipefail
cd "$(dirname "$0")"

JOBS=${JOBS:-2}
PACKAGES=(
  g++ cmake ninja-build pkg-config
  libasio-dev libflatbuffers-dev flatbuffers-compiler
  libzookeeper-mt-dev zookeeper
  liburing-dev libspdlog-dev doctest-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "dev.sh: need root (or sudo) to install packages: $*" >&2; exit 1
  fi
}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
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
    ;;
  asan) deps; unit_tests_asan ;;
  run)
    deps; build
    mkdir -p data
    echo "dev.sh: starting runnel-broker on 127.0.0.1:9292, data in ./data (Ctrl-C stops it cleanly)"
    exec build/bin/runnel-broker --listen 127.0.0.1:9292 --data-dir ./data "${@:2}"
    ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; [ "$cmd" = help ] || exit 2 ;;
esac
