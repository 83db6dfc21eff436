"""Exact nearest-neighbour search and margin-based bitext mining on plain arrays.

No model code here: everything takes float32 numpy arrays, so it is testable on hand-made
vectors and reusable for embeddings from anywhere.

Conventions (the retrieval protocols depend on them):

* Similarity is the inner product; callers pass L2-normalised vectors to get cosine.
* Results are ordered by score descending, ties broken by the LOWER corpus index (the numpy
  backend guarantees this; faiss results are re-sorted the same way, so the two backends agree
  except for exact ties straddling the k-th position).
* Margin scoring follows Artetxe & Schwenk (2019) as used by LASER/XTREME for BUCC:
  ``margin(cos(x, y), (mean_k cos(x, .) + mean_k cos(., y)) / 2)`` with ``ratio`` (a / b),
  ``distance`` (a - b) or ``absolute`` (a).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Backend = Literal["auto", "faiss", "numpy"]
# (queries, corpus, k) -> (scores, indices), best first: what margin mining searches with.
KnnFn = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
MARGINS = ("ratio", "distance", "absolute")


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """L2-normalise rows as contiguous float32 (zero rows stay zero instead of becoming NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, eps), dtype=np.float32)


def _have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


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
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    c = np.ascontiguousarray(corpus, dtype=np.float32)
    k = min(k, c.shape[0])
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    scores, idx = index.search(q, k)
    return _sort_rows(scores, idx.astype(np.int64))


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


def margin_function(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The margin between a candidate's cosine ``a`` and its neighbourhood average ``b``."""
    if name == "ratio":
        return lambda a, b: a / b
    if name == "distance":
        return lambda a, b: a - b
    if name == "absolute":
        return lambda a, b: a
    raise ValueError(f"unknown margin {name!r}; choose one of {', '.join(MARGINS)}")


@dataclass(frozen=True)
class MinedPairs:
    """One-to-one aligned pairs, best first: ``src[i]`` <-> ``tgt[i]`` with ``score[i]``."""

    src: np.ndarray
    tgt: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def margin_candidates(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 4,
    margin: str = "ratio",
    backend: Backend = "auto",
    knn_fn: KnnFn | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best margin-scored candidate for every source and every target row (both directions).

    ``x`` and ``y`` must be L2-normalised. Returns ``(src, tgt, score)`` with
    ``len(x) + len(y)`` candidates: first each x's best y, then each y's best x.
    ``knn_fn(queries, corpus, k)`` replaces exact :func:`knn` (e.g. an approximate index from
    :mod:`xstilts.index`); it receives ``x`` and ``y`` as given, so it may also normalise
    memory-mapped rows block by block itself.
    """
    fn = margin_function(margin)
    search = knn_fn or (lambda q, c, n: knn(q, c, n, backend))
    x2y_sim, x2y_ind = search(x, y, k)
    y2x_sim, y2x_ind = search(y, x, k)
    x2y_mean = x2y_sim.mean(axis=1)
    y2x_mean = y2x_sim.mean(axis=1)
    fwd = fn(x2y_sim, (x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)
    bwd = fn(y2x_sim, (y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)
    # argmax takes the first maximum, i.e. the nearer neighbour on equal margins.
    fwd_best = x2y_ind[np.arange(len(x)), fwd.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(len(y)), bwd.argmax(axis=1)]
    src = np.concatenate([np.arange(len(x)), bwd_best])
    tgt = np.concatenate([fwd_best, np.arange(len(y))])
    score = np.concatenate([fwd.max(axis=1), bwd.max(axis=1)]).astype(np.float64)
    return src, tgt, score


def mine(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 4,
    margin: str = "ratio",
    backend: Backend = "auto",
    knn_fn: KnnFn | None = None,
) -> MinedPairs:
    """Margin-based bitext mining (LASER ``mine`` mode, ``max`` retrieval).

    Candidates from both directions are taken best-first and kept only when neither side has
    been used yet, so the result is a one-to-one alignment. ``x``/``y`` must be normalised and
    deduplicated by the caller (duplicate sentences would otherwise split their neighbourhood).
    ``knn_fn``: see :func:`margin_candidates`.
    """
    src, tgt, score = margin_candidates(x, y, k, margin, backend, knn_fn)
    order = np.argsort(-score, kind="stable")
    seen_src = np.zeros(len(x), dtype=bool)
    seen_tgt = np.zeros(len(y), dtype=bool)
    keep: list[int] = []
    for i in order.tolist():
        s, t = src[i], tgt[i]
        if not seen_src[s] and not seen_tgt[t]:
            seen_src[s] = seen_tgt[t] = True
            keep.append(i)
    sel = np.asarray(keep, dtype=np.int64)
    return MinedPairs(src[sel], tgt[sel], score[sel])
