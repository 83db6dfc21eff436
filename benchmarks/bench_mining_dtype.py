"""Exact margin mining in reduced precision: bf16 products re-scored in fp32 vs faiss fp32.

Mines N x N vectors (d=384) both ways with the exact index, once with faiss ``IndexFlatIP``
in fp32 (the default) and once with :func:`xstilts.retrieval.knn.knn_reduced` (bf16 products,
top k + 16 candidates re-scored in fp32), in the same run; prints each one's seconds, the
speed ratio and how many of the fp32 run's mined pairs the bf16 run mines too (pairs that differ
are near ties: the bf16 run keeps fp32 scores, so it can only differ where a true neighbour
fell out of its candidates). Vectors: random unit vectors, or real embeddings saved by
``xstilts evaluate --save-embeddings`` / ``xstilts embed`` (``--x``/``--y`` .npy files).

On a CPU without native bf16 (no AMX-BF16/AVX512-BF16) torch emulates bf16 and the bf16 run is
*slower*: ``--search-dtype auto`` then means fp32, and this script shows why.
Usage: ``python benchmarks/bench_mining_dtype.py [--n 200000] [--x X.npy --y Y.npy]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import header
from xstilts.hardware import cpu_supports_bf16, resolve_dtype
from xstilts.retrieval.ann import IndexSpec
from xstilts.retrieval.knn import normalize
from xstilts.retrieval.mining import mine_with_index


def vectors(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.x and args.y:
        x, y = np.load(args.x, mmap_mode="r"), np.load(args.y, mmap_mode="r")
        return normalize(x[: args.n]), normalize(y[: args.n])
    rng = np.random.default_rng(0)
    return (
        normalize(rng.standard_normal((args.n, args.dim), dtype=np.float32)),
        normalize(rng.standard_normal((args.n, args.dim), dtype=np.float32)),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--x", default=None)
    p.add_argument("--y", default=None)
    args = p.parse_args()
    header(f"exact mining, {args.n:,} x {args.n:,}, bf16 (re-scored) vs faiss fp32")
    x, y = vectors(args)
    print(f"vectors: {'saved embeddings' if args.x else 'random unit'}, d={x.shape[1]}")
    print(f"--search-dtype auto here: {resolve_dtype('auto', __import__('torch').device('cpu'))}"
          f" (native bf16: {'yes' if cpu_supports_bf16() else 'no'})")  # fmt: skip
    runs = {}
    for name in ("fp32", "bf16"):
        t0 = time.perf_counter()
        pairs, _ = mine_with_index(x, y, IndexSpec(dtype=name), k=4, recall_sample=0, norm=False)
        runs[name] = (time.perf_counter() - t0, pairs)
        print(f"{name}: {runs[name][0]:.1f} s, {len(pairs.src):,} pairs")
    (t32, p32), (t16, p16) = runs["fp32"], runs["bf16"]
    same = len(set(zip(p32.src.tolist(), p32.tgt.tolist(), strict=True))
               & set(zip(p16.src.tolist(), p16.tgt.tolist(), strict=True)))  # fmt: skip
    print(f"speed bf16 vs fp32: {t32 / t16:.2f}x; pairs shared: {same:,} of {len(p32.src):,} "
          f"({100 * same / max(len(p32.src), 1):.3f} %)")  # fmt: skip


if __name__ == "__main__":
    main()
