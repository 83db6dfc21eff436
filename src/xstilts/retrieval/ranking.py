"""Ranked retrieval with several relevant candidates per query (LAReQA, Mewsli-X).

Queries and candidates are L2-normalised and ranked by cosine with :func:`xstilts.retrieval.knn.knn`
(ties: lower candidate index first); average precision comes from :mod:`xstilts.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xstilts.metrics import average_precisions_at_k
from xstilts.retrieval.knn import Backend, knn, normalize


def relevance_rows(ranked: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """``out[q, i]``: whether candidate ``ranked[q, i]`` is among ``relevant[q]``."""
    width = max(len(r) for r in relevant)
    padded = np.full((len(relevant), width), -1, dtype=np.int64)
    for q, r in enumerate(relevant):
        padded[q, : len(r)] = r
    return (ranked[:, :, None] == padded[:, None, :]).any(axis=2)


def average_precisions(
    queries: np.ndarray,
    candidates: np.ndarray,
    relevant: Sequence[np.ndarray],
    *,
    k: int = 20,
    full: bool = False,
    backend: Backend = "auto",
    block: int = 256,
) -> dict[str, np.ndarray]:
    """Per-query AP@k (key ``map@k``) and, with ``full``, AP over the whole ranking (``map``).

    ``relevant[q]`` lists the candidate indices relevant to query ``q`` (at least one). The
    full ranking costs a sort of every query's similarities against all candidates, done in
    blocks of ``block`` queries to bound memory, always with the numpy backend (a full sort is
    several times faster there than through faiss, and both metrics then come from the same
    ranking); AP@k alone needs only the top ``k`` from ``backend``.
    """
    if len(relevant) != len(queries):
        raise ValueError(f"{len(queries)} queries but {len(relevant)} relevant sets")
    q, c = normalize(queries), normalize(candidates)
    n_rel = np.array([len(set(r.tolist())) for r in relevant], dtype=np.int64)
    depth = len(c) if full else min(k, len(c))
    at_k = np.empty(len(q))
    whole = np.empty(len(q)) if full else None
    for start in range(0, len(q), block):
        stop = min(start + block, len(q))
        _, ranked = knn(q[start:stop], c, depth, "numpy" if full else backend)
        rel = relevance_rows(ranked, relevant[start:stop])
        at_k[start:stop] = average_precisions_at_k(rel, n_rel[start:stop], k)
        if whole is not None:
            whole[start:stop] = average_precisions_at_k(rel, n_rel[start:stop])
    out = {f"map@{k}": at_k}
    if whole is not None:
        out["map"] = whole
    return out
