"""Training precision: examples/s of ``--mixed-precision auto`` vs fp32 vs bf16, and the bf16
accuracy guardrail (dev metric and downstream Tatoeba), each measured in one run.

* ``throughput``: :func:`xstilts.train.loop.train` on MNLI with the builtin
  multilingual-e5-small, ``--steps`` optimizer steps of ``--batch-size``, once per precision
  (``no`` = fp32, ``auto``, ``bf16``) and round in its own process, the order rotated from round
  to round; the ratio to fp32 is the median of the per-round ratios. ``auto`` is bf16 on a CPU
  with native bf16 (AMX / AVX512-BF16) and fp32 otherwise: the issue's target is >= 1.5x on
  the first kind of host and equal on the second. On a CPU without native bf16, the ``bf16``
  row shows what emulated bf16 would cost (why ``auto`` does not pick it there).
* ``guardrail``: ``xstilts run benchmarks/specs/dtype-guardrail.yaml`` (quickstart-sized MNLI
  and XNLI runs, fp32 and bf16 training, seeds 0-2, Tatoeba subset encoded in fp32), then,
  per task and seed, bf16 minus fp32 in the final dev metric and the Tatoeba mean accuracy
  (both directions, 10 languages, layer 12), next to the seed-to-seed spread of fp32 (the
  noise the difference is judged against). The fp32 and bf16 runs of a seed train on the same
  rows in the same order (the spec's grid shows it), so the difference is the precision alone.
  bf16's *numerics* do not depend on the host (autocast rounds the matrix-product inputs to
  bf16 and accumulates in fp32 whether the CPU has bf16 instructions or emulates them), so the
  guardrail measured on any CPU speaks for an AMX host; its speed does not.

``--only table`` prints the table from what the guardrail run has finished so far.

Usage: ``python benchmarks/bench_train_dtype.py [--only throughput,guardrail,table] [--steps 30]
[--rounds 2] [--precisions no,auto,bf16]`` (``--precisions no,auto`` on a CPU without native
bf16, where a bf16 run takes about ten times as long).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import (
    DATA,
    REPO,
    header,
    peak_rss_mb,
    rate_table,
    subprocess_rounds,
    xstilts_train_rate,
)
from xstilts.experiment.store import ResultStore

SPEC = REPO / "benchmarks" / "specs" / "dtype-guardrail.yaml"
PRECISIONS = ["no", "auto", "bf16"]


def run_variant(args: argparse.Namespace) -> dict:
    from xstilts.hardware import configure_threads

    configure_threads()
    rate = xstilts_train_rate(
        model=args.model,
        tasks=["mnli"],
        max_examples=args.steps * args.batch_size,
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=2e-5,
        mixed_precision=args.variant,
    )
    return {"variant": args.variant, "examples_per_s": rate, "peak_rss_mb": peak_rss_mb()}


def throughput(args: argparse.Namespace) -> None:
    from xstilts.hardware import cpu_supports_bf16

    auto = "bf16" if cpu_supports_bf16() else "fp32"
    print(f"\n## training examples/s by precision (auto resolves to {auto} on this host)")
    runs = subprocess_rounds(__file__, args.precisions.split(","), args.rounds)
    rate_table(runs, "no", "fp32", "examples/s", args.rounds)
    print("no = fp32; vs fp32: median over rounds of the per-round speed ratio")


def guardrail_rows(store: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    """``(task, precision, seed) -> {loss, dev, tatoeba}`` for the finished cells of a guardrail
    run's store (a run stopped part-way shows what it finished; rerunning resumes it)."""
    results = ResultStore.open_existing(store)
    cells = results.cells().set_index("cell_key")
    m = results.metrics()
    m = m[(m.task == "tatoeba") & (m.layer == 12) & (m.direction == "mean")]
    tatoeba = 100 * m[m.metric == "accuracy"].groupby("cell_key").value.mean()
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for key, cell in cells[cells.status == "done"].iterrows():
        if cell.setting == "baseline":
            out[("baseline", "-", 0)] = {"tatoeba": tatoeba[key]}
            continue
        task, precision = cell.setting.rsplit("-", 1)
        log = (Path(cell.run_dir) / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
        out[(task, precision, int(cell.seed))] = {
            "loss": [json.loads(x)["loss"] for x in log if '"loss"' in x][-1],  # last window
            "dev": 100 * json.loads(cell.train_metrics)["final_score"],
            "tatoeba": tatoeba[key],
        }
    return out


def run_guardrail() -> None:
    """``xstilts run`` of the guardrail spec (resumes a run stopped part-way)."""
    env = {**os.environ, "XSTILTS_DATA": str(DATA), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "xstilts", "run", str(SPEC), "--no-report"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"xstilts run failed:\n{proc.stderr[-3000:]}")


def guardrail_table() -> None:
    """The paired table from the guardrail run's store: seeds with both precisions done."""
    print(f"\n## bf16 vs fp32 training: {SPEC.relative_to(REPO)}")
    rows = guardrail_rows(REPO / "runs" / "dtype-guardrail" / "results.sqlite")
    base = rows.pop(("baseline", "-", 0))["tatoeba"]
    print(f"baseline (no training) Tatoeba mean accuracy: {base:.2f}")
    print(f"{'task':<6}{'metric':<9}{'seed':>5}{'fp32':>8}{'bf16':>8}{'bf16-fp32':>11}")
    for task in ("mnli", "xnli"):
        for metric in ("loss", "dev", "tatoeba"):
            f = ".4f" if metric == "loss" else ".2f"
            seeds = sorted(s for t, p, s in rows if t == task and p == "fp32"
                           and (task, "bf16", s) in rows)  # fmt: skip
            if not seeds:
                print(f"{task:<6}{metric:<9}  no seed has both precisions finished")
                continue
            diffs = []
            for seed in seeds:
                a, b = rows[(task, "fp32", seed)][metric], rows[(task, "bf16", seed)][metric]
                diffs.append(b - a)
                print(f"{task:<6}{metric:<9}{seed:>5}{a:>8{f}}{b:>8{f}}{b - a:>+11{f}}")
            mean = statistics.fmean(diffs)
            sd_diff = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
            fp32 = [v[metric] for (t, p, _), v in rows.items() if t == task and p == "fp32"]
            spread = statistics.stdev(fp32) if len(fp32) > 1 else float("nan")
            print(f"{task:<6}{metric:<9}{'mean':>5}{'':>16}{mean:>+11{f}}   (sd of the"
                  f" differences {sd_diff:{f}}; sd of fp32 over its {len(fp32)} seeds"
                  f" {spread:{f}})")  # fmt: skip
    print("loss: training loss, mean of the last log window (steps 21-25); dev: the task's main"
          " dev metric (accuracy, 300 held-out rows), points; tatoeba: mean accuracy over 10"
          " languages x 2 directions, first 300 pairs each, layer 12, points")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="throughput,guardrail")
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precisions", default=",".join(PRECISIONS), help="throughput variants")
    ap.add_argument("--variant", choices=PRECISIONS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    only = set(args.only.split(","))
    header(f"bench_train_dtype: {args.model}")
    if "throughput" in only:
        print(f"MNLI, {args.steps} steps x {args.batch_size}, max length {args.max_length}")
        throughput(args)
    if "guardrail" in only:
        run_guardrail()
    if only & {"guardrail", "table"}:
        guardrail_table()


if __name__ == "__main__":
    main()
