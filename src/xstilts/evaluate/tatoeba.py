"""Tatoeba (XTREME protocol): cosine top-1 both ways between aligned sentence lists.

``en->x``: English sentences query the other side (XTREME's reported direction); ``x->en``:
the other side queries English (the LASER/MTEB direction); ``mean``: their average.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.tatoeba import TatoebaPair, load_tatoeba
from xstilts.evaluate.common import EvalContext
from xstilts.metrics import accuracy_at_1
from xstilts.results import metric_row
from xstilts.search import Backend, knn, normalize


def tatoeba_metrics(
    x: np.ndarray, en: np.ndarray, lang: str, layer: int, backend: Backend = "auto"
) -> list[dict[str, Any]]:
    """Accuracy@1 both ways for aligned embeddings ``x[i] <-> en[i]`` of one layer."""
    xn, enn = normalize(x), normalize(en)
    gold = np.arange(len(xn))
    _, en2x = knn(enn, xn, 1, backend)
    _, x2en = knn(xn, enn, 1, backend)
    acc_en_x = accuracy_at_1(en2x[:, 0], gold)
    acc_x_en = accuracy_at_1(x2en[:, 0], gold)
    return [
        metric_row("tatoeba", lang, layer, "accuracy", acc_en_x, direction="en->x"),
        metric_row("tatoeba", lang, layer, "accuracy", acc_x_en, direction="x->en"),
        metric_row("tatoeba", lang, layer, "accuracy", (acc_en_x + acc_x_en) / 2, direction="mean"),
    ]


def evaluate_tatoeba(ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tatoeba for every language in the config; all files are checked before encoding."""
    with ctx.timing("data"):
        pairs: list[TatoebaPair] = [load_tatoeba(ctx.data_dir, lang) for lang in ctx.cfg.langs]
    ctx.start_progress(sum(2 * len(p) for p in pairs), "encoding Tatoeba")
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        x, en = ctx.encode([pair.x, pair.en])
        ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}", x)
        ctx.save_embeddings(f"tatoeba.{pair.lang}.en", en)
        with ctx.timing("search"):
            for j, layer in enumerate(ctx.layers):
                rows.extend(tatoeba_metrics(x[j], en[j], pair.lang, layer, ctx.cfg.search_backend))
    sizes = {p.lang: {"x": len(p.x), "en": len(p.en)} for p in pairs}
    return rows, sizes
