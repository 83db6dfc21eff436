"""Uncertainty of differences between settings: paired bootstrap and across-seed t-intervals.

Pure numpy, no pandas, so every function can be checked by hand on small arrays.

Paired bootstrap over sentences. Every cell of an experiment evaluates the same sentences in
the same order, so two settings are compared on the *same* resampled sentences: a replicate
draws ``n`` sentence indices uniformly with replacement and recomputes both settings' metric
on that draw. The replicates are stored as resampling weights (how often each sentence was
drawn, :func:`bootstrap_weights`), which turns a replicate of a mean or a sum into one matrix
product and lets every setting reuse one draw per (task, language) stratum.

* accuracy-type outcomes (one value per sentence: Tatoeba ``correct``, LAReQA/Mewsli-X
  ``ap@20``): the statistic is the mean;
* count outcomes (BUCC ``tp``, ``pred``, ``gold`` per source sentence, stacked as columns):
  precision, recall or F1 from the summed counts (:func:`xstilts.metrics.prf`), so the
  bootstrap respects that F1 is not a mean of per-sentence values;
* a mean over languages resamples each language separately (stratified) and averages the
  per-language replicate differences;
* a setting with several seeds is averaged over its seeds inside each replicate, with the same
  sentence draw for every seed.

The interval is the percentile interval of the replicate differences; the point estimate is
the difference on the original data. ``significant`` means the interval excludes 0.

Across seeds: :func:`t_interval` is the Student-t interval of per-seed differences (mean +-
t * sd / sqrt(k), ``k - 1`` degrees of freedom); its t quantile is computed here from the
closed-form t distribution for integer degrees of freedom (Abramowitz & Stegun 26.7.3-4).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.metrics import Statistic, prf

_PRF_INDEX = {"precision": 0, "recall": 1, "f1": 2}


@dataclass(frozen=True)
class CI:
    """A point estimate of a difference and its confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str  # "bootstrap" (over sentences) or "t" (over seeds)
    n: int  # sentences (summed over strata) or seeds
    n_boot: int = 0  # bootstrap replicates (0 for the t-interval)
    p_value: float | None = None  # two-sided, uncorrected (see bootstrap_p / t_p)
    se: float | None = None  # standard error of the estimate (replicate sd, or sd/sqrt(k))

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (a NaN interval is never significant); this is
        the uncorrected test: reports star only what survives the multiple-comparison
        correction (:func:`holm`)."""
        return bool(self.low > 0 or self.high < 0)


_CHUNK_ELEMENTS = 1 << 22  # weights drawn per block: bounds memory for large strata (BUCC)


def iter_weights(n: int, n_boot: int, seed: int, key: str = "") -> Iterator[np.ndarray]:
    """Resampling weights in blocks of replicates: row ``r`` counts how often each of the ``n``
    items is drawn in replicate ``r`` (``n`` draws with replacement, so each row sums to ``n``).

    The generator is seeded with ``(seed, crc32(key))``: the same stratum (``key``, e.g.
    ``"tatoeba|de|en->x|xtreme|test"``) gets the same draws in every comparison and every run,
    and different strata get independent draws whatever order they are processed in. The block
    size depends only on ``n``, so the draws do too.
    """
    if n < 1:
        raise ValueError("cannot resample an empty set of items")
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        r = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(r, n)) + np.arange(r)[:, None] * n
        yield np.bincount(idx.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)


def bootstrap_weights(n: int, n_boot: int, seed: int, key: str = "") -> np.ndarray:
    """All resampling weights of a stratum as one ``(n_boot, n)`` matrix (small strata)."""
    return np.concatenate(list(iter_weights(n, n_boot, seed, key)))


def _check(values: np.ndarray, statistic: Statistic) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if statistic == "mean":
        if values.ndim != 1:
            raise ValueError(f"mean outcomes must be 1-d, got shape {values.shape}")
    elif values.ndim != 2 or values.shape[1] != 3:
        raise ValueError(
            f"count outcomes must have shape (n, 3) [tp, pred, gold], got {values.shape}"
        )
    return values


def _from_sums(sums: np.ndarray, statistic: Statistic) -> np.ndarray:
    """P/R/F1 of rows of summed (tp, pred, gold) counts."""
    col = _PRF_INDEX[statistic]
    return np.array([prf(tp, pred, gold)[col] for tp, pred, gold in np.atleast_2d(sums)])


def statistic_value(values: np.ndarray, statistic: Statistic) -> float:
    """The metric on the original items: their mean, or P/R/F1 of their summed counts."""
    values = _check(values, statistic)
    if statistic == "mean":
        return float(values.mean())
    return float(_from_sums(values.sum(axis=0), statistic)[0])


def replicates(weights: np.ndarray, values: np.ndarray, statistic: Statistic) -> np.ndarray:
    """The metric in every bootstrap replicate (one value per row of ``weights``)."""
    values = _check(values, statistic)
    if weights.shape[1] != len(values):
        raise ValueError(f"{weights.shape[1]} weights for {len(values)} items")
    if statistic == "mean":
        return weights @ values / len(values)
    return _from_sums(weights @ values, statistic)


def bootstrap_replicates(
    systems: Sequence[np.ndarray], statistic: Statistic, *, n_boot: int, seed: int, key: str
) -> np.ndarray:
    """Replicates of every system on one stratum, all on the same draws: shape
    ``(len(systems), n_boot)``. Systems are the cells (settings x seeds) scoring the same items.
    """
    arrays = [_check(v, statistic) for v in systems]
    lengths = {len(v) for v in arrays}
    if len(lengths) != 1:
        raise ValueError(f"stratum {key!r}: item arrays differ in length {sorted(lengths)}")
    out = np.empty((len(arrays), n_boot))
    start = 0
    for w in iter_weights(lengths.pop(), n_boot, seed, key):
        for i, v in enumerate(arrays):
            out[i, start : start + len(w)] = replicates(w, v, statistic)
        start += len(w)
    return out


def bootstrap_p(estimate: float, reps: np.ndarray) -> float:
    """Two-sided p-value of "the difference is 0" from the bootstrap standard error (a Wald
    test, ``erfc(|d| / (se * sqrt(2)))``). Counting replicates on either side of 0 cannot go
    below ``2 / (B + 1)``, too coarse once a family of comparisons is corrected; the normal
    approximation is smooth and agrees with the count where the count has resolution."""
    reps = np.asarray(reps, dtype=np.float64)
    se = float(np.std(reps, ddof=1)) if len(reps) > 1 else 0.0
    if se == 0.0:
        return 1.0 if estimate == 0 else 0.0
    return float(math.erfc(abs(estimate) / (se * math.sqrt(2))))


def percentile_ci(estimate: float, reps: np.ndarray, confidence: float, *, n: int) -> CI:
    """Percentile interval of replicate differences around the original-data estimate, with
    its bootstrap p-value and standard error."""
    alpha = 1.0 - confidence
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return CI(
        float(estimate), float(low), float(high), confidence, "bootstrap", n, len(reps),
        p_value=bootstrap_p(estimate, reps),
        se=float(np.std(reps, ddof=1)) if len(reps) > 1 else None,
    )  # fmt: skip


@dataclass(frozen=True)
class Stratum:
    """One stratum (a language) of a paired comparison: the same items scored by system A and
    system B, each given as one array per seed (a single-seed system is a 1-tuple)."""

    a: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    key: str = ""

    @property
    def n(self) -> int:
        """Number of items (sentences) in the stratum."""
        return len(self.a[0])


def seed_mean_value(seeds: Sequence[np.ndarray], statistic: Statistic) -> float:
    """A multi-seed system's metric: the average of its seeds' metrics."""
    return float(np.mean([statistic_value(v, statistic) for v in seeds]))


def paired_bootstrap(
    strata: Sequence[Stratum],
    statistic: Statistic,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CI:
    """CI of ``mean over strata of (metric(B) - metric(A))`` by paired, stratified bootstrap.

    With one stratum this is the plain paired bootstrap of one language's difference. Items of
    A and B (and of every seed) must be aligned: the same sentence at the same position.
    """
    if not strata:
        raise ValueError("no strata to compare")
    estimate = 0.0
    reps = np.zeros(n_boot)
    for st in strata:
        r = bootstrap_replicates([*st.a, *st.b], statistic, n_boot=n_boot, seed=seed, key=st.key)
        na = len(st.a)
        estimate += seed_mean_value(st.b, statistic) - seed_mean_value(st.a, statistic)
        reps += r[na:].mean(axis=0) - r[:na].mean(axis=0)
    k = len(strata)
    return percentile_ci(estimate / k, reps / k, confidence, n=sum(st.n for st in strata))


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, 1.0
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= (2 * k) / (2 * k + 1) * c * c
        return (2 / math.pi) * (theta + s * c * total)
    total, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):
        total += term
        term *= (2 * k - 1) / (2 * k) * c * c
    return s * total


def t_quantile(confidence: float, df: int) -> float:
    """The t such that ``P(|T| <= t) = confidence`` (e.g. 12.706 for 95% and df = 1)."""
    if df < 1:
        raise ValueError("the t-interval needs at least two values (df >= 1)")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(values: Sequence[float], confidence: float = 0.95) -> CI | None:
    """Student-t CI of the mean of per-seed values (differences); None with fewer than two."""
    x = np.asarray(values, dtype=np.float64)
    k = len(x)
    if k < 2:
        return None
    mean = float(x.mean())
    se = float(x.std(ddof=1)) / math.sqrt(k)
    half = t_quantile(confidence, k - 1) * se
    p = (
        1.0
        if se == 0 and mean == 0
        else (0.0 if se == 0 else 1 - _t_two_sided(abs(mean) / se, k - 1))
    )
    return CI(mean, mean - half, mean + half, confidence, "t", k, p_value=float(p), se=se)


def combined_significance(*cis: CI | None) -> bool | None:
    """Significant only if every available interval excludes 0; None if there is none."""
    present = [ci for ci in cis if ci is not None]
    if not present:
        return None
    return all(ci.significant for ci in present)


def combined_p(*cis: CI | None) -> float | None:
    """One p-value for a comparison with several intervals: the largest (an intersection-union
    test: the difference counts only when every available test rejects); None without any."""
    ps = [ci.p_value for ci in cis if ci is not None and ci.p_value is not None]
    return max(ps) if ps else None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; controls the family-wise error rate for
    any dependence between the tests). Reject where the adjusted p is below alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def normal_quantile(q: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    if not 0 < q < 1:
        raise ValueError("q must lie in (0, 1)")
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269,
         -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
         -13.28068155288572)  # fmt: skip
    c = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
         4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    if q < 0.02425:
        t = math.sqrt(-2 * math.log(q))
        return (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1
        )
    if q > 1 - 0.02425:
        return -normal_quantile(1 - q)
    r = q - 0.5
    t = r * r
    return (
        (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5])
        * r
        / (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1)
    )


def minimum_detectable_effect(se: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at level ``alpha`` detects with
    probability ``power`` when the estimate's standard error is ``se``:
    ``(z_{1-alpha/2} + z_power) * se`` (0.8 power, alpha 0.05: 2.8 standard errors)."""
    return (normal_quantile(1 - alpha / 2) + normal_quantile(power)) * se
