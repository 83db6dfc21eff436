#!/bin/bash
# The dry-run estimate vs the measured quickstart: one fresh cache, one machine, nothing else
# running. The first dry run converts the builtin model and calibrates (neither is part of the
# estimate); the second prints the estimate from the cached calibration; then the quickstart
# runs for real from the same cache (no embeddings cached yet).
# Usage: XSTILTS_DATA=../shared/data benchmarks/estimate_vs_quickstart.sh [OUTPUT_DIR]
set -euo pipefail
out=${1:-$(mktemp -d)/qs}
XSTILTS_CACHE=$(mktemp -d)
export XSTILTS_CACHE
xstilts=${XSTILTS_BIN:-xstilts}
echo "== dry run (converts the builtin model, calibrates, estimates)"
/usr/bin/time -f "dry-run wall %e s" "$xstilts" quickstart --dry-run --output "$out" | tail -12
echo "== the same, calibration cached"
/usr/bin/time -f "dry-run wall %e s (cached calibration)" "$xstilts" quickstart --dry-run \
  --output "$out" | sed -n '/estimate on this machine/,$p'
echo "== measured"
/usr/bin/time -f "quickstart wall %e s, peak RSS %M kB" "$xstilts" quickstart --output "$out" \
  2>&1 | grep -E "done$|cells run|quickstart wall"
