#!/usr/bin/env bash
# Installs the build into a temp prefix, builds a separate project against
# it with find_package(runnel) and runs that project's test on the
# installed embedded broker. Usage: check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Quiet unless it fails; then its output is shown.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; return 1; }; }
quiet cmake --install "$build" --prefix "$tmp/prefix"
quiet cmake -S "$src/tests/install" -B "$tmp/user" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      -DEXAMPLE="$src/client/examples/quickstart.cpp"
quiet cmake --build "$tmp/user"
test -x "$tmp/user/quickstart"
test -f "$tmp/prefix/include/runnel/producer.h"
test -f "$tmp/prefix/include/runnel/testing/embedded_broker.h"
test -x "$tmp/prefix/bin/runnelctl"
# The broker's data directories go under $tmp too.
TMPDIR="$tmp" "$tmp/user/embedded_broker_test"
echo "install check: ok"
