#!/usr/bin/env bash
# Runs each power-loss scenario (tests/integration/power_loss_test.cpp) RUNS
# times (default 20), each run with a fresh random loss moment (its seed is
# in the log: RUNNEL_POWER_LOSS_SEED=<seed> repeats it), and prints the
# table of runs, passes, failures and mean seconds. Needs root and
# /dev/fuse. Usage: tests/series/power_loss.sh [RUNS] [BUILD_DIR]
set -u
exec "$(dirname "$0")/faults.sh" "${1:-20}" "${2:-build}" \
  "power loss 1:*" "power loss 2 (negative control)*" "power loss 3:*" "power loss 4:*"
