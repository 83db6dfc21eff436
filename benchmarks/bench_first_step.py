"""Time to the first optimizer step: featurizing training rows as they are drawn vs up front.

A 3-step run on all of SST-2 (67,349 rows) with the builtin multilingual-e5-small, batch 16,
max length 128, fp32, each variant in its own process (cold start, its own peak RSS):

* ``lazy``: xstilts as it is (:class:`xstilts.train.features.Features`: the rows the sampler
  draws, and the length-grouping windows they sit in, are featurized when first drawn);
* ``eager``: the same code with every training row featurized in one call before the first step
  (what xstilts did before: ``Features`` replaced by one that builds everything at once).

Both read the time from the run's own ``train_log.jsonl`` record (``first_step_s``: from the
start of ``train()`` to the end of the first optimizer step; ``setup_s``: model, data and
features). Variants alternate over rounds (the machine's speed drifts).
Usage: ``python benchmarks/bench_first_step.py [--task sst2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import DATA, header, paired_ratio, peak_rss_mb, subprocess_rounds


def run_variant(args: argparse.Namespace) -> dict:
    import xstilts.train.data as data
    from xstilts.hardware import configure_threads
    from xstilts.train.config import TrainConfig
    from xstilts.train.features import Features
    from xstilts.train.loop import train

    configure_threads()
    if args.variant == "eager":

        class Eager(Features):
            def __init__(self, examples, build) -> None:
                super().__init__(examples, build)
                self._cache = dict(enumerate(build(list(examples))))

        data.Features = Eager  # type: ignore[misc]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            model=args.model,
            tasks=[args.task],
            out=Path(tmp) / "r",
            data_dir=DATA,
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            eval_max_examples=8,
            save_every=10**9,
            log_every=args.steps,
            mixed_precision="no",
        )
        train(cfg)
        log = [json.loads(x) for x in (cfg.out / "train_log.jsonl").read_text().splitlines()]
    first = next(r for r in log if "first_step_s" in r)
    return {**first, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=["lazy", "eager"])
    p.add_argument("--model", default="builtin:multilingual-e5-small")
    p.add_argument("--task", default="sst2")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    header(f"time to first optimizer step, {args.steps}-step run on {args.task}")
    runs = subprocess_rounds(__file__, ["eager", "lazy"], args.rounds)
    print(f"{args.rounds} rounds (rotating order); seconds = median over rounds")
    print(f"{'variant':<8}{'setup s':>9}{'first step s':>14}{'features built':>18}{'peak MB':>9}")
    for name, rs in runs.items():
        setup = sorted(r["setup_s"] for r in rs)[len(rs) // 2]
        first = sorted(r["first_step_s"] for r in rs)[len(rs) // 2]
        built = rs[0]["featurized"][args.task]
        peak = max(r["peak_rss_mb"] for r in rs)
        print(f"{name:<8}{setup:>9.2f}{first:>14.2f}{built:>18}{peak:>9.0f}")
    if set(runs) == {"eager", "lazy"}:
        ratio = paired_ratio(
            [r["first_step_s"] for r in runs["eager"]], [r["first_step_s"] for r in runs["lazy"]]
        )
        print(f"time to first step, eager / lazy: {ratio:.2f}x")


if __name__ == "__main__":
    main()
