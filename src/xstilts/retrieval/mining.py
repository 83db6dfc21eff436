"""Margin-based bitext mining, the one implementation behind ``evaluate --task bucc2018`` and
``xstilts mine``.

The steps, each a function here:

1. :func:`dedup`: distinct items (sentences) in first-seen order and, for every input item, the
   row of its distinct item. Mining runs on distinct sentences only, since duplicates would split
   their k-NN neighbourhood; :func:`text_keys` makes the keys from texts, a streamed file's
   line index has them already.
2. :func:`margin_candidates` / :func:`mine`: Artetxe & Schwenk (2019), as LASER/XTREME use it for
   BUCC: ``margin(cos(x, y), (mean_k cos(x, .) + mean_k cos(., y)) / 2)`` with ``ratio``
   (a / b), ``distance`` (a - b) or ``absolute`` (a); the best candidate of every row in both
   directions, kept one-to-one best-first. The k-NN search is a parameter (``search``): exact
   in memory (:func:`xstilts.retrieval.knn.exact_knn`) or through an index
   (:class:`xstilts.retrieval.ann.IndexedKnn`, :func:`mine_with_index`).
3. :func:`expand_pairs`: a pair of distinct sentences stands for every (source item, target
   item) pair with those texts.
4. :func:`gold_correct`: which mined pairs are gold pairs; the threshold is then tuned on a
   split with gold (:func:`xstilts.metrics.optimize_threshold`) and applied unchanged elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xstilts.retrieval.ann import IndexedKnn, IndexSpec
from xstilts.retrieval.knn import KnnFn

MARGINS = ("ratio", "distance", "absolute")


# ---------------------------------------------------------------------------- 1. distinct items


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """One 16-byte key per text (BLAKE2b of its UTF-8 bytes), for :func:`dedup`."""
    return np.array(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="V16"
    )


def dedup(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, rows)``: the first item of each distinct key in first-seen order, and for
    every item the row (index into ``first``) of its key."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.reshape(-1)].astype(np.int64)


def unique_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order and, for every text, the row of its distinct text."""
    first, rows = dedup(text_keys(texts))
    return [texts[i] for i in first.tolist()], rows


# ---------------------------------------------------------------------------- 2. margin mining


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
    x: np.ndarray, y: np.ndarray, search: KnnFn, k: int = 4, margin: str = "ratio"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best margin-scored candidate for every source and every target row (both directions).

    Returns ``(src, tgt, score)`` with ``len(x) + len(y)`` candidates: first each x's best y,
    then each y's best x. ``search(queries, corpus, k)`` receives ``x`` and ``y`` as given
    (normalised by the caller, or raw for a search that normalises block by block).
    """
    fn = margin_function(margin)
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
    x: np.ndarray, y: np.ndarray, search: KnnFn, k: int = 4, margin: str = "ratio"
) -> MinedPairs:
    """Margin-based bitext mining (LASER ``mine`` mode, ``max`` retrieval).

    Candidates from both directions are taken best-first and kept only when neither side has
    been used yet, so the result is a one-to-one alignment. ``x``/``y`` must be deduplicated
    (:func:`dedup`).
    """
    src, tgt, score = margin_candidates(x, y, search, k, margin)
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


def mine_with_index(
    x: np.ndarray,
    y: np.ndarray,
    spec: IndexSpec,
    *,
    k: int = 4,
    margin: str = "ratio",
    recall_sample: int = 1000,
    norm: bool = True,
) -> tuple[MinedPairs, list[dict[str, Any]]]:
    """:func:`mine` with the searches done by ``spec``'s index (exact blocks, IVF, HNSW).

    ``x``/``y`` may be raw (``norm=True`` normalises block by block) and memory-mapped. Returns
    the pairs and one search report per direction (x->y, then y->x).
    """
    search = IndexedKnn(spec, recall_sample=recall_sample, norm=norm)
    pairs = mine(x, y, search, k=k, margin=margin)
    for report, direction in zip(search.reports, ("src->tgt", "tgt->src"), strict=True):
        report["direction"] = direction
    return pairs, search.reports


# ---------------------------------------------------------------------------- 3. expansion


def item_groups(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR form of "the items of each row": ``(items sorted by row, first slot, count)``."""
    order = np.argsort(rows, kind="stable")  # ascending items within a row
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def expand_pairs(
    pairs: MinedPairs, src_rows: np.ndarray, tgt_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of distinct rows -> every ``(source item, target item, score)`` they stand for.

    ``src_rows``/``tgt_rows`` map each item to its distinct row (:func:`dedup`). Pairs stay
    best first; within a pair, source items then target items ascend.
    """
    if len(pairs) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float64)
    s_order, s_start, s_count = item_groups(src_rows, int(src_rows.max()) + 1)
    t_order, t_start, t_count = item_groups(tgt_rows, int(tgt_rows.max()) + 1)
    u, v = pairs.src.astype(np.int64), pairs.tgt.astype(np.int64)
    cu, cv = s_count[u], t_count[v]
    reps = cu * cv
    which = np.repeat(np.arange(len(u)), reps)
    within = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    a, b = within // cv[which], within % cv[which]
    src = s_order[s_start[u[which]] + a]
    tgt = t_order[t_start[v[which]] + b]
    return src, tgt, pairs.score[which]


# ---------------------------------------------------------------------------- 4. gold


def gold_correct(
    src_ids: Sequence[str], tgt_ids: Sequence[str], gold: Iterable[tuple[str, str]]
) -> np.ndarray:
    """Whether each mined ``(src_ids[i], tgt_ids[i])`` is a gold pair."""
    gold_set = set(gold)
    pairs = zip(src_ids, tgt_ids, strict=True)
    return np.fromiter((p in gold_set for p in pairs), dtype=bool, count=len(src_ids))
