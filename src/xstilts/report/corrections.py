"""Significance corrected for the number of comparisons, and what the design could detect.

A report makes many comparisons; testing each at 95 % finds "significant" differences by chance.
Two families are corrected with Holm-Bonferroni (:func:`xstilts.report.stats.holm`, which
controls the family-wise error rate whatever the dependence between tests):

* the **headline family**: every setting against the baseline on every headline metric, the
  best English against the best multilingual setting on every metric, and the chosen best
  setting against the baseline (the report's claims);
* a **per-setting family** for each metric and setting: its per-language deltas and its
  language-group deltas (where the gains are).

A comparison's p-value is the larger of its paired bootstrap p-value over sentences and its
t-test over seeds (significant only when both reject). A star means "significant after the
correction". Intervals stay the usual 95 % intervals, uncorrected.

The **minimum detectable effect** of a metric is the difference a comparison of this design
would detect with 80 % power at the most stringent corrected level (alpha divided by the family
size, Holm's first step): ``(z(1 - alpha'/2) + z(0.8)) * SE``, with SE the median standard error
of the settings' deltas (bootstrap over sentences, combined with the spread over seeds when
there are several). A difference smaller than that is not evidence either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xstilts.report.stats import holm, minimum_detectable_effect


def _adjust(tests: Sequence[Any]) -> None:
    """Holm over ``tests`` (objects with ``p_value`` and ``p_adjusted``), in place."""
    tested = [t for t in tests if t.p_value is not None]
    for t, p in zip(tested, holm([t.p_value for t in tested]), strict=True):
        t.p_adjusted = p


def headline_family(results: Sequence[Any]) -> list[Any]:
    """The report's claims: setting vs baseline, English vs multilingual, best vs baseline."""
    family: list[Any] = []
    for res in results:
        family += [r for r in res.settings if r.delta is not None]
        family += [c for c in (res.english_vs_multilingual, res.best) if c is not None]
    return family


def apply(results: Sequence[Any]) -> int:
    """Correct both families in place; returns the size of the headline family."""
    family = headline_family(results)
    _adjust(family)
    for res in results:
        for r in res.settings:
            _adjust([*r.per_lang.values(), *(g for g in res.groups if g.setting == r.setting)])
        res.mde = mde(res, len([t for t in family if t.p_value is not None]))
    return len(family)


def mde(res: Any, family_size: int, power: float = 0.8) -> float | None:
    """The minimum detectable effect of one headline metric (module docstring)."""
    ses = []
    for r in res.settings:
        boot = r.ci.se if r.ci is not None else None
        seed = r.seed_ci.se if r.seed_ci is not None else None
        parts = [s for s in (boot, seed) if s is not None]
        if parts:
            ses.append(math.sqrt(sum(s * s for s in parts)))
    if not ses or family_size < 1:
        return None
    alpha = res.settings[0].alpha / family_size
    return minimum_detectable_effect(float(np.median(ses)), alpha, power)
