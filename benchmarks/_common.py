"""Shared helpers for the benchmark scripts (timing, data location, printing)."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XSTILTS_DATA", REPO.parent / "shared" / "data"))


def best_of_interleaved(fns: dict[str, Callable[[], object]], repeat: int = 3) -> dict[str, float]:
    """Minimum wall time per variant, the variants run round-robin ``repeat`` times.

    On a shared or burstable machine the speed drifts over minutes; timing variant A three
    times and then variant B three times turns that drift into a fake difference between
    them. Round-robin puts every variant through the same conditions.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def header(title: str) -> None:
    """Print what machine and software a result came from."""
    import platform

    import torch

    print(f"# {title}")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
