"""The report's choices, made on the selection split and reported on the test split.

* the head-to-head: the best English setting against the best multilingual setting;
* the findings' best setting: the largest gain over the baseline.

Each is picked by its score on the selection split (:mod:`.folds`) and what is reported about
it (the difference, its paired bootstrap interval over the test split's sentences, its t-interval
over seeds) comes from the test split. Without per-sentence items there is nothing to hold out:
the choice is then made on the reported numbers, and the result says so (``selected_on``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.experiment.spec import ReportOptions
from xstilts.report.folds import SELECTION_WHAT, Folds
from xstilts.report.stats import CI, combined_p, percentile_ci, t_interval

ON_REPORTED = "the reported numbers (no per-sentence items to hold a split out)"


@dataclass
class Comparison:
    """B minus A on one headline metric, with its intervals and its place in the family of
    tests the report corrects for (``p_adjusted``, set by :mod:`.corrections`)."""

    a: str  # setting names
    b: str
    a_score: float  # on the split the comparison is reported on
    b_score: float
    delta: float
    ci: CI | None
    seed_ci: CI | None
    selected_on: str
    reported_on: str
    alpha: float
    p_adjusted: float | None = None

    @property
    def p_value(self) -> float | None:
        """Uncorrected: the larger of the bootstrap and the seed test's p-values."""
        return combined_p(self.ci, self.seed_ci)

    @property
    def significant(self) -> bool | None:
        """Significant after the correction for multiple comparisons; None without a test."""
        return None if self.p_adjusted is None else self.p_adjusted < self.alpha


def _reps(folds: Folds, keys: list[str], lang: str) -> np.ndarray:
    return np.mean([folds.test.reps[(c, lang)] for c in keys], axis=0)


def on_test_split(
    folds: Folds, a_keys: list[str], b_keys: list[str], langs: list[str], options: ReportOptions
) -> tuple[float, CI, CI | None]:
    """B - A on the test split: the difference, its paired bootstrap CI (stratified by
    language, seeds averaged inside each replicate) and its t-interval over paired seeds."""
    delta = folds.score("test", b_keys, langs) - folds.score("test", a_keys, langs)
    diffs = np.mean([_reps(folds, b_keys, x) - _reps(folds, a_keys, x) for x in langs], axis=0)
    n = sum(folds.test.sizes[x] for x in langs)
    ci = percentile_ci(delta, diffs, options.confidence, n=n)
    a_seeds = folds.seed_scores("test", a_keys, langs)
    b_seeds = folds.seed_scores("test", b_keys, langs)
    if len(a_seeds) == len(b_seeds) >= 2:  # seed i of A paired with seed i of B
        seed_ci = t_interval(
            [b - a for a, b in zip(a_seeds, b_seeds, strict=True)], options.confidence
        )
    else:  # a single-seed side (the baseline): the other side's seeds against it
        single = a_seeds[0] if len(a_seeds) == 1 else None
        seed_ci = (
            t_interval([b - single for b in b_seeds], options.confidence)
            if single is not None
            else None
        )
    return delta, ci, seed_ci


def pick(
    candidates: Sequence[str],
    keys_of: dict[str, list[str]],
    langs: list[str],
    folds: Folds | None,
    full_score: dict[str, float],
) -> str:
    """The candidate with the highest selection-split score (the full score without folds)."""
    if folds is None:
        return max(candidates, key=lambda s: full_score[s])
    return max(candidates, key=lambda s: folds.score("selection", keys_of[s], langs))


def compare_chosen(
    a: str,
    b: str,
    keys_of: dict[str, list[str]],
    langs: list[str],
    folds: Folds | None,
    full: tuple[float, float, float, CI | None, CI | None],
    options: ReportOptions,
) -> Comparison:
    """The comparison of two chosen settings: on the test split when there are folds, else on
    the reported numbers (``full``: A's and B's scores, delta, CI, seed CI), flagged as such."""
    alpha = 1 - options.confidence
    if folds is None:
        a_score, b_score, delta, ci, seed_ci = full
        return Comparison(
            a, b, a_score, b_score, delta, ci, seed_ci, ON_REPORTED, "the reported numbers", alpha
        )
    delta, ci, seed_ci = on_test_split(folds, keys_of[a], keys_of[b], langs, options)
    a_score = folds.score("test", keys_of[a], langs)
    b_score = folds.score("test", keys_of[b], langs)
    return Comparison(
        a, b, a_score, b_score, delta, ci, seed_ci, SELECTION_WHAT, "the test split", alpha
    )
