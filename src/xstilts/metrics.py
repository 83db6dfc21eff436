"""Retrieval metrics as pure functions on arrays (no model code, hand-checkable).

* :func:`accuracy_at_1` - Tatoeba (XTREME): the top-1 retrieved index equals the gold index.
* :func:`prf` / :func:`optimize_threshold` / :func:`apply_threshold` - BUCC 2018 precision,
  recall, F1 of mined pairs, with the decision threshold tuned on one split and applied to
  another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
