"""Exact nearest-neighbour search on plain arrays (evaluation-sized sets held in memory).

No model code here: everything takes float32 numpy arrays, so it is testable on hand-made
vectors and reusable for embeddings from anywhere. Approximate and block-wise search for large
corpora is :mod:`xstilts.retrieval.ann`; margin mining on top of either is
:mod:`xstilts.retrieval.mining`.

Conventions (the retrieval protocols depend on them):

* Similarity is the inner product; callers pass L2-normalised vectors to get cosine.
* Results are ordered by score descending, ties broken by the LOWER corpus index (the numpy
  backend guarantees this; faiss results are re-sorted the same way, so the two backends agree
  except for exact ties straddling the k-th position).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Literal

import numpy as np

Backend = Literal["auto", "faiss", "numpy"]
# (queries, corpus, k) -> (scores, indices), best first: what margin mining searches with.
KnnFn = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """L2-normalise rows as contiguous float32 (zero rows stay zero instead of becoming NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, eps), dtype=np.float32)


def _have_faiss() -> bool:
    return importlib.util.find_spec("faiss") is not None


def resolve_backend(backend: Backend) -> Literal["faiss", "numpy"]:
    """``auto`` means faiss when it is importable (it is a dependency), numpy otherwise."""
    if backend == "auto":
        return "faiss" if _have_faiss() else "numpy"
    if backend not in ("faiss", "numpy"):
        raise ValueError(f"unknown search backend {backend!r}")
    return backend


def _sort_rows(scores: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by score descending, then index ascending (the tie rule)."""
    order = np.lexsort((idx, -scores), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(idx, order, -1)


def _topk_block(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of a similarity block with the lower-index tie rule, exactly."""
    n = sim.shape[1]
    if k >= n:
        idx = np.broadcast_to(np.arange(n), sim.shape).copy()
        return _sort_rows(sim.copy(), idx)
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sim, part, 1)
    kth = vals.min(axis=1)
    # argpartition picks arbitrarily among scores equal to the k-th value; redo those rows.
    n_ge = (sim >= kth[:, None]).sum(axis=1)
    for r in np.nonzero(n_ge > k)[0]:
        row = sim[r]
        above = np.nonzero(row > kth[r])[0]
        ties = np.nonzero(row == kth[r])[0][: k - len(above)]
        part[r] = np.concatenate([above, ties])
        vals[r] = row[part[r]]
    return _sort_rows(vals, part)


def knn_numpy(
    queries: np.ndarray, corpus: np.ndarray, k: int, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN by blocked matrix products (memory ~ block x corpus)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    c = np.ascontiguousarray(corpus, dtype=np.float32)
    k = min(k, c.shape[0])
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], block):
        sim = q[start : start + block] @ c.T
        scores[start : start + block], idx[start : start + block] = _topk_block(sim, k)
    return scores, idx


def knn_faiss(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN with faiss ``IndexFlatIP`` (what LASER and XTREME use)."""
    import faiss  # deferred: faiss is optional at import time (numpy backend otherwise)

    q = np.ascontiguousarray(queries, dtype=np.float32)
    c = np.ascontiguousarray(corpus, dtype=np.float32)
    k = min(k, c.shape[0])
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    scores, idx = index.search(q, k)
    return _sort_rows(scores, idx.astype(np.int64))


RESCORE_EXTRA = 16  # candidates beyond k that reduced-precision search re-scores in fp32


def knn_reduced(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    dtype: Literal["bf16", "fp16"] = "bf16",
    *,
    block: int = 1024,
    extra: int = RESCORE_EXTRA,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN from reduced-precision products, re-scored in fp32.

    Each block of queries is multiplied with the corpus in ``dtype`` (bf16: AMX/AVX512-BF16
    matrix units on CPUs that have them, several times fp32's rate), the top ``k + extra``
    candidates per row are taken from those products, and their scores are recomputed in fp32
    from the original vectors; the best ``k`` by fp32 score (ties to the lower index) are
    returned. So the scores are fp32 scores and the neighbours are fp32's, except where a true
    top-k neighbour ranks below ``k + extra`` in the reduced-precision products: a near tie
    (bf16 keeps 8 bits of mantissa: products of unit vectors move by about 1e-3). Where bf16 is
    emulated (CPUs without those instructions) it is slower than fp32: callers resolve
    ``auto`` to fp32 there (:func:`xstilts.hardware.resolve_dtype`).
    """
    import torch  # deferred: the retrieval functions above need numpy only

    from xstilts.hardware import TORCH_DTYPES

    low = TORCH_DTYPES[dtype]
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    k = min(k, c.shape[0])
    want = min(c.shape[0], k + extra)
    c_low = c.to(low)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, q.shape[0], block):
            qb = q[start : start + block]
            cand = torch.topk(qb.to(low) @ c_low.T, want, dim=1, sorted=False).indices
            exact = torch.einsum("bd,bkd->bk", qb, c[cand])
            s, i = _sort_rows(exact.numpy(), cand.numpy().astype(np.int64))
            scores[start : start + block], idx[start : start + block] = s[:, :k], i[:, :k]
    return scores, idx


def knn(
    queries: np.ndarray, corpus: np.ndarray, k: int, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each query row among corpus rows by inner product.

    Returns ``(scores, indices)`` of shape ``(n_queries, min(k, n_corpus))``.
    """
    if queries.ndim != 2 or corpus.ndim != 2 or queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"shape mismatch: queries {queries.shape}, corpus {corpus.shape}")
    if corpus.shape[0] == 0:
        raise ValueError("empty corpus")
    if resolve_backend(backend) == "faiss":
        return knn_faiss(queries, corpus, k)
    return knn_numpy(queries, corpus, k)


def exact_knn(backend: Backend = "auto") -> KnnFn:
    """:func:`knn` with a fixed backend, as the ``KnnFn`` that mining searches with."""

    def search(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return knn(queries, corpus, k, backend)

    return search
