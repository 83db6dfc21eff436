#!/bin/bash
# The dry-run estimate vs the measured quickstart: one fresh cache, one machine, nothing else
# running. The first dry run converts the builtin model and calibrates (neither is part of the
# estimate); the second prints the estimate from the cached calibration; then the quickstart
# runs for real from the same cache (no embeddings cached yet).
# Usage: XSTILTS_DATA=../shared/data [XSTILTS_BIN=.venv/bin/xstilts XSTILTS_PYTHON=.venv/bin/python] \
#   benchmarks/estimate_vs_quickstart.sh [OUTPUT_DIR]
# The last step prints each evaluation's own timings and padding from the results store.
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
echo "== per evaluation: the run's own timings and padding (results store), the tokens the estimate counted"
"${XSTILTS_PYTHON:-python}" - "$out" <<'PY'
import json
import sqlite3
import sys
from importlib import resources
from pathlib import Path

from xstilts.experiment.estimate import evaluation_tokens
from xstilts.experiment.spec import load_spec
from xstilts.models import resolve_model

with resources.as_file(resources.files("xstilts.configs") / "quickstart.yaml") as path:
    spec = load_spec(path)
tokens = evaluation_tokens(spec, resolve_model(spec.models[0]).load_tokenizer())
store = sqlite3.connect(Path(sys.argv[1]) / "results.sqlite")
print(f"{'evaluation':<17}{'tokens':>9}{'encode s':>10}{'tokens/s':>10}{'padding':>9}"
      f"{'search s':>10}{'load s':>8}")
for key, summary in store.execute("SELECT eval_key, summary FROM evals ORDER BY rowid"):
    doc = json.loads(summary)
    t, enc = doc["timings"], doc["encoding"]
    rate = tokens[key] / t["encode_s"]
    print(f"{key:<17}{tokens[key]:>9.0f}{t['encode_s']:>10.1f}{rate:>10.0f}"
          f"{enc['padding_ratio']:>9.3f}{t['search_s']:>10.2f}{t['load_s']:>8.1f}")
PY
