"""A second ``xstilts evaluate`` of the same model and data, served by the embedding cache.

Runs the real command twice in fresh subprocesses with an empty cache directory and reports
wall times (process start, model resolution, search and writing included). The second run
reads every embedding from the cache and never loads the model.
Target (issue: fast encoding): the second run >= 10x faster than the first.
Usage: ``python benchmarks/bench_cache.py [--langs xtreme] [--task tatoeba]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DATA, header


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--task", default="tatoeba")
    ap.add_argument("--langs", default="xtreme")
    ap.add_argument("--layer", default="all")
    args = ap.parse_args()
    header(f"bench_cache: {args.model}, {args.task} {args.langs}, layer {args.layer}")
    exe = Path(sys.executable).parent / "xstilts"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XSTILTS_CACHE": tmp, "XSTILTS_DATA": str(DATA)}
        # convert the builtin model outside the timed runs (a one-off per machine)
        subprocess.run([str(exe), "models", "list"], env=env, check=True, capture_output=True)
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from xstilts.models import resolve_model; resolve_model({args.model!r})",
            ],
            env=env,
            check=True,
        )
        times, docs = [], []
        for run in (1, 2):
            out = Path(tmp) / f"run{run}.json"
            cmd = [
                str(exe),
                "evaluate",
                "--model",
                args.model,
                "--task",
                args.task,
                "--langs",
                args.langs,
                "--layer",
                args.layer,
                "--prefix",
                "query: ",
                "--out",
                str(out),
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
            docs.append(json.loads(out.read_text()))
    same = docs[0]["metrics"] == docs[1]["metrics"]
    for run, (t, d) in enumerate(zip(times, docs, strict=True), start=1):
        e = d["encoding"]
        print(
            f"run {run}: {t:7.1f}s  encoded {e['sentences_encoded']:>6}  from cache "
            f"{e['sentences_from_cache']:>6}  model loaded: {e['model_loaded']}"
        )
    print(f"identical metrics: {same}; first / second: {times[0] / times[1]:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
