#!/usr/bin/env bash
# Runs each fault scenario RUNS times (default 20) and prints a table of
# runs, passes and failures per scenario and the recovery times the
# scenarios print (the longest wait of one partition's writers for an ack,
# and the time from the heal to a full ISR: worst/mean over the runs), with
# the ack checker's line of every run in the log. CI runs each scenario once
# through ctest; this is the long series. Usage:
# tests/series/faults.sh [RUNS] [BUILD_DIR] [SCENARIO...]
# (SCENARIO: a doctest -tc pattern; by default the fault scenarios below;
# tests/series/power_loss.sh passes its own). Exit status: 0 when every run passed.
set -u
runs=${1:-20}
build=${2:-build}
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
  "partition 6:*"
  "partition 7:*"
)
if [[ $# -gt 2 ]]; then scenarios=("${@:3}"); fi
log="$work/series.log"
failed=0

# "worst/mean" of the numbers N in "<what> N ms" in file $1 ("-" if none).
worst_mean() {
  grep -oE "$2 [0-9]+ ms" "$1" | grep -oE '[0-9]+' |
    awk '{ if ($1 > max) max = $1; sum += $1; n++ } END { if (n) printf "%d/%d", max, sum / n; else printf "-" }'
}

printf '%-28s %5s %5s %5s %7s %13s %13s\n' scenario runs pass fail "mean s" "ack wait ms" "ISR full ms"
for s in "${scenarios[@]}"; do
  pass=0; fail=0; total=0
  : >"$work/recovery.out"
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
    grep -E "recovery:" "$work/run.out" >>"$work/recovery.out"
  done
  printf '%-28s %5d %5d %5d %7d %13s %13s\n' "${s%%:*}" "$runs" "$pass" "$fail" $((total / runs / 1000)) \
    "$(worst_mean "$work/recovery.out" waited)" "$(worst_mean "$work/recovery.out" 'ISR was full')"
  failed=$((failed + fail))
done
echo "log: $log (failed runs' output beside it)"
[[ $failed -eq 0 ]]
