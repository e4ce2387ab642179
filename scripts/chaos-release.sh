#!/usr/bin/env bash
# The long form of the fault campaign (issue 16), to run before each release, as root, with
# iproute2 and nftables installed (see .ci/run):
#
#   scripts/chaos-release.sh                       # 5 seeds x 300 s (about 27 minutes)
#   SECONDS_PER_SEED=600 SEEDS=11,12,13 scripts/chaos-release.sh
#
# Every seed must come out clean; the last line of the output is one JSON line with every
# run's figures (faults injected, writes acknowledged, lost, diverged, duplicates, broken
# resumes). A failing seed is rerun with `npm run chaos -- --seconds N --seed S`, and its
# recorded history is kept in chaos-history.seed-S for study.
set -euo pipefail
cd "$(dirname "$0")/.."
exec npm run chaos --silent -- --seconds "${SECONDS_PER_SEED:-300}" --seeds "${SEEDS:-101,102,103,104,105}" --history "${HISTORY:-chaos-history}"
