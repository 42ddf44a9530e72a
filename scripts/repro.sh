#!/usr/bin/env bash
# `npm run repro`: the README's main job on a fresh machine, at toy size (preset quick) unless
# PRESET says otherwise: Table 1 (dataset statistics), Table 2 (every span method x dataset x seed),
# the window-size sweep, the memory frontier, and their reports in reports/<experiment>/<preset>/index.{md,html}.
#
#   npm run repro                      # PRESET=quick
#   PRESET=cpu JOBS=2 npm run repro    # the cpu preset (reports/*/cpu/): about half a day on 2 cores; table2-main's
#                                      # 3 seeds alone are 10-11 hours of one core (configs/presets/cpu.yaml)
#   JOBS=2 npm run repro               # two training runs at once (on native each gets one of the 2 cores)
#
# Every step is idempotent: finished runs are skipped, so an interrupted repro continues where it
# stopped when started again. A failed run does not stop the script (its report shows it); the exit
# status is non-zero when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PRESET="${PRESET:-quick}"
JOBS="${JOBS:-1}"
status=0
started=$SECONDS

longner() { node bin/longner.js "$@"; }

step() {
  local t0=$SECONDS
  echo
  echo "== $* =="
  if ! "$@"; then
    echo "repro: step failed: $*" >&2
    status=1
  fi
  echo "== done in $((SECONDS - t0)) s: $* =="
}

step longner report experiments/table1-datasets.yaml
step longner run experiments/table2-main.yaml --preset "$PRESET" --jobs "$JOBS"
step longner report experiments/table2-main.yaml --preset "$PRESET"
# Per-type F1 reuses table2-main's runs (same run ids): nothing is left to run.
step longner run experiments/per-type.yaml --preset "$PRESET" --jobs "$JOBS"
step longner report experiments/per-type.yaml --preset "$PRESET"
step longner run experiments/window-sweep.yaml --preset "$PRESET" --jobs "$JOBS"
step longner report experiments/window-sweep.yaml --preset "$PRESET"
# The memory frontier has its own presets: `quick`, else the full sweep (its file's defaults).
if [ "$PRESET" = quick ]; then
  step longner memory experiments/memory-frontier.yaml --preset quick
else
  step longner memory experiments/memory-frontier.yaml
fi
step longner report experiments/fig7-efficiency.yaml --preset "$PRESET"

echo
echo "repro: finished in $((SECONDS - started)) s (preset $PRESET); reports in reports/<experiment>/$PRESET/index.html"
exit $status
