#!/usr/bin/env bash
# Runs each fault scenario RUNS times (default 20) and prints a table of
# runs, passes and failures per scenario, with the ack checker's line of
# every run in the log. CI runs each scenario once through ctest; this is
# the long series. Usage: tests/series/faults.sh [RUNS] [BUILD_DIR] [SCENARIO...]
# (SCENARIO: a doctest -tc pattern; by default the fault scenarios below;
# tests/series/power_loss.sh passes its own). Exit status: 0 when every run passed.
set -u
runs=${1:-20}
build=${2:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin="$build/bin/integration_tests"
[[ -x $bin ]] || { echo "faults.sh: $bin not built (./dev.sh build)" >&2; exit 2; }
# A private copy: a rebuild while the series runs does not change it.
work=$(mktemp -d /tmp/runnel-faults.XXXXXX)
cp "$bin" "$work/integration_tests"
scenarios=(
  "faults 1:*"
  "faults 2:*"
  "faults 7: an idempotent*"
  "faults 8: answers lost*"
  "faults 9: the leader's wall clock*"
  "partition 1:*"
  "partition 2:*"
  "partition 3:*"
  "partition 4:*"
  "partition 5:*"
)
if [[ $# -gt 2 ]]; then scenarios=("${@:3}"); fi
log="$work/series.log"
failed=0
printf '%-28s %5s %5s %5s %9s\n' scenario runs pass fail "mean s"
for s in "${scenarios[@]}"; do
  pass=0; fail=0; total=0
  for ((i = 1; i <= runs; i++)); do
    start=$(date +%s%3N)
    if timeout 300 "$work/integration_tests" -tc="$s" >"$work/run.out" 2>&1; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
      cp "$work/run.out" "$work/failed-$(echo "$s" | tr -c 'a-z0-9' '_')-$i.out"
    fi
    end=$(date +%s%3N)
    total=$((total + end - start))
    { echo "== $s run $i"; grep -E "MESSAGE|ERROR" "$work/run.out"; } >>"$log"
  done
  printf '%-28s %5d %5d %5d %9d\n' "${s%%:*}" "$runs" "$pass" "$fail" $((total / runs / 1000))
  failed=$((failed + fail))
done
echo "log: $log (failed runs' output beside it)"
[[ $failed -eq 0 ]]
