"""Mewsli-X as in XTREME-R: each entity mention retrieves its entity from the candidate set.

Mentions (query prefix) rank all candidate entity descriptions (document prefix) by cosine;
with one relevant entity per mention, AP@20 is the reciprocal rank within the top 20, so
mAP@20 equals XTREME-R's MRR@20. Reported per mention language (the mean over languages is
XTREME-R's macro average). The results' ``split`` records which mentions file was used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.mewsli import load_mewsli
from xstilts.evaluate.common import EvalContext
from xstilts.evaluate.ranking import average_precisions
from xstilts.results import metric_row

K = 20


def evaluate_mewsli(ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Mentions of the configured languages against the whole entity candidate set."""
    with ctx.timing("data"):
        data = load_mewsli(ctx.data_dir, ctx.cfg.langs)
    ctx.start_progress(len(data.mentions) + len(data.entities), "encoding Mewsli-X")
    (m,), (e,) = ctx.encode_roles([data.mentions], [data.entities])
    ctx.save_embeddings(f"mewsli-x.{data.split}.mentions", m)
    ctx.save_embeddings("mewsli-x.entities", e)
    relevant = [np.array([g], dtype=np.int64) for g in data.gold]
    langs = np.array(data.mention_langs)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            aps = average_precisions(m[j], e[j], relevant, k=K, backend=ctx.cfg.search_backend)
            for lang in ctx.cfg.langs:
                per_mention = aps[f"map@{K}"][langs == lang]
                rows.append(
                    metric_row(
                        "mewsli-x", lang, layer, f"map@{K}", per_mention.mean(), split=data.split
                    )
                )
                ctx.add_items("mewsli-x", lang, layer, f"ap@{K}", per_mention, split=data.split)
    sizes: dict[str, Any] = {
        lang: {"mentions": int((langs == lang).sum())} for lang in ctx.cfg.langs
    }
    sizes["candidates"] = {
        "entities": len(data.entities),
        "mentions_file": str(data.mentions_path),
        "entities_file": str(data.entities_path),
    }
    return rows, sizes
