"""Retrieval metrics as pure functions on arrays (no model code, hand-checkable).

* :func:`accuracy_at_1` - Tatoeba (XTREME): the top-1 retrieved index equals the gold index.
* :func:`prf` / :func:`optimize_threshold` / :func:`apply_threshold` - BUCC 2018 precision,
  recall, F1 of mined pairs, with the decision threshold tuned on one split and applied to
  another.
* :func:`average_precision_at_k` / :func:`average_precisions_at_k` / :func:`map_at_k` -
  LAReQA and Mewsli-X (XTREME-R): mean average precision of ranked candidates, cut at ``k``
  (mAP@20) or over the full ranking (LAReQA's mAP).
* :func:`weighted_precision_recall_f1` - MTEB's bitext-mining precision/recall/F1: scikit-learn's
  ``average="weighted"`` over gold indices, treating each gold index as a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# How a per-sentence outcome array gives a metric: its mean (accuracy, AP), or precision,
# recall or F1 of its summed (tp, pred, gold) counts (BUCC). Used by reports' bootstrap.
Statistic = Literal["mean", "precision", "recall", "f1"]


def accuracy_at_1(predicted: np.ndarray, gold: np.ndarray) -> float:
    """Fraction of queries whose top-1 prediction is the gold index."""
    predicted = np.asarray(predicted)
    gold = np.asarray(gold)
    if predicted.shape != gold.shape:
        raise ValueError(f"shape mismatch: predicted {predicted.shape}, gold {gold.shape}")
    if predicted.size == 0:
        raise ValueError("no queries")
    return float(np.mean(predicted == gold))


def prf(n_correct: int, n_predicted: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0 where undefined (nothing predicted/no gold)."""
    p = n_correct / n_predicted if n_predicted else 0.0
    r = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


@dataclass(frozen=True)
class ThresholdResult:
    """A decision threshold and the P/R/F1 of keeping every candidate scoring >= it."""

    threshold: float
    precision: float
    recall: float
    f1: float
    n_predicted: int
    n_correct: int


def optimize_threshold(scores: np.ndarray, correct: np.ndarray, n_gold: int) -> ThresholdResult:
    """The threshold maximising F1 when keeping candidates with ``score >= threshold``.

    Only cuts between distinct scores are considered (a threshold cannot separate equal
    scores). The threshold is the midpoint between the last kept score and the next lower
    one, as in XTREME's ``bucc_optimize``; if every candidate is kept it is the lowest score.
    With no correct candidate the threshold lies just above the best score (keep nothing).
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape:
        raise ValueError("scores and correct must have the same shape")
    if n_gold <= 0:
        raise ValueError("n_gold must be positive")
    if scores.size == 0 or not correct.any():
        top = float(scores.max()) if scores.size else 0.0
        return ThresholdResult(float(np.nextafter(top, np.inf)), 0.0, 0.0, 0.0, 0, 0)
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    cum_correct = np.cumsum(correct[order])
    # Valid cut positions: the last element of each group of equal scores.
    ends = np.nonzero(np.append(s[1:] != s[:-1], True))[0]
    n_pred = ends + 1
    tp = cum_correct[ends]
    precision = tp / n_pred
    recall = tp / n_gold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    end = ends[best]
    threshold = (s[end] + s[end + 1]) / 2 if end + 1 < len(s) else s[end]
    return ThresholdResult(
        float(threshold),
        float(precision[best]),
        float(recall[best]),
        float(f1[best]),
        int(n_pred[best]),
        int(tp[best]),
    )


def apply_threshold(
    scores: np.ndarray, correct: np.ndarray, n_gold: int, threshold: float
) -> ThresholdResult:
    """P/R/F1 of keeping the candidates with ``score >= threshold`` (tuned elsewhere)."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = scores >= threshold
    n_pred = int(keep.sum())
    n_correct = int(np.asarray(correct, dtype=bool)[keep].sum())
    p, r, f1 = prf(n_correct, n_pred, n_gold)
    return ThresholdResult(float(threshold), p, r, f1, n_pred, n_correct)


def average_precisions_at_k(
    relevance: np.ndarray, n_relevant: np.ndarray | int, k: int | None = None
) -> np.ndarray:
    """Average precision of each ranking (row) at cut-off ``k``; one value per row.

    ``relevance[q, i]`` says whether the candidate ranked ``i``-th (0-based, best first) for
    query ``q`` is relevant; ``n_relevant[q]`` is how many relevant candidates query ``q`` has
    in the whole pool (a row may be a truncated ranking). With ``k`` the sum of precision@i
    over the relevant hits in the top ``k`` is divided by ``min(k, n_relevant)``, as in
    XTREME-R's ``average_precision_at_k`` (google-research/xtreme, ``third_party/
    utils_lareqa.py``): a query with 11 relevant answers and all of the top 20 filled with
    them scores 1, and one with a single relevant answer scores its reciprocal rank (Mewsli-X's
    MRR@20). Without ``k`` the divisor is ``n_relevant`` (the usual full AP; relevant
    candidates missing from a truncated row count as never retrieved).
    """
    rel = np.asarray(relevance, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (queries x ranks), got shape {rel.shape}")
    n_rel = np.broadcast_to(np.asarray(n_relevant, dtype=np.int64), (rel.shape[0],))
    if (n_rel <= 0).any():
        raise ValueError("every query needs at least one relevant candidate")
    if (rel.sum(axis=1) > n_rel).any():
        raise ValueError("a ranking holds more relevant candidates than n_relevant")
    if k is not None:
        if k < 1:
            raise ValueError("k must be >= 1")
        rel = rel[:, :k]
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    score = np.where(rel, hits / ranks, 0.0).sum(axis=1)
    divisor = np.minimum(n_rel, k) if k is not None else n_rel
    return score / divisor


def average_precision_at_k(
    relevance: np.ndarray, n_relevant: int | None = None, k: int | None = None
) -> float:
    """AP@k of one ranking (see :func:`average_precisions_at_k`).

    ``n_relevant`` defaults to the number of relevant entries in ``relevance``, which is only
    right when ``relevance`` covers the whole candidate pool.
    """
    rel = np.asarray(relevance, dtype=bool)[None, :]
    n = int(rel.sum()) if n_relevant is None else n_relevant
    return float(average_precisions_at_k(rel, n, k)[0])


def map_at_k(relevance: np.ndarray, n_relevant: np.ndarray | int, k: int | None = None) -> float:
    """Mean over queries of :func:`average_precisions_at_k` (mAP@k; full mAP without ``k``)."""
    return float(average_precisions_at_k(relevance, n_relevant, k).mean())


def weighted_precision_recall_f1(
    gold: np.ndarray, predicted: np.ndarray
) -> tuple[float, float, float]:
    """Precision, recall and F1 as ``sklearn.metrics.*_score(gold, predicted, average="weighted",
    zero_division=0)``, which is what MTEB's BitextMiningEvaluator reports.

    Every index that occurs in ``gold`` or ``predicted`` is a class. Per class ``c``:
    precision = TP_c / #predicted c, recall = TP_c / #gold c, F1 = 2PR / (P + R), each 0 where
    its denominator is 0. The average weights class ``c`` by its support (#gold c), so classes
    that are only predicted count with weight 0; consequently the weighted recall equals the
    accuracy.
    """
    gold = np.asarray(gold)
    predicted = np.asarray(predicted)
    if gold.shape != predicted.shape or gold.ndim != 1:
        raise ValueError(f"shape mismatch: gold {gold.shape}, predicted {predicted.shape}")
    if gold.size == 0:
        raise ValueError("no queries")
    classes, inverse = np.unique(np.concatenate([gold, predicted]), return_inverse=True)
    g, p = inverse[: gold.size], inverse[gold.size :]
    n = len(classes)
    support = np.bincount(g, minlength=n).astype(np.float64)
    n_pred = np.bincount(p, minlength=n).astype(np.float64)
    tp = np.bincount(g[g == p], minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(n_pred > 0, tp / n_pred, 0.0)
        rec = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    weights = support / support.sum()
    return float(weights @ prec), float(weights @ rec), float(weights @ f1)
