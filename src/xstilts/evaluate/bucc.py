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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xstilts.data.bucc import (
    BuccSplit,
    load_bucc_split,
    subsample_bucc,
    tuning_and_test_splits,
)
from xstilts.evaluate.common import EvalContext
from xstilts.evaluate.mteb import MTEB_DIRECTION, mteb_rows, scores_of, top1
from xstilts.io import write_text_atomic
from xstilts.metrics import ThresholdResult, apply_threshold, optimize_threshold
from xstilts.results import metric_row
from xstilts.search import mine, normalize

log = logging.getLogger(__name__)


def unique_texts(texts: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """Distinct texts in first-seen order and, for each, the positions it occurs at."""
    index: dict[str, int] = {}
    groups: list[list[int]] = []
    for i, t in enumerate(texts):
        j = index.setdefault(t, len(index))
        if j == len(groups):
            groups.append([])
        groups[j].append(i)
    return list(index), groups


@dataclass
class BuccCandidates:
    """Mined id pairs of one split and layer, best first, with their margin scores."""

    x_ids: list[str]
    en_ids: list[str]
    scores: np.ndarray

    def correct(self, gold: set[tuple[str, str]]) -> np.ndarray:
        """Whether each candidate pair is in ``gold``."""
        pairs = zip(self.x_ids, self.en_ids, strict=True)
        return np.fromiter((p in gold for p in pairs), dtype=bool, count=len(self.x_ids))

    def above(self, threshold: float) -> list[tuple[str, str]]:
        """The pairs a threshold keeps (``score >= threshold``)."""
        keep = self.scores >= threshold
        return [(a, b) for a, b, k in zip(self.x_ids, self.en_ids, keep, strict=True) if k]


def bucc_candidates(
    split: BuccSplit,
    x: np.ndarray,
    en: np.ndarray,
    x_groups: list[list[int]],
    en_groups: list[list[int]],
    ctx: EvalContext,
) -> BuccCandidates:
    """Mine unique-sentence embeddings and expand the pairs back to every id they stand for."""
    cfg = ctx.cfg
    mined = mine(
        normalize(x), normalize(en), k=cfg.k, margin=cfg.margin, backend=cfg.search_backend
    )
    xs: list[str] = []
    es: list[str] = []
    scores: list[float] = []
    for ui, uj, score in zip(
        mined.src.tolist(), mined.tgt.tolist(), mined.score.tolist(), strict=True
    ):
        for a in x_groups[ui]:
            for b in en_groups[uj]:
                xs.append(split.x_ids[a])
                es.append(split.en_ids[b])
                scores.append(score)
    return BuccCandidates(xs, es, np.asarray(scores, dtype=np.float64))


def _rows(lang: str, layer: int, split: str, res: ThresholdResult, scored: bool) -> list[dict]:
    names = (
        ("precision", "recall", "f1", "threshold", "n_predicted")
        if scored
        else ("threshold", "n_predicted")
    )
    return [metric_row("bucc2018", lang, layer, n, getattr(res, n), split=split) for n in names]


def _load_plan(ctx: EvalContext) -> list[tuple[str, list[BuccSplit]]]:
    """Every language's tuning split (has gold) and test split if present, all checked."""
    plan: list[tuple[str, list[BuccSplit]]] = []
    with ctx.timing("data"):
        for lang in ctx.cfg.langs:
            tune_name, test_name = tuning_and_test_splits(ctx.data_dir, lang, ctx.cfg.tune_split)
            names = [tune_name] + ([test_name] if test_name else [])
            splits = [
                subsample_bucc(load_bucc_split(ctx.data_dir, lang, name), ctx.cfg.max_sentences)
                for name in names
            ]
            plan.append((lang, splits))
    return plan


def _split_sizes(split: BuccSplit, n_x_unique: int, n_en_unique: int) -> dict[str, Any]:
    return {
        "x": len(split.x),
        "en": len(split.en),
        "x_unique": n_x_unique,
        "en_unique": n_en_unique,
        "gold": len(split.gold) if split.gold is not None else None,
    }


def _gold_queries(split: BuccSplit) -> set[str]:
    """The distinct non-English sentences of the gold pairs (what MTEB embeds as queries)."""
    x_text = dict(zip(split.x_ids, split.x, strict=True))
    return {x_text[a] for a, _ in split.gold or ()}


def _mteb_split(ctx: EvalContext, split: BuccSplit) -> tuple[list[dict[str, Any]], dict]:
    """MTEB scores of one split with gold, both dataset variants (see the module docstring)."""
    assert split.gold is not None
    x_pos = {sid: i for i, sid in enumerate(split.x_ids)}
    en_pos = {sid: i for i, sid in enumerate(split.en_ids)}
    queries = [split.x[x_pos[a]] for a, _ in split.gold]  # one query per gold pair, gold order
    gold_en = np.array([en_pos[b] for _, b in split.gold], dtype=np.int64)
    uq, q_groups = unique_texts(queries)
    uen, en_groups = unique_texts(split.en)
    (q,), (en,) = ctx.encode_roles([uq], [uen])
    q_rows, en_rows = _inverse(q_groups), _inverse(en_groups)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            qj, enj = q[j][q_rows], en[j][en_rows]
            aligned = np.arange(len(gold_en))
            for protocol, corpus, gold in (
                ("mteb", enj[gold_en], aligned),  # BUCC.v2: gold pairs only, aligned
                ("mteb-v1", enj, gold_en),  # BUCC: the whole English side
            ):
                predicted = top1(qj, corpus, ctx.cfg.search_backend)
                rows += mteb_rows(
                    "bucc2018", split.lang, layer, scores_of(predicted, gold),
                    protocol=protocol, split=split.split,
                )  # fmt: skip
                ctx.add_items(
                    "bucc2018", split.lang, layer, "correct", predicted == gold,
                    direction=MTEB_DIRECTION, protocol=protocol, split=split.split,
                )  # fmt: skip
    return rows, {**_split_sizes(split, len(uq), len(uen)), "queries": len(queries)}


def _evaluate_bucc_mteb(
    ctx: EvalContext, plan: list[tuple[str, list[BuccSplit]]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """MTEB protocol on every loaded split that has gold (a split without gold is reported)."""
    scored = [(lang, [s for s in splits if s.gold]) for lang, splits in plan]
    for lang, splits in plan:
        for s in splits:
            if not s.gold:
                log.warning(
                    "BUCC %s-en %s split has no gold: not scored (MTEB protocol)", lang, s.split
                )
    ctx.start_progress(
        sum(len(_gold_queries(s)) + len(set(s.en)) for _, splits in scored for s in splits),
        "encoding BUCC (MTEB protocol)",
    )
    rows: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    for lang, splits in scored:
        sizes[lang] = {}
        for split in splits:
            split_rows, sizes[lang][split.split] = _mteb_split(ctx, split)
            rows += split_rows
    return rows, sizes


def evaluate_bucc(ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """BUCC 2018 for every language: tune the threshold on the gold split, apply it to test."""
    cfg = ctx.cfg
    plan = _load_plan(ctx)
    if cfg.protocol == "mteb":
        return _evaluate_bucc_mteb(ctx, plan)
    ctx.start_progress(
        sum(len(set(s.x)) + len(set(s.en)) for _, splits in plan for s in splits), "encoding BUCC"
    )
    rows: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    for lang, splits in plan:
        sizes[lang] = {}
        thresholds: dict[int, float] = {}
        for split in splits:
            is_tuning = split is splits[0]
            ux, x_groups = unique_texts(split.x)
            uen, en_groups = unique_texts(split.en)
            (x,), (en,) = ctx.encode_roles([ux], [uen])
            if cfg.save_embeddings:  # expand back to one row per input line
                ctx.save_embeddings(
                    f"bucc2018.{lang}.{split.split}.{lang}", x[:, _inverse(x_groups)]
                )
                ctx.save_embeddings(f"bucc2018.{lang}.{split.split}.en", en[:, _inverse(en_groups)])
            sizes[lang][split.split] = _split_sizes(split, len(ux), len(uen))
            gold = set(split.gold or ())
            with ctx.timing("search"):
                for j, layer in enumerate(ctx.layers):
                    cand = bucc_candidates(split, x[j], en[j], x_groups, en_groups, ctx)
                    correct = cand.correct(gold)
                    if is_tuning:
                        res = optimize_threshold(cand.scores, correct, len(gold))
                        thresholds[layer] = res.threshold
                    else:
                        res = apply_threshold(
                            cand.scores, correct, max(len(gold), 1), thresholds[layer]
                        )
                        if cfg.save_predictions:
                            pairs = cand.above(thresholds[layer])
                            write_text_atomic(
                                cfg.save_predictions
                                / f"{lang}-en.{split.split}.layer{layer:02d}.pred",
                                "".join(f"{a}\t{b}\n" for a, b in pairs),
                            )
                    rows.extend(_rows(lang, layer, split.split, res, bool(gold)))
                    if gold:
                        for kind, counts in per_sentence_counts(
                            split, cand, correct, res.threshold
                        ).items():
                            ctx.add_items("bucc2018", lang, layer, kind, counts, split=split.split)
    return rows, sizes


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


def _inverse(groups: list[list[int]]) -> np.ndarray:
    """For each original position, the index of its unique text."""
    inv = np.empty(sum(map(len, groups)), dtype=np.int64)
    for u, positions in enumerate(groups):
        inv[positions] = u
    return inv
