#!/usr/bin/env bash
# Installs the build into a temp prefix and builds a separate project
# against it with find_package(runnel). Usage: check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/install" -B "$tmp/user" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      -DEXAMPLE="$src/client/examples/quickstart.cpp" >/dev/null
cmake --build "$tmp/user" >/dev/null
test -x "$tmp/user/quickstart"
test -f "$tmp/prefix/include/runnel/producer.h"
test -x "$tmp/prefix/bin/runnelctl"
echo "install check: ok"
