"""BUCC 2018: margin-based bitext mining with a threshold tuned on gold, applied to test.

Sentences are deduplicated per side (margin neighbourhoods must not be split across identical
sentences), embedded, L2-normalised and mined with a k-NN margin (ratio by default, k=4) in both
directions, kept one-to-one best-first. The decision threshold maximises F1 on the split that
has gold (the shared task's *sample*, XTREME's ``dev``) and is then applied unchanged to the
test split. XTREME's released code never applied it and jiant tuned it on the scored set.
The non-English side is embedded with the query prefix, English with the document prefix
(BUCC's source and target; the margin itself is symmetric).

``--protocol mteb`` instead scores every split with gold the way MTEB does (no margin, no
threshold): the non-English sentences of the gold pairs query by cosine top-1, against only the
English sentences of the gold pairs (MTEB's ``BUCC.v2``, protocol ``mteb``) and against the
whole English side (MTEB's older ``BUCC``, protocol ``mteb-v1``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xstilts.data.bucc import (
    BUCC_LANGS,
    BuccSplit,
    find_splits,
    load_bucc_split,
    subsample_bucc,
    tuning_and_test_splits,
)
from xstilts.data.fetch import Download, recorded_checksums
from xstilts.errors import DataError, closest
from xstilts.io import write_text_atomic
from xstilts.metrics import ThresholdResult, apply_threshold, optimize_threshold
from xstilts.retrieval.knn import exact_knn, normalize
from xstilts.retrieval.mining import expand_pairs, gold_correct, mine, unique_texts
from xstilts.tasks.base import (
    ConsoleTable,
    Headline,
    MtebTask,
    RetrievalTask,
    Rows,
    SearchWork,
    fixed_langs,
    knn_search,
)
from xstilts.tasks.context import EvalContext
from xstilts.tasks.mteb import MTEB_DIRECTION, mteb_rows, scores_of, top1
from xstilts.tasks.results import metric_row
from xstilts.tasks.settings import EvalSettings
from xstilts.tasks.views import split_rows

log = logging.getLogger(__name__)

BUCC_URL = "https://comparable.limsi.fr/bucc2018"
_MTEB_LANGUAGES = {"de": "deu-Latn", "fr": "fra-Latn", "ru": "rus-Cyrl", "zh": "cmn-Hans"}
_COUNTS = ("tp", "pred", "gold")


@dataclass
class BuccCandidates:
    """Mined id pairs of one split and layer, best first, with their margin scores."""

    x_ids: list[str]
    en_ids: list[str]
    scores: np.ndarray

    def correct(self, gold: list[tuple[str, str]]) -> np.ndarray:
        """Whether each candidate pair is in ``gold``."""
        return gold_correct(self.x_ids, self.en_ids, gold)

    def above(self, threshold: float) -> list[tuple[str, str]]:
        """The pairs a threshold keeps (``score >= threshold``)."""
        keep = self.scores >= threshold
        return [(a, b) for a, b, k in zip(self.x_ids, self.en_ids, keep, strict=True) if k]


def bucc_candidates(
    split: BuccSplit,
    x: np.ndarray,
    en: np.ndarray,
    x_rows: np.ndarray,
    en_rows: np.ndarray,
    ctx: EvalContext,
) -> BuccCandidates:
    """Mine distinct-sentence embeddings and expand the pairs back to every id they stand for
    (:mod:`xstilts.retrieval.mining`, the path ``xstilts mine`` takes too)."""
    s = ctx.settings
    pairs = mine(normalize(x), normalize(en), exact_knn(s.search), k=s.k, margin=s.margin)
    xs, es, scores = expand_pairs(pairs, x_rows, en_rows)
    return BuccCandidates(
        [split.x_ids[i] for i in xs.tolist()], [split.en_ids[j] for j in es.tolist()], scores
    )


def _rows(lang: str, layer: int, split: str, res: ThresholdResult, scored: bool) -> Rows:
    names = (
        ("precision", "recall", "f1", "threshold", "n_predicted")
        if scored
        else ("threshold", "n_predicted")
    )
    return [metric_row("bucc2018", lang, layer, n, getattr(res, n), split=split) for n in names]


def evaluation_plan(
    data_dir: Path, langs: list[str], tune_split: str | None, max_sentences: int | None
) -> list[tuple[str, list[BuccSplit]]]:
    """Every language's tuning split (has gold) and test split if present, all checked: what
    an evaluation reads (and what run-time estimates count)."""
    plan: list[tuple[str, list[BuccSplit]]] = []
    for lang in langs:
        tune_name, test_name = tuning_and_test_splits(data_dir, lang, tune_split)
        names = [tune_name] + ([test_name] if test_name else [])
        splits = [
            subsample_bucc(load_bucc_split(data_dir, lang, name), max_sentences) for name in names
        ]
        plan.append((lang, splits))
    return plan


def _load_plan(ctx: EvalContext) -> list[tuple[str, list[BuccSplit]]]:
    """:func:`evaluation_plan` of ``ctx``, timed as data loading."""
    with ctx.timing("data"):
        return evaluation_plan(ctx.data_dir, ctx.langs, ctx.settings.tune_split, ctx.max_sentences)


def _split_sizes(split: BuccSplit, n_x_unique: int, n_en_unique: int) -> dict[str, Any]:
    return {
        "x": len(split.x),
        "en": len(split.en),
        "x_unique": n_x_unique,
        "en_unique": n_en_unique,
        "gold": len(split.gold) if split.gold is not None else None,
    }


def per_sentence_counts(
    split: BuccSplit, cand: BuccCandidates, correct: np.ndarray, threshold: float
) -> dict[str, np.ndarray]:
    """Per source sentence: predicted pairs, correct predicted pairs, gold pairs.

    Their sums give the split's P/R/F1 exactly (P = sum tp / sum pred, R = sum tp / sum gold),
    so a bootstrap over source sentences resamples the very numbers reported.
    """
    pos = {sid: i for i, sid in enumerate(split.x_ids)}
    out = {k: np.zeros(len(split.x_ids), np.float32) for k in ("pred", "tp", "gold")}
    keep = cand.scores >= threshold
    for sid, kept, ok in zip(cand.x_ids, keep, correct, strict=True):
        if kept:
            out["pred"][pos[sid]] += 1
            out["tp"][pos[sid]] += ok
    for sid, _ in split.gold or ():
        out["gold"][pos[sid]] += 1
    return out


# ---------------------------------------------------------------------------- XTREME protocol


def _score_layer(
    ctx: EvalContext,
    split: BuccSplit,
    cand: BuccCandidates,
    layer: int,
    thresholds: dict[int, float],
) -> Rows:
    """Tune (on the gold split) or apply (elsewhere) the threshold of one layer; its rows."""
    gold = split.gold or []
    correct = cand.correct(gold)
    if layer not in thresholds:
        res = optimize_threshold(cand.scores, correct, len(gold))
        thresholds[layer] = res.threshold
    else:
        res = apply_threshold(cand.scores, correct, max(len(gold), 1), thresholds[layer])
        folder = ctx.outputs.save_predictions
        if folder is not None:
            name = f"{split.lang}-en.{split.split}.layer{layer:02d}.pred"
            text = "".join(f"{a}\t{b}\n" for a, b in cand.above(thresholds[layer]))
            write_text_atomic(Path(folder) / name, text)
    if gold:
        for kind, counts in per_sentence_counts(split, cand, correct, res.threshold).items():
            ctx.add_items("bucc2018", split.lang, layer, kind, counts, split=split.split)
    return _rows(split.lang, layer, split.split, res, bool(gold))


def _xtreme_split(
    ctx: EvalContext, split: BuccSplit, thresholds: dict[int, float]
) -> tuple[Rows, dict[str, Any]]:
    """Mine one split at every layer; the first split of a language tunes the thresholds."""
    ux, x_rows = unique_texts(split.x)
    uen, en_rows = unique_texts(split.en)
    (x,), (en,) = ctx.encode_roles([ux], [uen])
    if ctx.outputs.save_embeddings is not None:  # one row per input line
        name = f"bucc2018.{split.lang}.{split.split}"
        ctx.save_embeddings(f"{name}.{split.lang}", x[:, x_rows])
        ctx.save_embeddings(f"{name}.en", en[:, en_rows])
    rows: Rows = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            cand = bucc_candidates(split, x[j], en[j], x_rows, en_rows, ctx)
            rows += _score_layer(ctx, split, cand, layer, thresholds)
    return rows, _split_sizes(split, len(ux), len(uen))


# ---------------------------------------------------------------------------- MTEB protocol


def _gold_queries(split: BuccSplit) -> set[str]:
    """The distinct non-English sentences of the gold pairs (what MTEB embeds as queries)."""
    x_text = dict(zip(split.x_ids, split.x, strict=True))
    return {x_text[a] for a, _ in split.gold or ()}


def _mteb_split(ctx: EvalContext, split: BuccSplit) -> tuple[Rows, dict]:
    """MTEB scores of one split with gold, both dataset variants (see the module docstring)."""
    assert split.gold is not None
    x_pos = {sid: i for i, sid in enumerate(split.x_ids)}
    en_pos = {sid: i for i, sid in enumerate(split.en_ids)}
    queries = [split.x[x_pos[a]] for a, _ in split.gold]  # one query per gold pair, gold order
    gold_en = np.array([en_pos[b] for _, b in split.gold], dtype=np.int64)
    uq, q_rows = unique_texts(queries)
    uen, en_rows = unique_texts(split.en)
    (q,), (en,) = ctx.encode_roles([uq], [uen])
    rows: Rows = []
    aligned = np.arange(len(gold_en))
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            qj, enj = q[j][q_rows], en[j][en_rows]
            for protocol, corpus, gold in (
                ("mteb", enj[gold_en], aligned),  # BUCC.v2: gold pairs only, aligned
                ("mteb-v1", enj, gold_en),  # BUCC: the whole English side
            ):
                predicted = top1(qj, corpus, ctx.settings.search)
                rows += mteb_rows(
                    "bucc2018", split.lang, layer, scores_of(predicted, gold),
                    protocol=protocol, split=split.split,
                )  # fmt: skip
                ctx.add_items(
                    "bucc2018", split.lang, layer, "correct", predicted == gold,
                    direction=MTEB_DIRECTION, protocol=protocol, split=split.split,
                )  # fmt: skip
    return rows, {**_split_sizes(split, len(uq), len(uen)), "queries": len(queries)}


def _evaluate_mteb(
    ctx: EvalContext, plan: list[tuple[str, list[BuccSplit]]]
) -> tuple[Rows, dict[str, Any]]:
    """MTEB protocol on every loaded split that has gold (a split without gold is reported)."""
    for lang, splits in plan:
        for s in splits:
            if not s.gold:
                log.warning(
                    "BUCC %s-en %s split has no gold: not scored (MTEB protocol)", lang, s.split
                )
    scored = [(lang, [s for s in splits if s.gold]) for lang, splits in plan]
    ctx.start_progress(
        sum(len(_gold_queries(s)) + len(set(s.en)) for _, splits in scored for s in splits),
        "encoding BUCC (MTEB protocol)",
    )
    rows: Rows = []
    sizes: dict[str, Any] = {}
    for lang, splits in scored:
        sizes[lang] = {}
        for split in splits:
            split_rows_, sizes[lang][split.split] = _mteb_split(ctx, split)
            rows += split_rows_
    return rows, sizes


# ---------------------------------------------------------------------------- the task


class Bucc2018(RetrievalTask):
    """BUCC 2018 bitext mining (see the module docstring)."""

    name = "bucc2018"
    description = "BUCC 2018 bitext mining, margin-based, F1 with a tuned threshold"
    languages = BUCC_LANGS
    default_langs = "all"
    metric = "f1"
    reference = "Zweigenbaum et al. 2018; Artetxe & Schwenk 2019; XTREME"
    aliases = ("bucc", "bucc18")
    protocols = ("xtreme", "mteb")
    subset = "every gold pair and {n} lines per side (an easier task than the full split)"
    tuning_splits = ("dev", "sample", "training")
    fetchable = True
    headlines = (
        Headline("bucc2018", "f1", None, "BUCC F1", kinds=_COUNTS, statistic="f1"),
        Headline("bucc2018", "accuracy", "x->en", "BUCC (MTEB) accuracy", "mteb"),
        Headline("bucc2018", "f1", "x->en", "BUCC (MTEB) F1", "mteb", kinds=()),
    )
    mteb_tasks: ClassVar[dict[str, MtebTask]] = {
        "mteb": MtebTask("BUCC.v2", "1739dc11ffe9b7bfccd7f3d585aeb4c544fc6677"),
        "mteb-v1": MtebTask("BUCC", "d51519689f32196a32af33b075a01d0e7c51e252"),
    }

    def parse_langs(self, spec: str) -> list[str]:
        return fixed_langs("BUCC 2018", BUCC_LANGS)(spec)

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        found = find_splits(data_dir, lang)
        if not found:
            d = data_dir / "bucc2018"
            return [d / f"{lang}-en.dev.{lang}", d / f"{lang}-en.dev.en", d / f"{lang}-en.dev.gold"]
        return [p for triple in found.values() for p in triple if p is not None]

    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        for lang in langs:
            for name in find_splits(data_dir, lang):
                split = subsample_bucc(load_bucc_split(data_dir, lang, name), max_sentences)
                yield from split.x
                yield from split.en

    def searches(
        self,
        data_dir: Path,
        langs: list[str],
        settings: EvalSettings,
        protocol: str = "xtreme",
        max_sentences: int | None = None,
    ) -> list[SearchWork]:
        """XTREME: margin mining, the k nearest distinct sentences both ways per split; MTEB:
        each gold pair's query against the gold English side and against the whole one."""
        out = []
        for _, splits in evaluation_plan(data_dir, langs, settings.tune_split, max_sentences):
            for split in splits:
                if protocol != "mteb":  # over distinct sentences (unique_texts)
                    n_x, n_en = len(set(split.x)), len(set(split.en))
                    out += [
                        knn_search(n_x, n_en, settings.k, settings.search),
                        knn_search(n_en, n_x, settings.k, settings.search),
                    ]
                elif split.gold:  # one query per gold pair; every English line
                    n = len(split.gold)
                    out += [
                        knn_search(n, n, 1, settings.search),
                        knn_search(n, len(split.en), 1, settings.search),
                    ]
        return out

    def downloads(self, base_url: str | None, langs: list[str] | None) -> list[Download]:
        known = recorded_checksums().get("bucc2018", {})
        bad = (
            [x for x in langs if x not in BUCC_LANGS] if langs else ([] if langs is None else [""])
        )
        if bad:
            raise DataError(
                f"unknown BUCC 2018 language {bad[0]!r}{closest(bad[0], BUCC_LANGS)}; "
                f"valid: {', '.join(BUCC_LANGS)}"
            )
        base = (base_url or BUCC_URL).rstrip("/")
        return [
            Download(f"{base}/{name}", f"_downloads/{name}", known.get(name), True)
            for lang in langs or BUCC_LANGS
            for name in (
                f"bucc2018-{lang}-en.{part}.tar.bz2"
                for part in ("sample-gold", "training-gold", "test")
            )
        ]

    def evaluate(self, ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
        """Every language: tune the threshold on the gold split, apply it to test."""
        plan = _load_plan(ctx)
        if ctx.protocol == "mteb":
            return _evaluate_mteb(ctx, plan)
        ctx.start_progress(
            sum(len(set(s.x)) + len(set(s.en)) for _, splits in plan for s in splits),
            "encoding BUCC",
        )
        rows: Rows = []
        sizes: dict[str, Any] = {}
        for lang, splits in plan:
            thresholds: dict[int, float] = {}
            sizes[lang] = {}
            for split in splits:
                split_rows_, sizes[lang][split.split] = _xtreme_split(ctx, split, thresholds)
                rows += split_rows_
        return rows, sizes

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        if results["settings"].get("protocol") == "mteb":
            names = {p: m.name for p, m in self.mteb_tasks.items()}
            tables = split_rows(
                results,
                "BUCC 2018, MTEB protocol (x->en cosine top-1)",
                ("lang", "split", "protocol", "layer"),
                (("accuracy", "accuracy", True), ("F1", "f1", True)),
            )
            table = tables[0]
            rows = [[*r[:2], names.get(r[2], r[2]), *r[3:]] for r in table.rows]
            header = [*table.header[:2], "MTEB task", *table.header[3:]]
            return [ConsoleTable(table.title, header, rows)]
        return split_rows(
            results,
            "BUCC 2018 (threshold tuned on the gold split, applied to test)",
            ("lang", "split", "layer"),
            (
                ("P", "precision", True),
                ("R", "recall", True),
                ("F1", "f1", True),
                ("threshold", "threshold", False),
                ("pairs", "n_predicted", False),
            ),
        )

    def mteb_subset(self, lang: str) -> tuple[str, list[str]]:
        return f"{lang}-en", [_MTEB_LANGUAGES[lang], "eng-Latn"]
