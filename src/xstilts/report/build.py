"""From stored metrics to the numbers of a report: headline selection, scores, deltas, CIs.

Input is tidy metric rows (``ResultStore.metrics()`` or the ``metrics`` of results files) plus
a way to fetch per-sentence items; output is plain dataclasses that :mod:`.render` formats and
:mod:`.findings` turns into sentences. Nothing here formats text or draws.

Headline selection (one number per setting, language and headline metric):

* the report layer: ``--layer``, else the spec's ``evaluation.report_layer`` (``"last"`` = the
  highest hidden-state index evaluated for that model);
* protocol ``xtreme`` only (MTEB-protocol rows stay in ``results.csv``);
* the headline metrics every registered task declares (:attr:`RetrievalTask.headlines`:
  Tatoeba accuracy en->x and x->en, BUCC F1, LAReQA and Mewsli-X mAP@20), each on ``test``
  where present, else on another split, flagged as optimistic when it is one the task tunes a
  threshold on (:attr:`RetrievalTask.tuning_splits`: BUCC's ``dev``/``sample``);
* a setting's score is the mean over languages (the languages every cell has) of its stored
  values, averaged over seeds; its delta is that score minus the baseline's.

CIs come from :mod:`.stats`: one bootstrap draw per (task, language, direction, split) stratum,
shared by every cell, so each comparison is a difference of replicate arrays.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xstilts.data.language_info import RESOURCE_GROUPS, resource_group, script
from xstilts.errors import DataError, UsageError
from xstilts.experiment.spec import ExperimentSpec, ReportOptions, load_spec
from xstilts.experiment.store import ResultStore
from xstilts.report import corrections
from xstilts.report.choices import Comparison, compare_chosen, pick
from xstilts.report.folds import SELECTION_WHAT, Folds, build_folds
from xstilts.report.stats import (
    CI,
    bootstrap_replicates,
    combined_p,
    percentile_ci,
    statistic_value,
    t_interval,
)
from xstilts.report.training import TrainingSummary, budget_notes, summaries, training_notes
from xstilts.tasks import Headline, all_headlines, get_task
from xstilts.tasks.base import GROUP_KIND
from xstilts.tasks.results import decode_items, load_results

GROUP_ORDER = ("baseline", "english", "multilingual", "mixed")
_ITEM_TOLERANCE = 1e-4  # items (float32) must reproduce the stored metric to this precision

# (task, lang, layer, direction, protocol, split) of one items array
ItemKey = tuple[str, str, int, str | None, str, str]
# (cell key, item key, kind) -> the per-sentence array, or None when it was not stored
ItemSource = Callable[[str, ItemKey, str], np.ndarray | None]


@dataclass
class Tested:
    """A difference with a test: significant when its p-value, corrected for the number of
    comparisons in its family (:mod:`.corrections`), is below ``alpha``."""

    alpha: float = 0.05
    p_adjusted: float | None = None

    @property
    def significant(self) -> bool | None:
        """Significant after correction; None when there is no test (no interval)."""
        return None if self.p_adjusted is None else self.p_adjusted < self.alpha


@dataclass
class LangResult(Tested):
    """One setting in one language: its score (mean over seeds) and the delta vs baseline."""

    value: float = 0.0
    delta: float | None = None
    ci: CI | None = None

    @property
    def p_value(self) -> float | None:
        """The bootstrap p-value of the delta, uncorrected."""
        return None if self.ci is None else self.ci.p_value


@dataclass(kw_only=True)
class SettingResult(Tested):
    """One setting on one headline metric."""

    setting: str
    group: str
    seeds: list[int | None]
    score: float  # mean over languages, then over seeds, of the stored values
    per_seed: list[float]
    per_lang: dict[str, LangResult]
    delta: float | None = None
    ci: CI | None = None  # paired bootstrap over sentences, stratified by language
    seed_ci: CI | None = None  # t-interval over seeds (two or more seeds)
    ci_note: str = ""  # why there is no sentence-level CI

    @property
    def p_value(self) -> float | None:
        """Uncorrected: the larger of the bootstrap and the seed test's p-values (a delta is
        significant only when both tests reject), None without a delta or any test."""
        return None if self.delta is None else combined_p(self.ci, self.seed_ci)

    @property
    def seed_sd(self) -> float | None:
        """Standard deviation of the score across seeds (None with one seed)."""
        return float(np.std(self.per_seed, ddof=1)) if len(self.per_seed) > 1 else None


@dataclass(kw_only=True)
class GroupResult(Tested):
    """Mean delta of one setting over a group of languages (resource level or script)."""

    kind: str  # "resource" or "script"
    group: str
    setting: str
    langs: list[str]
    delta: float
    ci: CI | None

    @property
    def p_value(self) -> float | None:
        """The bootstrap p-value of the delta, uncorrected."""
        return None if self.ci is None else self.ci.p_value


@dataclass
class HeadlineResult:
    """Everything the report shows for one model and one headline metric."""

    model: str
    headline: Headline
    layer: int
    languages: list[str]
    splits: dict[str, str]  # language -> split the number comes from
    baseline: SettingResult | None
    settings: list[SettingResult]  # the other settings, in display order
    per_layer: pd.DataFrame  # index layer, columns setting: mean over languages and seeds
    groups: list[GroupResult] = field(default_factory=list)
    english_vs_multilingual: Comparison | None = None  # B = English, A = multilingual
    best: Comparison | None = None  # B = the best setting (chosen on selection), A = baseline
    reported_on: str = "all sentences"  # "the test split" when the layer was chosen on data
    mde: float | None = None  # smallest difference the design detects (80% power, corrected)
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[SettingResult]:
        """Baseline first, then the other settings."""
        return ([self.baseline] if self.baseline else []) + self.settings

    @property
    def tuned_split(self) -> bool:
        """True when some number comes from the split its threshold was tuned on."""
        tuning = get_task(self.headline.task).tuning_splits
        return any(s in tuning for s in self.splits.values())


@dataclass
class Report:
    """A whole report: the source, the options and one result per model and headline."""

    title: str
    source: Path
    spec: ExperimentSpec | None
    options: ReportOptions
    layers: dict[str, int]  # model -> report layer
    results: list[HeadlineResult]
    metrics: pd.DataFrame  # every stored metric row (results.csv)
    notes: list[str] = field(default_factory=list)
    training: list[TrainingSummary] = field(default_factory=list)  # per trained setting
    layer_choice: dict[str, str] = field(default_factory=dict)  # model -> how it was chosen


# ---------------------------------------------------------------------------- loading


def open_source(path: Path) -> tuple[Any, ExperimentSpec | None]:
    """The results store and spec behind ``SPEC_OR_DB`` (a spec YAML or a ``.sqlite`` file)."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        spec = load_spec(path)
        assert spec.output is not None
        return ResultStore.open_existing(spec.output / "results.sqlite"), spec
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a spec YAML or a results.sqlite file")
    store = ResultStore.open_existing(path)
    raw = store.get_meta("spec")
    spec = None
    if raw is not None:
        try:
            spec = ExperimentSpec.model_validate(raw)
        except ValueError:
            spec = None  # an older or hand-edited spec: report from the store alone
    return store, spec


def _failed(store: Any) -> list[str]:
    """One line per failed cell or evaluation: the report must say what is missing."""
    lines = []
    cells = store.cells()
    for row in cells[cells.status != "done"].itertuples():
        seed = "" if pd.isna(row.seed) else f" seed {int(row.seed)}"
        err = f": {row.error}" if isinstance(row.error, str) and row.error else ""
        lines.append(f"cell {row.setting} @ {row.model}{seed} is {row.status}{err}")
    evals = store.evals()
    evals = evals[evals.status != "done"].merge(cells, on="cell_key", suffixes=("", "_cell"))
    for row in evals.itertuples():
        seed = "" if pd.isna(row.seed) else f" seed {int(row.seed)}"
        lines.append(
            f"evaluation {row.eval_key} of {row.setting} @ {row.model}{seed} failed: {row.error}"
        )
    return lines


def _options(spec: ExperimentSpec | None, cells: pd.DataFrame, bootstrap: int | None):
    options = spec.report if spec else ReportOptions(baseline=_infer_baseline(cells))
    if bootstrap is not None:
        if bootstrap < 100:
            raise UsageError(f"--bootstrap {bootstrap}: use at least 100 replicates")
        options = options.model_copy(update={"bootstrap": bootstrap})
    return options


def build_report(
    source: Path, *, layer: int | str | None = None, bootstrap: int | None = None
) -> Report:
    """Read a store (via a spec or directly) and compute every number of the report."""
    store, spec = open_source(source)
    try:
        metrics = store.metrics()
        cells = store.cells()
        failed = _failed(store)
        if metrics.empty:
            raise DataError(f"{store.path}: no metrics stored yet (run `xstilts run SPEC` first)")
        options = _options(spec, cells, bootstrap)
        order = [s.name for s in spec.settings] if spec else list(dict.fromkeys(cells.setting))
        requested: int | str = (
            layer if layer is not None else (spec.evaluation.report_layer if spec else "last")
        )

        def items(cell: str, key: ItemKey, kind: str) -> np.ndarray | None:
            return store.items(cell, *key, kind)

        results: list[HeadlineResult] = []
        layers: dict[str, int] = {}
        choice: dict[str, str] = {}
        models = [m for m in (spec.models if spec else []) if m in set(metrics.model)]
        models += sorted(set(metrics.model) - set(models))
        for model in models:
            df = metrics[metrics.model == model]
            if requested == "best":
                layers[model] = choose_layer(df, items, options, order)
                choice[model] = f"chosen on {SELECTION_WHAT}; every number from the test split"
            else:
                layers[model] = resolve_layer(df, requested, model)
            for headline in all_headlines("xtreme"):
                res = headline_result(
                    df, headline, layers[model], items, options, order=order, model=model,
                    test_only=requested == "best",
                )  # fmt: skip
                if res is not None:
                    results.append(res)
    finally:
        store.close()
    corrections.apply(results)
    trained = summaries(cells)
    notes = [*failed, *training_notes(trained), *budget_notes(trained, options.budget_tolerance)]
    if not results:
        notes.append("no headline metric (protocol xtreme) at the report layer")
    for task in spec.evaluation.tasks if spec else []:
        if task.max_sentences:
            what = get_task(task.task).describe_subset(task.max_sentences)
            notes.append(f"{task.task} was evaluated on a subset: {what} (max_sentences)")
    title = spec.name if spec else Path(source).stem
    return Report(
        title, Path(source), spec, options, layers, results, metrics, notes, trained, choice
    )


def choose_layer(
    df: pd.DataFrame, items: ItemSource, options: ReportOptions, order: Sequence[str]
) -> int:
    """``report_layer: best``: the layer with the highest mean selection-split score over the
    headline metrics and every cell (each metric weighted equally)."""
    best, best_score = None, -math.inf
    for layer in sorted(int(x) for x in df.layer.unique()):
        per_metric = []
        for headline in all_headlines("xtreme"):
            rows = headline_rows(df, headline)
            rows = rows[rows.layer == layer]
            if rows.empty:
                continue
            langs, _ = _common_langs(rows)
            rows = rows[rows.lang.isin(langs)]
            value = rows.pivot_table(
                index="cell_key", columns="lang", values="value", aggfunc="first"
            )
            arrays, _ = _item_arrays(rows, headline, langs, items, value)
            folds = _folds(rows, headline, langs, items, arrays, options)
            if folds is None:
                raise DataError(
                    f"report_layer best needs per-sentence items of every cell ({headline.label} "
                    f"at layer {layer} has none); give a layer instead"
                )
            per_metric.append(folds.score("selection", list(value.index), langs))
        score = float(np.mean(per_metric)) if per_metric else -math.inf
        if score > best_score:
            best, best_score = layer, score
    if best is None:
        raise DataError("report_layer best: no headline metric is stored")
    return best


def _infer_baseline(cells: pd.DataFrame) -> str:
    names = list(dict.fromkeys(cells[cells.grp == "baseline"].setting))
    return names[0] if len(names) == 1 else "baseline"


def resolve_layer(df: pd.DataFrame, requested: int | str, model: str = "") -> int:
    """The report layer: an evaluated hidden-state index, or the highest one for ``"last"``."""
    available = sorted(int(x) for x in df.layer.unique())
    if requested == "last":
        return available[-1]
    if int(requested) not in available:
        where = f" for {model}" if model else ""
        raise UsageError(
            f"layer {requested} was not evaluated{where}; available: "
            f"{', '.join(map(str, available))}"
        )
    return int(requested)


# ---------------------------------------------------------------------------- one headline


def headline_rows(df: pd.DataFrame, headline: Headline) -> pd.DataFrame:
    """The stored rows of one headline metric (all layers), split chosen per language:
    ``test`` where present, else the split the number was tuned on."""
    m = df[
        (df.task == headline.task)
        & (df.metric == headline.metric)
        & (df.protocol == headline.protocol)
    ]
    m = (
        m[m.direction.isna()]
        if headline.direction is None
        else m[m.direction == headline.direction]
    )
    if m.empty:
        return m
    chosen = {
        lang: ("test" if "test" in set(g.split) else sorted(set(g.split))[0])
        for lang, g in m.groupby("lang")
    }
    return m[m.split == m.lang.map(chosen)]


def _common_langs(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Languages every cell has (in first-seen order), and the ones dropped."""
    all_langs = list(dict.fromkeys(rows.lang))
    per_cell = [set(g.lang) for _, g in rows.groupby("cell_key")]
    common = set.intersection(*per_cell) if per_cell else set()
    return [x for x in all_langs if x in common], [x for x in all_langs if x not in common]


def _settings_frame(rows: pd.DataFrame, order: Sequence[str], baseline: str) -> list[tuple]:
    """(setting, group, [(cell_key, seed), ...]) in display order: baseline, then groups."""
    out = []
    for setting, g in rows.groupby("setting", sort=False):
        cells = g[["cell_key", "seed"]].drop_duplicates().sort_values("seed", na_position="first")
        seeds = [(c, None if pd.isna(s) else int(s)) for c, s in cells.itertuples(index=False)]
        out.append((setting, str(g.grp.iloc[0]), seeds))
    rank = {name: i for i, name in enumerate(order)}

    def key(item: tuple) -> tuple:
        setting, group, _ = item
        grp = (
            0
            if setting == baseline
            else 1 + (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER))
        )
        return (grp, rank.get(setting, len(rank)), setting)

    return sorted(out, key=key)


def _split_notes(headline: Headline, splits: dict[str, str]) -> list[str]:
    """What a reader must know about the splits the numbers come from."""
    notes = []
    tuning = get_task(headline.task).tuning_splits
    tuned = sorted(lang for lang, s in splits.items() if s in tuning)
    other = sorted(lang for lang, s in splits.items() if s != "test" and s not in tuning)
    if tuned:
        notes.append(
            f"{headline.label} for {', '.join(tuned)} is measured on the split its threshold "
            f"was tuned on ({', '.join(sorted({splits[x] for x in tuned}))}): optimistic"
        )
    if other:
        notes.append(f"{headline.label} for {', '.join(other)} is not from a test split")
    return notes


@dataclass
class _Scores:
    """Per (cell, language): the value reported and bootstrap replicates behind it."""

    value: pd.DataFrame  # index cell key, columns language
    reps: dict[tuple[str, str], np.ndarray]
    sizes: dict[str, int]


def headline_result(
    df: pd.DataFrame,
    headline: Headline,
    layer: int,
    items: ItemSource | None,
    options: ReportOptions,
    *,
    order: Sequence[str] = (),
    model: str = "",
    test_only: bool = False,
) -> HeadlineResult | None:
    """Scores, deltas vs baseline and CIs of one headline metric for one model.

    ``test_only``: every number from the test split only (the layer was chosen on the
    selection split, which must then not be reported).
    """
    all_rows = headline_rows(df, headline)
    rows = all_rows[all_rows.layer == layer]
    if rows.empty:
        return None
    notes: list[str] = []
    langs, dropped = _common_langs(rows)
    if dropped:
        notes.append(
            f"{headline.label}: {', '.join(dropped)} left out of the means (not every cell has "
            "them)"
        )
    rows = rows[rows.lang.isin(langs)]
    splits = dict(zip(rows.lang, rows.split, strict=False))
    notes += _split_notes(headline, splits)
    value = rows.pivot_table(index="cell_key", columns="lang", values="value", aggfunc="first")
    groups = _settings_frame(rows, order, options.baseline)
    arrays, item_notes = _item_arrays(rows, headline, langs, items, value)
    notes += item_notes
    folds = _folds(rows, headline, langs, items, arrays, options)
    if folds is not None and folds.by_item:
        notes.append(
            f"{headline.label}: the items of {', '.join(folds.by_item)} come from one group "
            "(one LAReQA article, one Mewsli-X document), so their selection and test splits "
            "divide its items and share its context"
        )
    if test_only and folds is None:
        raise DataError(
            f"{headline.label}: report_layer best needs per-sentence items of every cell to "
            "hold the selection split out; give a layer instead"
        )
    scores = (
        _Scores(
            pd.DataFrame({x: {c: folds.test.values[(c, x)] for c in value.index} for x in langs}),
            folds.test.reps,
            folds.test.sizes,
        )
        if test_only and folds is not None
        else _full_scores(rows, headline, langs, arrays, value, options)
    )
    result = _assemble(
        model, headline, layer, langs, splits, groups, scores, all_rows, options, notes
    )
    if test_only:
        result.reported_on = "the test split"
    keys_of = {s: [c for c, _ in cells] for s, _, cells in groups}
    result.english_vs_multilingual = _head_to_head(result, keys_of, folds, scores.reps, options)
    result.best = _best(result, keys_of, folds, options)
    return result


def _assemble(
    model: str, headline: Headline, layer: int, langs: list[str], splits: dict[str, str],
    groups: list[tuple], scores: _Scores, all_rows: pd.DataFrame, options: ReportOptions,
    notes: list[str],
) -> HeadlineResult:  # fmt: skip
    """Every setting's score, its delta vs the baseline with CIs, and the language groups."""
    alpha = 1 - options.confidence
    value = scores.value
    results: list[SettingResult] = []
    for setting, group, cells in groups:
        keys = [c for c, _ in cells]
        per_seed = [float(np.mean(value.loc[c, langs].to_numpy())) for c in keys]
        per_lang = {
            x: LangResult(alpha=alpha, value=float(np.mean(value.loc[keys, x].to_numpy())))
            for x in langs
        }
        results.append(
            SettingResult(
                alpha=alpha,
                setting=setting,
                group=group,
                seeds=[s for _, s in cells],
                score=float(np.mean(per_seed)),
                per_seed=per_seed,
                per_lang=per_lang,
            )
        )
    base = next((r for r in results if r.setting == options.baseline), None)
    others = [r for r in results if r is not base]
    if base is None:
        notes.append(f"{headline.label}: no baseline {options.baseline!r} cell, so no deltas")
    else:
        base_keys = [c for s, _, cells in groups if s == base.setting for c, _ in cells]
        for res in others:
            keys = [c for s, _, cells in groups if s == res.setting for c, _ in cells]
            _compare(res, base, keys, base_keys, langs, scores.reps, scores.sizes, options)
    per_layer = _per_layer(all_rows, [r.setting for r in results])
    result = HeadlineResult(
        model, headline, layer, langs, splits, base, others, per_layer, notes=notes
    )
    if base is not None:
        result.groups = _group_results(result, groups, scores.reps, options)
    return result


def _stratum_key(headline: Headline, lang: str, split: str) -> str:
    return f"{headline.task}|{lang}|{headline.direction or ''}|{headline.protocol}|{split}"


def _fold_key(headline: Headline, lang: str, split: str) -> str:
    """What seeds the selection split of a stratum: task, language and split only, so that
    both directions of a Tatoeba pair, and every layer, share the same split."""
    return f"{headline.task}|{lang}|{split}|selection"


def _cell_items(
    items: ItemSource, cell: str, key: ItemKey, kinds: tuple[str, ...]
) -> np.ndarray | None:
    arrays = [items(cell, key, k) for k in kinds]
    if any(a is None for a in arrays):
        return None
    if len({len(a) for a in arrays}) != 1:  # type: ignore[arg-type]
        raise DataError(f"items of {key[0]}/{key[1]} in cell {cell}: kinds differ in length")
    return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=1)  # type: ignore[arg-type]


def _item_key(rows: pd.DataFrame, headline: Headline, lang: str) -> ItemKey:
    split = rows[rows.lang == lang].split.iloc[0]
    layer = int(rows.layer.iloc[0])
    return (headline.task, lang, layer, headline.direction, headline.protocol, split)


def _item_arrays(
    rows: pd.DataFrame,
    headline: Headline,
    langs: list[str],
    items: ItemSource | None,
    value: pd.DataFrame,
) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """The per-sentence items of every (cell, language) that are stored and reproduce the
    stored metric, and notes on what is missing or inconsistent."""
    kinds, statistic = headline.kinds, headline.statistic
    arrays: dict[tuple[str, str], np.ndarray] = {}
    missing: set[str] = set()
    inconsistent: list[str] = []
    for lang in langs:
        key = _item_key(rows, headline, lang)
        for cell in value.index:
            arr = _cell_items(items, cell, key, kinds) if items is not None and kinds else None
            if arr is None:
                missing.add(lang)
            elif abs(statistic_value(arr, statistic) - float(value.loc[cell, lang])) > (
                _ITEM_TOLERANCE
            ):
                inconsistent.append(f"{lang} ({cell})")
            else:
                arrays[(cell, lang)] = arr
        lengths = {len(a) for (c, x), a in arrays.items() if x == lang}
        if len(lengths) > 1:
            raise DataError(
                f"{headline.task}/{lang}: per-sentence items differ in length across cells "
                f"({', '.join(map(str, sorted(lengths)))}); the cells did not score the same data"
            )
    notes = []
    if missing:
        notes.append(
            f"{headline.label}: no per-sentence items stored for {_short(sorted(missing))}; "
            "deltas involving them have no sentence-level CI"
        )
    if inconsistent:
        notes.append(
            f"{headline.label}: stored items do not reproduce the stored metric for "
            f"{_short(inconsistent)}; no CI is computed from them"
        )
    return arrays, notes


def _full_scores(
    rows: pd.DataFrame,
    headline: Headline,
    langs: list[str],
    arrays: dict[tuple[str, str], np.ndarray],
    value: pd.DataFrame,
    options: ReportOptions,
) -> _Scores:
    """The stored values and bootstrap replicates over every sentence."""
    reps: dict[tuple[str, str], np.ndarray] = {}
    sizes: dict[str, int] = {}
    for lang in langs:
        have = {c: a for (c, x), a in arrays.items() if x == lang}
        if not have:
            continue
        split = rows[rows.lang == lang].split.iloc[0]
        r = bootstrap_replicates(
            list(have.values()), headline.statistic, n_boot=options.bootstrap,
            seed=options.seed, key=_stratum_key(headline, lang, split),
        )  # fmt: skip
        for i, cell in enumerate(have):
            reps[(cell, lang)] = r[i]
        sizes[lang] = len(next(iter(have.values())))
    return _Scores(value, reps, sizes)


def _folds(
    rows: pd.DataFrame,
    headline: Headline,
    langs: list[str],
    items: ItemSource | None,
    arrays: dict[tuple[str, str], np.ndarray],
    options: ReportOptions,
) -> Folds | None:
    """The selection and test splits (:mod:`.folds`), when every cell has items everywhere."""
    cells = sorted(set(rows.cell_key))
    if not langs or any((c, x) not in arrays for c in cells for x in langs):
        return None
    groups: dict[str, np.ndarray | None] = {}
    keys: dict[str, str] = {}
    for lang in langs:
        key = _item_key(rows, headline, lang)
        groups[lang] = items(cells[0], key, GROUP_KIND) if items is not None else None
        keys[lang] = _fold_key(headline, lang, key[5])
    return build_folds(
        arrays, groups, headline.statistic, keys, fraction=options.selection_fraction,
        seed=options.seed, n_boot=options.bootstrap,
    )  # fmt: skip


def _short(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _setting_reps(
    reps: dict[tuple[str, str], np.ndarray], keys: list[str], lang: str
) -> np.ndarray | None:
    """Seed-averaged replicates of one setting in one language, or None if any seed lacks them."""
    arrays = [reps.get((c, lang)) for c in keys]
    if any(a is None for a in arrays):
        return None
    return np.mean(arrays, axis=0)


def _mean_ci(
    estimate: float, per_lang_reps: list[np.ndarray | None], options: ReportOptions, n: int
) -> CI | None:
    """CI of a mean over languages from per-language replicate differences (None if any lacks
    them: a CI over a subset of the languages would describe a different number)."""
    if not per_lang_reps or any(r is None for r in per_lang_reps):
        return None
    return percentile_ci(estimate, np.mean(per_lang_reps, axis=0), options.confidence, n=n)


def _compare(
    res: SettingResult,
    base: SettingResult,
    keys: list[str],
    base_keys: list[str],
    langs: list[str],
    reps: dict[tuple[str, str], np.ndarray],
    sizes: dict[str, int],
    options: ReportOptions,
) -> None:
    """Fill in ``res``'s deltas vs the baseline and their CIs (per language and overall)."""
    res.delta = res.score - base.score
    diffs: list[np.ndarray | None] = []
    for lang in langs:
        lr = res.per_lang[lang]
        lr.delta = lr.value - base.per_lang[lang].value
        a, b = _setting_reps(reps, base_keys, lang), _setting_reps(reps, keys, lang)
        d = None if a is None or b is None else b - a
        diffs.append(d)
        if d is not None:
            lr.ci = percentile_ci(lr.delta, d, options.confidence, n=sizes[lang])
    res.ci = _mean_ci(res.delta, diffs, options, n=sum(sizes.get(x, 0) for x in langs))
    if res.ci is None:
        res.ci_note = "no per-sentence items for every language"
    res.seed_ci = t_interval([s - base.score for s in res.per_seed], options.confidence)


def _group_results(
    result: HeadlineResult,
    groups: list[tuple],
    reps: dict[tuple[str, str], np.ndarray],
    options: ReportOptions,
) -> list[GroupResult]:
    """Mean delta per resource group and per script, for every non-baseline setting."""
    assert result.baseline is not None
    keys_of = {s: [c for c, _ in cells] for s, _, cells in groups}
    base_keys = keys_of[result.baseline.setting]
    buckets: list[tuple[str, str, list[str]]] = []
    for grp in RESOURCE_GROUPS:
        members = [x for x in result.languages if resource_group(x) == grp]
        if members:
            buckets.append(("resource", grp, members))
    for sc in sorted({script(x) for x in result.languages}):
        buckets.append(("script", sc, [x for x in result.languages if script(x) == sc]))
    out = []
    for res in result.settings:
        for kind, grp, members in buckets:
            delta = float(np.mean([res.per_lang[x].delta for x in members]))
            diffs = []
            for x in members:
                a = _setting_reps(reps, base_keys, x)
                b = _setting_reps(reps, keys_of[res.setting], x)
                diffs.append(None if a is None or b is None else b - a)
            ci = _mean_ci(delta, diffs, options, n=len(members))
            out.append(
                GroupResult(
                    alpha=1 - options.confidence,
                    kind=kind,
                    group=grp,
                    setting=res.setting,
                    langs=members,
                    delta=delta,
                    ci=ci,
                )
            )
    return out


def _head_to_head(
    result: HeadlineResult,
    keys_of: dict[str, list[str]],
    folds: Folds | None,
    reps: dict[tuple[str, str], np.ndarray],
    options: ReportOptions,
) -> Comparison | None:
    """Best English setting vs best multilingual setting, each picked on the selection split
    and compared on the test split (:mod:`.choices`)."""
    by_name = {r.setting: r for r in result.settings}
    english = [r.setting for r in result.settings if r.group == "english"]
    multi = [r.setting for r in result.settings if r.group == "multilingual"]
    if not english or not multi:
        return None
    full = {name: r.score for name, r in by_name.items()}
    e = pick(english, keys_of, result.languages, folds, full)
    m = pick(multi, keys_of, result.languages, folds, full)
    full_cmp = _full_comparison(result, keys_of, reps, by_name[m], by_name[e], options)
    return compare_chosen(m, e, keys_of, result.languages, folds, full_cmp, options)


def _best(
    result: HeadlineResult,
    keys_of: dict[str, list[str]],
    folds: Folds | None,
    options: ReportOptions,
) -> Comparison | None:
    """The setting with the largest gain over the baseline, picked on the selection split and
    reported (against the baseline) on the test split."""
    base = result.baseline
    if base is None or not result.settings:
        return None
    full = {r.setting: r.score for r in result.settings}
    best = pick([r.setting for r in result.settings], keys_of, result.languages, folds, full)
    chosen = next(r for r in result.settings if r.setting == best)
    full_cmp = (base.score, chosen.score, chosen.delta or 0.0, chosen.ci, chosen.seed_ci)
    return compare_chosen(base.setting, best, keys_of, result.languages, folds, full_cmp, options)


def _full_comparison(
    result: HeadlineResult,
    keys_of: dict[str, list[str]],
    reps: dict[tuple[str, str], np.ndarray],
    a: SettingResult,
    b: SettingResult,
    options: ReportOptions,
) -> tuple[float, float, float, CI | None, CI | None]:
    """B - A on the reported numbers (used when nothing can be held out)."""
    delta = b.score - a.score
    diffs = []
    for x in result.languages:
        ra, rb = (
            _setting_reps(reps, keys_of[a.setting], x),
            _setting_reps(reps, keys_of[b.setting], x),
        )
        diffs.append(None if ra is None or rb is None else rb - ra)
    ci = _mean_ci(delta, diffs, options, n=len(result.languages))
    common = sorted(set(b.seeds) & set(a.seeds) - {None})  # type: ignore[operator]
    seed_ci = None
    if len(common) >= 2:
        b_by = dict(zip(b.seeds, b.per_seed, strict=True))
        a_by = dict(zip(a.seeds, a.per_seed, strict=True))
        seed_ci = t_interval([b_by[s] - a_by[s] for s in common], options.confidence)
    return a.score, b.score, delta, ci, seed_ci


def _per_layer(rows: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Mean over languages (common to every cell at that layer) and seeds, per layer."""
    out: dict[int, dict[str, float]] = {}
    for layer, g in rows.groupby("layer"):
        langs, _ = _common_langs(g)
        g = g[g.lang.isin(langs)]
        per_cell = g.groupby(["setting", "cell_key"]).value.mean()
        out[int(layer)] = per_cell.groupby(level="setting").mean().to_dict()
    frame = pd.DataFrame.from_dict(out, orient="index").sort_index()
    return frame.reindex(columns=[s for s in settings if s in frame.columns])


# ---------------------------------------------------------------------------- results files


def decode_result_items(
    doc: dict[str, Any], path: Path | str
) -> dict[tuple[ItemKey, str], np.ndarray]:
    """The ``items`` of a results file (entries in the ``{dtype, n, data}`` form of
    :func:`xstilts.tasks.results.items_to_json` plus their key fields), keyed like the
    store's. A file without items gives an empty dict; a malformed entry is a one-line error
    naming the file and the entry, checked before decoding (a short buffer must not pass)."""
    out: dict[tuple[ItemKey, str], np.ndarray] = {}
    entries = doc.get("items") or []
    if not isinstance(entries, list):
        raise DataError(f"{path}: items must be a list")
    for i, it in enumerate(entries):
        where = f"{path}: items[{i}]"
        try:
            n = int(it["n"])
            dtype = str(it["dtype"])
            raw = base64.b64decode(it["data"], validate=True)
            key: ItemKey = (
                str(it["task"]),
                str(it["lang"]),
                int(it["layer"]),
                it.get("direction") or None,
                str(it["protocol"]),
                str(it["split"]),
            )
            kind = str(it["kind"])
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise DataError(f"{where}: malformed items entry ({exc})") from None
        need = math.ceil(n / 8) if dtype == "bits" else 4 * n
        if dtype not in ("bits", "f4") or n < 0 or len(raw) != need:
            raise DataError(f"{where}: {len(raw)} bytes do not hold {n} {dtype!r} values")
        out[(key, kind)] = decode_items(dtype, n, raw)
    return out


def results_frame(doc: dict[str, Any], cell: str, setting: str, group: str) -> pd.DataFrame:
    """A results file's metric rows as if they were one cell of a store."""
    df = pd.DataFrame(doc["metrics"], columns=list(_METRIC_COLUMNS))
    df["direction"] = df["direction"].astype(object).where(df["direction"].notna(), None)
    return df.assign(model="", setting=setting, grp=group, seed=None, cell_key=cell)


_METRIC_COLUMNS = ("task", "lang", "layer", "direction", "metric", "value", "protocol", "split")


def compare_results(
    path_a: Path,
    path_b: Path,
    *,
    layer: int | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[list[HeadlineResult], int]:
    """Per-language comparison of two single evaluations (B minus A) at one layer.

    The files must be evaluations of the same task, protocol and languages; where both carry
    per-sentence items the deltas get paired bootstrap CIs. Returns the results and the layer.
    """
    docs = [load_results(path_a), load_results(path_b)]
    (a, b), paths = docs, (path_a, path_b)
    if a.get("task") != b.get("task"):
        raise DataError(
            f"{path_a} is {a.get('task')} but {path_b} is {b.get('task')}: compare "
            "results of the same task"
        )
    proto = [d.get("settings", {}).get("protocol", "xtreme") for d in docs]
    if proto[0] != proto[1]:
        raise DataError(f"{path_a} uses protocol {proto[0]} but {path_b} uses {proto[1]}")
    langs = [set(d.get("languages") or []) for d in docs]
    if langs[0] != langs[1]:
        only_a, only_b = sorted(langs[0] - langs[1]), sorted(langs[1] - langs[0])
        raise DataError(
            f"{path_a} and {path_b} cover different languages (only in A: "
            f"{', '.join(only_a) or '-'}; only in B: {', '.join(only_b) or '-'})"
        )
    names = [Path(p).stem for p in paths]
    if names[0] == names[1]:
        names = [f"A:{names[0]}", f"B:{names[1]}"]
    items = [decode_result_items(d, p) for d, p in zip(docs, paths, strict=True)]
    for key in items[0].keys() & items[1].keys():
        n_a, n_b = len(items[0][key]), len(items[1][key])
        if n_a != n_b:
            (task, lang, lay, direction, _, split), kind = key
            where = f"{task}/{lang} layer {lay} {direction or ''} {split} {kind}".replace("  ", " ")
            raise DataError(
                f"items of {where}: {n_a} in {path_a} but {n_b} in {path_b}; the "
                "files did not score the same sentences"
            )
    df = pd.concat(
        [results_frame(a, "A", names[0], "baseline"), results_frame(b, "B", names[1], "other")],
        ignore_index=True,
    )
    if df.empty:
        raise DataError(f"{path_a}, {path_b}: no metrics to compare")
    common = sorted(set(df[df.cell_key == "A"].layer) & set(df[df.cell_key == "B"].layer))
    if not common:
        raise DataError(f"{path_a} and {path_b} share no evaluated layer")
    use = resolve_layer(df[df.layer.isin(common)], layer if layer is not None else "last")

    def source(cell: str, key: ItemKey, kind: str) -> np.ndarray | None:
        return items[0 if cell == "A" else 1].get((key, kind))

    options = ReportOptions(
        baseline=names[0], bootstrap=max(bootstrap, 100), confidence=confidence, seed=seed
    )
    results = []
    for headline in all_headlines(None):
        res = headline_result(df, headline, use, source, options, order=names)
        if res is not None:
            results.append(res)
    if not results:
        raise DataError(f"{path_a}, {path_b}: no comparable headline metric at layer {use}")
    corrections.apply(results)
    return results, use
