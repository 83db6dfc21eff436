"""Recall@k against cost for every approximate backend on uniformly random unit vectors.

``bench_scale.py`` mines 200k x 200k random vectors with IVF and misses the issue's target
(recall@4 >= 0.95 at >= 5x less time). This script asks whether *any* of xstilts' approximate
backends (faiss IVF-Flat, IVF-PQ, HNSW-Flat, through :mod:`xstilts.index`) could: it builds each
index once over ``--n`` random unit vectors, sweeps its search knob (``nprobe``, ``efSearch``)
on ``--queries`` independent random queries, and reports recall@k against exact search and
the cost per query. ``projected speedup`` is what mining ``n x n`` in both directions would
gain at that setting: ``2 n exact_per_query / (2 build + 2 n per_query)`` (building an index
over each side, searching every row of the other).

Usage: ``python benchmarks/bench_ann_random.py [--n 100000] [--queries 2000] [--dim 384]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import header
from xstilts.retrieval.ann import ExactIndex, IndexSpec, build_index, recall_at_k


def unit_rows(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random unit vectors (uniform on the sphere)."""
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


SWEEPS = {"ivf": [16, 64, 256, 1024], "ivfpq": [16, 64, 256], "hnsw": [64, 256, 1024]}


def sweep(
    corpus: np.ndarray, queries: np.ndarray, k: int, seed: int, sweeps: dict[str, list[int]]
) -> list[dict]:
    """Build each kind's index over ``corpus`` (unit rows) once, search ``queries`` at each knob.

    Prints a table and returns its rows: recall@k against exact search, cost per query, and
    the projected speed-up of mining ``n x n`` both ways at that setting.
    """
    n, nq = len(corpus), len(queries)
    exact = ExactIndex(corpus, IndexSpec(kind="exact"), norm=False)
    t0 = time.perf_counter()
    _, truth = exact.search(queries, k)
    exact_q = (time.perf_counter() - t0) / nq
    exact_mine = 2 * n * exact_q
    print(f"exact: {1e3 * exact_q:.3f} ms a query; mining {n} x {n}: {exact_mine:.0f} s")
    print(
        f"{'index':<8}{'build s':>9}{'knob':>15}{'recall@' + str(k):>10}"
        f"{'ms/query':>10}{'vs exact':>10}{'projected speedup':>19}"
    )
    rows = []
    for kind, knobs in sweeps.items():
        index = build_index(IndexSpec(kind=kind, seed=seed), corpus, norm=False)
        index.exact_fallback = False  # measure the index itself
        for knob in knobs:
            if kind != "hnsw" and knob > index.nlist:
                continue
            index.set_knob(knob)
            t0 = time.perf_counter()
            _, ids = index.search(queries, k)
            per_q = (time.perf_counter() - t0) / nq
            recall = recall_at_k(ids, truth)
            projected = exact_mine / (2 * index.build_s + 2 * n * per_q)
            print(
                f"{kind:<8}{index.build_s:>9.1f}{index.knob_name + ' ' + str(knob):>15}"
                f"{recall:>10.3f}{1e3 * per_q:>10.3f}{exact_q / per_q:>9.2f}x{projected:>18.2f}x"
            )
            rows.append({"kind": kind, "knob": knob, "recall": recall, "projected": projected})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    header(f"bench_ann_random: {args.n} random unit vectors, d={args.dim}, k={args.k}")
    rng = np.random.default_rng(args.seed)
    corpus, queries = unit_rows(args.n, args.dim, rng), unit_rows(args.queries, args.dim, rng)
    sweep(corpus, queries, args.k, args.seed, SWEEPS)
    print("target (issue): recall >= 0.95 at a projected speedup >= 5x")


if __name__ == "__main__":
    main()
