"""BUCC zh-en sample mining time (8,624 x 13,589 vectors), xstilts vs a LASER-style loop.

Both run in this process on the same random unit vectors (d=384; mining cost does not depend on
what the vectors encode):

* ``laser-style``: faiss k-NN, then margin scores computed candidate by candidate in a Python
  loop, as LASER's ``mine_bitexts.py``/XTREME's scripts do;
* ``xstilts``: :func:`xstilts.search.mine` (vectorised margins from the k-NN scores).

The printed ratio is xstilts time / LASER-style time. The issue's target: seconds, not minutes.
Usage: ``python benchmarks/bench_bucc.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import header
from xstilts.retrieval.knn import exact_knn, knn, normalize
from xstilts.retrieval.mining import mine


def laser_style(x: np.ndarray, y: np.ndarray, k: int = 4) -> list[tuple[float, int, int]]:
    """Margin mining the way LASER's reference script scores candidates: one by one."""
    x2y_sim, x2y_ind = knn(x, y, k, "faiss")
    y2x_sim, y2x_ind = knn(y, x, k, "faiss")
    x2y_mean, y2x_mean = x2y_sim.mean(1), y2x_sim.mean(1)

    def score_candidates(a, b, cand, fwd_mean, bwd_mean):
        scores = np.zeros(cand.shape)
        for i in range(a.shape[0]):
            for j in range(cand.shape[1]):
                k_ = cand[i, j]
                scores[i, j] = a[i].dot(b[k_]) / ((fwd_mean[i] + bwd_mean[k_]) / 2)
        return scores

    fwd = score_candidates(x, y, x2y_ind, x2y_mean, y2x_mean)
    bwd = score_candidates(y, x, y2x_ind, y2x_mean, x2y_mean)
    fwd_best = x2y_ind[np.arange(len(x)), fwd.argmax(1)]
    bwd_best = y2x_ind[np.arange(len(y)), bwd.argmax(1)]
    idx = np.stack(
        [
            np.concatenate([np.arange(len(x)), bwd_best]),
            np.concatenate([fwd_best, np.arange(len(y))]),
        ],
        1,
    )
    scores = np.concatenate([fwd.max(1), bwd.max(1)])
    seen_x, seen_y, out = set(), set(), []
    for i in np.argsort(-scores):
        s, t = idx[i]
        if s not in seen_x and t not in seen_y:
            seen_x.add(s)
            seen_y.add(t)
            out.append((scores[i], s, t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nx", type=int, default=8624)
    ap.add_argument("--ny", type=int, default=13589)
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()
    header(f"bench_bucc: mining {args.nx} x {args.ny}, d={args.dim}")
    rng = np.random.default_rng(0)
    x = normalize(rng.normal(size=(args.nx, args.dim)))
    y = normalize(rng.normal(size=(args.ny, args.dim)))
    results = {}
    for name, fn in (
        ("laser-style", lambda: laser_style(x, y)),
        ("xstilts", lambda: mine(x, y, exact_knn())),
    ):
        t0 = time.perf_counter()
        pairs = fn()
        results[name] = (time.perf_counter() - t0, len(pairs))
    base = results["laser-style"][0]
    print(f"{'run':<14}{'seconds':>9}{'pairs':>8}{'ratio':>8}")
    for name, (t, n) in results.items():
        print(f"{name:<14}{t:>9.2f}{n:>8}{t / base:>8.3f}")
    print(f"xstilts mines the BUCC zh-en sample in {results['xstilts'][0]:.2f} s")


if __name__ == "__main__":
    main()
