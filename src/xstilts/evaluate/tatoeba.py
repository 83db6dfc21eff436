"""Tatoeba: cosine top-1 between aligned sentence lists, XTREME or MTEB protocol.

XTREME protocol (default): ``en->x``: English sentences query the other side (XTREME's
reported direction); ``x->en``: the other side queries English (the LASER/MTEB direction);
``mean``: their average. Accuracy only. With different query and document prefixes each side is
embedded in both roles, so the searching side always carries the query prefix.

MTEB protocol (``--protocol mteb``): the non-English side queries the English side (query and
document prefix respectively); accuracy plus MTEB's weighted precision/recall/F1
(:mod:`xstilts.evaluate.mteb`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.tatoeba import TatoebaPair, load_tatoeba
from xstilts.evaluate.common import EvalContext
from xstilts.evaluate.mteb import MTEB_DIRECTION, mteb_rows, scores_of, top1
from xstilts.metrics import accuracy_at_1
from xstilts.results import metric_row
from xstilts.search import Backend, knn, normalize


def tatoeba_correct(
    x: np.ndarray,
    en: np.ndarray,
    backend: Backend = "auto",
    *,
    x_doc: np.ndarray | None = None,
    en_doc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query correctness of cosine top-1, ``(en->x, x->en)``, for aligned ``x[i] <-> en[i]``.

    ``x``/``en`` are the query-role embeddings; ``x_doc``/``en_doc`` the document-role ones
    when the prefixes differ (default: the same arrays).
    """
    gold = np.arange(len(x))
    xq, enq = normalize(x), normalize(en)
    xd = xq if x_doc is None else normalize(x_doc)
    end = enq if en_doc is None else normalize(en_doc)
    _, en2x = knn(enq, xd, 1, backend)
    _, x2en = knn(xq, end, 1, backend)
    return en2x[:, 0] == gold, x2en[:, 0] == gold


def accuracy_rows(lang: str, layer: int, en_x: np.ndarray, x_en: np.ndarray) -> list[dict]:
    """The three XTREME-protocol rows from per-query correctness."""
    acc_en_x = accuracy_at_1(en_x, np.ones_like(en_x))
    acc_x_en = accuracy_at_1(x_en, np.ones_like(x_en))
    return [
        metric_row("tatoeba", lang, layer, "accuracy", acc_en_x, direction="en->x"),
        metric_row("tatoeba", lang, layer, "accuracy", acc_x_en, direction="x->en"),
        metric_row("tatoeba", lang, layer, "accuracy", (acc_en_x + acc_x_en) / 2, direction="mean"),
    ]


def tatoeba_metrics(
    x: np.ndarray,
    en: np.ndarray,
    lang: str,
    layer: int,
    backend: Backend = "auto",
    *,
    x_doc: np.ndarray | None = None,
    en_doc: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Accuracy@1 both ways for aligned embeddings ``x[i] <-> en[i]`` of one layer."""
    en_x, x_en = tatoeba_correct(x, en, backend, x_doc=x_doc, en_doc=en_doc)
    return accuracy_rows(lang, layer, en_x, x_en)


def _xtreme_pair(ctx: EvalContext, pair: TatoebaPair) -> list[dict[str, Any]]:
    """Both directions; each side embedded once, or twice when query/doc prefixes differ."""
    qp, dp = ctx.cfg.role_prefixes()
    x, en = ctx.encode([pair.x, pair.en], prefix=qp)
    x_doc, en_doc = (x, en) if qp == dp else ctx.encode([pair.x, pair.en], prefix=dp)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}", x)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.en", en)
    if qp != dp:
        ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}.doc", x_doc)
        ctx.save_embeddings(f"tatoeba.{pair.lang}.en.doc", en_doc)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            en_x, x_en = tatoeba_correct(
                x[j],
                en[j],
                ctx.cfg.search_backend,
                x_doc=None if qp == dp else x_doc[j],
                en_doc=None if qp == dp else en_doc[j],
            )
            rows += accuracy_rows(pair.lang, layer, en_x, x_en)
            ctx.add_items("tatoeba", pair.lang, layer, "correct", en_x, direction="en->x")
            ctx.add_items("tatoeba", pair.lang, layer, "correct", x_en, direction="x->en")
    return rows


def _mteb_pair(ctx: EvalContext, pair: TatoebaPair) -> list[dict[str, Any]]:
    """MTEB: the non-English side (queries) searches the English side (corpus)."""
    (x,), (en,) = ctx.encode_roles([pair.x], [pair.en])
    ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}", x)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.en", en)
    gold = np.arange(len(pair))
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            predicted = top1(x[j], en[j], ctx.cfg.search_backend)
            rows += mteb_rows("tatoeba", pair.lang, layer, scores_of(predicted, gold))
            ctx.add_items(
                "tatoeba", pair.lang, layer, "correct", predicted == gold,
                direction=MTEB_DIRECTION, protocol="mteb",
            )  # fmt: skip
    return rows


def evaluate_tatoeba(ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tatoeba for every language in the config; all files are checked before encoding."""
    with ctx.timing("data"):
        pairs: list[TatoebaPair] = [
            load_tatoeba(ctx.data_dir, lang).head(ctx.cfg.max_sentences) for lang in ctx.cfg.langs
        ]
    mteb = ctx.cfg.protocol == "mteb"
    qp, dp = ctx.cfg.role_prefixes()
    passes = 1 if mteb or qp == dp else 2
    ctx.start_progress(sum(2 * passes * len(p) for p in pairs), "encoding Tatoeba")
    evaluate_pair = _mteb_pair if mteb else _xtreme_pair
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        rows += evaluate_pair(ctx, pair)
    sizes = {p.lang: {"x": len(p.x), "en": len(p.en)} for p in pairs}
    return rows, sizes
