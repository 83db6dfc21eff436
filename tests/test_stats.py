"""Report statistics on cases computed by hand: paired bootstrap, P/R/F1 bootstrap, t-interval."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xstilts.metrics import prf
from xstilts.report.stats import (
    CI,
    Stratum,
    bootstrap_replicates,
    bootstrap_weights,
    combined_significance,
    paired_bootstrap,
    statistic_value,
    t_interval,
    t_quantile,
)


def test_weights_are_resamples_with_replacement():
    w = bootstrap_weights(7, 50, seed=3, key="x")
    assert w.shape == (50, 7)
    assert np.all(w.sum(axis=1) == 7)
    assert np.all(w >= 0) and np.all(w == np.round(w))
    # deterministic per (seed, key); another key draws differently
    assert np.array_equal(w, bootstrap_weights(7, 50, seed=3, key="x"))
    assert not np.array_equal(w, bootstrap_weights(7, 50, seed=3, key="y"))


def test_constant_difference_gives_a_degenerate_interval():
    # every sentence gains exactly 0.5: every resample's difference is 0.5
    ci = paired_bootstrap([Stratum((np.full(25, 0.25),), (np.full(25, 0.75),))], "mean", n_boot=200)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.5, 0.5)
    assert ci.significant and ci.method == "bootstrap" and ci.n == 25 and ci.n_boot == 200
    # identical systems: zero-width interval at 0, not significant
    a = np.array([1, 1, 0, 0, 0, 1, 0, 0, 1, 1], dtype=bool)
    same = paired_bootstrap([Stratum((a,), (a,))], "mean", n_boot=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    assert not same.significant
    # B gets 4 more of 10 right and loses none: 0.4, and no resample can go below 0
    b = a.copy()
    b[[2, 3, 4, 6]] = True
    gain = paired_bootstrap([Stratum((a,), (b,))], "mean", n_boot=200)
    assert gain.estimate == pytest.approx(0.4)
    assert 0 < gain.low <= gain.estimate <= gain.high <= 1


def test_bootstrap_distribution_matches_brute_force_enumeration():
    # 3 sentences, per-sentence differences d = [0, 1, 1]. All 27 equally likely resamples:
    # the mean is k/3 where k ~ Binomial(3, 2/3): P = 1/27, 6/27, 12/27, 8/27.
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([1.0, 1.0, 1.0])
    exact: dict[int, float] = {}  # keyed by the number k of gained sentences drawn
    for draw in itertools.product(range(3), repeat=3):
        k = round(3 * float(np.mean(b[list(draw)] - a[list(draw)])))
        exact[k] = exact.get(k, 0) + 1 / 27
    assert exact == pytest.approx({0: 1 / 27, 1: 6 / 27, 2: 12 / 27, 3: 8 / 27})
    reps = bootstrap_replicates([a, b], "mean", n_boot=20000, seed=1, key="k")
    ks = np.round(3 * (reps[1] - reps[0]))
    for k, p in exact.items():
        assert np.mean(ks == k) == pytest.approx(p, abs=0.01)
    # 2.5% quantile: P(0) = 3.7% > 2.5% -> 0; 97.5% quantile: P(<1) = 70% < 97.5% -> 1
    ci = paired_bootstrap([Stratum((a,), (b,), "k")], "mean", n_boot=20000, seed=1)
    assert (ci.low, ci.high) == (0.0, 1.0)
    assert ci.estimate == pytest.approx(2 / 3)
    assert not ci.significant  # the interval touches 0


def test_bootstrap_width_matches_the_normal_approximation():
    # for a mean of n iid differences the bootstrap SE is sd(d)/sqrt(n) (population sd)
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.6
    b = a ^ (rng.random(2000) < 0.2)
    ci = paired_bootstrap([Stratum((a,), (b,))], "mean", n_boot=2000, seed=0)
    d = b.astype(float) - a.astype(float)
    half = 1.959964 * d.std() / math.sqrt(len(d))
    assert ci.estimate == pytest.approx(d.mean())
    assert (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.1)
    assert ci.low < ci.estimate < ci.high


def test_prf_statistic_uses_summed_counts():
    # per source sentence: tp, pred, gold
    a = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 1, 0]], dtype=float)
    b = np.array([[1, 1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=float)
    for col, name in enumerate(("precision", "recall", "f1")):
        assert statistic_value(a, name) == pytest.approx(prf(1, 3, 3)[col])
        assert statistic_value(b, name) == pytest.approx(prf(2, 2, 3)[col])
    ci = paired_bootstrap([Stratum((a,), (b,))], "f1", n_boot=500)
    assert ci.estimate == pytest.approx(prf(2, 2, 3)[2] - prf(1, 3, 3)[2])
    assert ci.low <= ci.estimate <= ci.high
    same = paired_bootstrap([Stratum((a,), (a,))], "recall", n_boot=100)
    assert (same.low, same.high) == (0.0, 0.0)


def test_stratified_mean_of_languages_and_seed_average():
    # language 1 gains exactly 0.5 everywhere, language 2 exactly 0.1: the mean gain is 0.3
    l1 = Stratum((np.zeros(10),), (np.full(10, 0.5),), "l1")
    l2 = Stratum((np.full(40, 0.2),), (np.full(40, 0.3),), "l2")
    ci = paired_bootstrap([l1, l2], "mean", n_boot=300)
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((0.3, 0.3, 0.3))
    assert ci.n == 50
    # two seeds of B (gains 0.2 and 0.4) average to 0.3
    two = Stratum((np.zeros(10),), (np.full(10, 0.2), np.full(10, 0.4)))
    assert paired_bootstrap([two], "mean", n_boot=100).estimate == pytest.approx(0.3)


def test_mismatched_items_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([Stratum((np.zeros(3),), (np.zeros(4),))], "mean", n_boot=10)
    with pytest.raises(ValueError, match="shape"):
        statistic_value(np.zeros((3, 2)), "f1")


@pytest.mark.parametrize(
    ("confidence", "df", "expected"),
    [
        (0.95, 1, 12.706205),
        (0.95, 2, 4.302653),
        (0.95, 3, 3.182446),
        (0.95, 4, 2.776445),
        (0.95, 10, 2.228139),
        (0.95, 30, 2.042272),
        (0.90, 5, 2.015048),
        (0.99, 7, 3.499483),
    ],
)
def test_t_quantile_matches_tables(confidence, df, expected):
    assert t_quantile(confidence, df) == pytest.approx(expected, abs=1e-5)


def test_t_interval_by_hand():
    # values 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.302653
    ci = t_interval([1.0, 2.0, 3.0], 0.95)
    assert ci is not None
    half = 4.302653 / math.sqrt(3)
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((2.0, 2 - half, 2 + half), abs=1e-5)
    assert ci.method == "t" and ci.n == 3 and not ci.significant  # includes 0
    assert t_interval([0.5], 0.95) is None
    assert not t_interval([-1.0, 1.0]).significant


def test_combined_significance():
    yes = CI(0.1, 0.05, 0.2, 0.95, "bootstrap", 10)
    no = CI(0.1, -0.05, 0.2, 0.95, "t", 3)
    assert combined_significance(yes, None) is True
    assert combined_significance(yes, no) is False
    assert combined_significance(None, None) is None
    assert not CI(float("nan"), float("nan"), float("nan"), 0.95, "t", 2).significant
