"""Hand-computed cases for the metric functions."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.metrics import accuracy_at_1, apply_threshold, optimize_threshold, prf


def test_accuracy_at_1_counts_exact_index_matches():
    assert accuracy_at_1(np.array([0, 1, 1, 3]), np.arange(4)) == 0.75
    assert accuracy_at_1(np.array([3, 2, 1, 0]), np.arange(4)) == 0.0


def test_accuracy_at_1_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        accuracy_at_1(np.array([0, 1]), np.arange(3))


def test_prf_hand_values_and_degenerate_cases():
    assert prf(2, 4, 8) == (0.5, 0.25, pytest.approx(1 / 3))
    assert prf(0, 0, 5) == (0.0, 0.0, 0.0)
    assert prf(0, 3, 5) == (0.0, 0.0, 0.0)


def test_optimize_threshold_picks_best_f1_cut_and_midpoint():
    # sorted: 0.9(ok) 0.8(x) 0.8(ok) 0.7(ok) 0.5(x); n_gold = 4
    # cuts (ties kept together): n=1 F1=.4, n=3 F1=4/7, n=4 F1=.75, n=5 F1=2/3
    scores = np.array([0.8, 0.5, 0.9, 0.7, 0.8])
    correct = np.array([False, False, True, True, True])
    res = optimize_threshold(scores, correct, n_gold=4)
    assert res.threshold == pytest.approx(0.6)
    assert (res.precision, res.recall, res.f1) == pytest.approx((0.75, 0.75, 0.75))
    assert (res.n_predicted, res.n_correct) == (4, 3)


def test_optimize_threshold_never_splits_ties():
    # Cutting after the first 0.8 would give P=1 R=.5, but equal scores cannot be separated.
    scores = np.array([0.8, 0.8, 0.8, 0.1])
    correct = np.array([True, False, False, False])
    res = optimize_threshold(scores, correct, n_gold=2)
    assert res.n_predicted == 3
    assert res.threshold == pytest.approx(0.45)
    assert res.f1 == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))


def test_optimize_threshold_keep_all_and_keep_none():
    res = optimize_threshold(np.array([0.9, 0.7]), np.array([True, True]), n_gold=2)
    assert res.threshold == 0.7 and res.f1 == 1.0
    none = optimize_threshold(np.array([0.9, 0.7]), np.array([False, False]), n_gold=2)
    assert none.threshold > 0.9 and none.f1 == 0.0
    assert (
        apply_threshold(np.array([0.9, 0.7]), np.array([True, True]), 2, none.threshold).n_predicted
        == 0
    )


def test_apply_threshold_uses_greater_or_equal():
    scores = np.array([1.2, 1.1, 1.05, 0.9])
    correct = np.array([True, True, False, True])
    res = apply_threshold(scores, correct, n_gold=5, threshold=1.05)
    assert (res.n_predicted, res.n_correct) == (3, 2)
    assert (res.precision, res.recall) == pytest.approx((2 / 3, 2 / 5))
