"""Shared helpers for the benchmark scripts (timing, data location, printing)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XSTILTS_DATA", REPO.parent / "shared" / "data"))


def interleaved_rounds(
    fns: dict[str, Callable[[], object]], rounds: int = 7
) -> dict[str, list[float]]:
    """Wall times per variant over ``rounds`` rounds; each round runs every variant once.

    On a shared or burstable machine the speed drifts over minutes (20-40 % on ours): timing
    variant A several times and then variant B turns that drift into a fake difference.
    Running all variants in each round, in an order rotated from round to round, puts every
    variant through the same conditions; compare them with :func:`paired_ratio`.
    """
    times: dict[str, list[float]] = {name: [0.0] * rounds for name in fns}
    for r in range(rounds):
        for name in _rotated(list(fns), r):
            t0 = time.perf_counter()
            fns[name]()
            times[name][r] = time.perf_counter() - t0
    return times


def _rotated(names: list[str], r: int) -> list[str]:
    """Round ``r``'s order: the variant list rotated by ``r``."""
    return names[r % len(names) :] + names[: r % len(names)]


def subprocess_rounds(script: str, variants: list[str], rounds: int) -> dict[str, list[dict]]:
    """Run ``script --variant V <this process's arguments>`` per variant and round, rotating.

    Each run is its own process (its own peak RSS) and prints one JSON line last. Variants
    that failed in any round are dropped (with their stderr tail printed), so the lists that
    remain are aligned round by round for :func:`paired_ratio`.
    """
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(rounds):
        for variant in _rotated(variants, r):
            cmd = [sys.executable, script, "--variant", variant, *sys.argv[1:]]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{variant}: failed\n{proc.stderr[-3000:]}")
                continue
            runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {v: rs for v, rs in runs.items() if len(rs) == rounds}


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of ``num[r] / den[r]``: the drift-robust ratio of two variants."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def header(title: str) -> None:
    """Print what machine and software a result came from."""
    import platform

    import torch

    from xstilts.hardware import available_cpus, cpu_model, cpu_supports_bf16

    print(f"# {title}")
    print(
        f"# {platform.processor() or platform.machine()} ({cpu_model()}, native bf16: "
        f"{'yes' if cpu_supports_bf16() else 'no'}), {available_cpus()} of {os.cpu_count()} "
        f"CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def xstilts_train_rate(**config: object) -> float:
    """Examples/s of :func:`xstilts.train.loop.train` over its optimizer steps: one run in a
    temporary directory, logging once (``log_every`` = steps), without checkpoints; ``config``
    holds the :class:`~xstilts.train.config.TrainConfig` fields of the variant."""
    import tempfile

    from xstilts.train.config import TrainConfig
    from xstilts.train.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            out=Path(tmp) / "r",
            eval_max_examples=8,
            save_every=10**9,
            log_every=config["max_steps"],
            data_dir=DATA,
            **config,
        )
        train(cfg)
        log = [json.loads(x) for x in (cfg.out / "train_log.jsonl").read_text().splitlines()]
        return next(r["examples_per_s"] for r in log if "examples_per_s" in r)


def rate_table(
    runs: dict[str, list[dict]], reference: str, label: str, unit: str, rounds: int
) -> None:
    """Print each variant's fastest rate, peak RSS and its speed ratio to ``reference`` (named
    ``label``; the median over rounds of the per-round ratio: :func:`paired_ratio`)."""
    seconds = {v: [1 / r["examples_per_s"] for r in rs] for v, rs in runs.items()}
    print(f"{rounds} rounds (rotating order); {unit} = fastest round")
    print(f"{'variant':<18}{unit:>12}{'peak MB':>9}{'vs ' + label:>12}")
    for name, rs in runs.items():
        best = max(r["examples_per_s"] for r in rs)
        peak = max(r["peak_rss_mb"] for r in rs)
        ratio = paired_ratio(seconds[reference], seconds[name])
        print(f"{name:<18}{best:>12.2f}{peak:>9.0f}{ratio:>12.2f}")
