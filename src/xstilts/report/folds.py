"""Held-out selection: every "best" the report picks is picked on data it does not then report.

Each language's per-sentence items are split once, by a seeded draw that every cell shares, into
a **selection split** (a third by default) and a **test split** (the rest). Searches still ran
over the language's whole candidate set at evaluation time; the split divides the *queries*
(Tatoeba sentence pairs, BUCC source sentences, LAReQA questions, Mewsli-X mentions), so both
splits are scored with exactly the protocol of the full set. Items that belong together are
split together: LAReQA questions by article and Mewsli-X mentions by document (their ``group``
items), since questions on one article are not independent evidence.

Choices made on the selection split: the best English and the best multilingual setting of
the head-to-head, the "best setting" of the findings, and the report layer when
``report_layer: best``. What is then reported about those choices comes from the test split.
Comparisons fixed in advance (each setting against the baseline at a fixed layer) involve no
choice and are reported on the full data.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from xstilts.metrics import Statistic
from xstilts.report.stats import bootstrap_replicates, statistic_value

SELECTION_WHAT = (
    "the selection split (a seeded third of each language's sentences; LAReQA questions by "
    "article, Mewsli-X mentions by document)"
)


def selection_mask(
    n: int, key: str, *, fraction: float, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """``True`` for the items of the selection split of one stratum, ``False`` for its test
    split: a ``fraction`` of the items (or of the groups, with ``groups``), drawn with a
    generator seeded by ``(seed, crc32(key))``: the same for every cell, run and report.

    A stratum whose items all belong to one group (a quick LAReQA subset whose questions come
    from one article) cannot be split by group: its items are split instead, so both splits
    exist; the two then share that group's context (:func:`single_group`, said in the report).
    """
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    mask = np.zeros(n, dtype=bool)
    if groups is None or single_group(groups):
        k = min(n - 1, max(1, round(fraction * n))) if n > 1 else 0
        mask[rng.choice(n, size=k, replace=False)] = True
        return mask
    unique = np.unique(groups)
    k = min(len(unique) - 1, max(1, round(fraction * len(unique)))) if len(unique) > 1 else 0
    chosen = rng.choice(unique, size=k, replace=False)
    return np.isin(groups, chosen)


def single_group(groups: np.ndarray | None) -> bool:
    """Whether a stratum's items all belong to one group (and there are at least two items)."""
    return groups is not None and len(groups) > 1 and len(np.unique(groups)) == 1


@dataclass
class FoldScores:
    """Per (cell, language): the metric on one split, and bootstrap replicates on it."""

    values: dict[tuple[str, str], float] = field(default_factory=dict)
    reps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass
class Folds:
    """The selection and test splits of one headline metric: masks per language and the
    scores of every cell on each split."""

    masks: dict[str, np.ndarray]
    selection: FoldScores
    test: FoldScores
    by_item: list[str] = field(default_factory=list)  # one-group languages, split by item

    def score(self, fold: str, keys: list[str], langs: list[str]) -> float:
        """Mean over languages of the mean over ``keys`` (a setting's seeds) on one split."""
        scores = self.selection if fold == "selection" else self.test
        return float(np.mean([np.mean([scores.values[(c, x)] for c in keys]) for x in langs]))

    def seed_scores(self, fold: str, keys: list[str], langs: list[str]) -> list[float]:
        """One split's score of each of ``keys`` (per seed), mean over languages."""
        scores = self.selection if fold == "selection" else self.test
        return [float(np.mean([scores.values[(c, x)] for x in langs])) for c in keys]


def build_folds(
    arrays: dict[tuple[str, str], np.ndarray],
    groups: dict[str, np.ndarray | None],
    statistic: Statistic,
    keys: dict[str, str],
    *,
    fraction: float,
    seed: int,
    n_boot: int,
) -> Folds:
    """Split every language's items and score every cell on both splits.

    ``arrays[(cell, lang)]`` are the per-sentence items behind a metric (all cells of one
    language have the same items in the same order), ``groups[lang]`` the items' groups or
    None, ``keys[lang]`` the stratum name that seeds the split and the bootstrap.
    """
    langs = sorted({lang for _, lang in arrays})
    cells = sorted({cell for cell, _ in arrays})
    masks: dict[str, np.ndarray] = {}
    out = {"selection": FoldScores(), "test": FoldScores()}
    for lang in langs:
        n = len(arrays[(cells[0], lang)])
        masks[lang] = selection_mask(
            n, keys[lang], fraction=fraction, seed=seed, groups=groups.get(lang)
        )
        for fold, keep in (("selection", masks[lang]), ("test", ~masks[lang])):
            systems = [arrays[(c, lang)][keep] for c in cells]
            reps = bootstrap_replicates(
                systems, statistic, n_boot=n_boot, seed=seed, key=f"{keys[lang]}|{fold}"
            )
            for i, c in enumerate(cells):
                out[fold].values[(c, lang)] = statistic_value(systems[i], statistic)
                out[fold].reps[(c, lang)] = reps[i]
            out[fold].sizes[lang] = int(keep.sum())
    by_item = [lang for lang in langs if single_group(groups.get(lang))]
    return Folds(masks, out["selection"], out["test"], by_item)
