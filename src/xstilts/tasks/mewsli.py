"""Mewsli-X as in XTREME-R: each entity mention retrieves its entity from the candidate set.

Mentions (query prefix) rank all candidate entity descriptions (document prefix) by cosine;
with one relevant entity per mention, AP@20 is the reciprocal rank within the top 20, so
mAP@20 equals XTREME-R's MRR@20. Reported per mention language (the mean over languages is
XTREME-R's macro average). The results' ``split`` records which mentions file was used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.data.mewsli import ENTITY_FILE, MEWSLI_LANGS, load_mewsli, mentions_file, mewsli_dir
from xstilts.retrieval.ranking import average_precisions
from xstilts.tasks.base import (
    GROUP_KIND,
    ConsoleTable,
    Headline,
    RetrievalTask,
    Rows,
    SearchWork,
    fixed_langs,
    ranking_search,
)
from xstilts.tasks.context import EvalContext
from xstilts.tasks.results import metric_row
from xstilts.tasks.settings import EvalSettings
from xstilts.tasks.views import per_language

K = 20


def evaluate_mewsli(ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
    """Mentions of the configured languages against the whole entity candidate set."""
    with ctx.timing("data"):
        data = load_mewsli(ctx.data_dir, ctx.langs)
    ctx.start_progress(len(data.mentions) + len(data.entities), "encoding Mewsli-X")
    (m,), (e,) = ctx.encode_roles([data.mentions], [data.entities])
    ctx.save_embeddings(f"mewsli-x.{data.split}.mentions", m)
    ctx.save_embeddings("mewsli-x.entities", e)
    relevant = [np.array([g], dtype=np.int64) for g in data.gold]
    langs = np.array(data.mention_langs)
    docs = np.array(data.mention_docs, dtype=np.float32)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            aps = average_precisions(m[j], e[j], relevant, k=K, backend=ctx.settings.search)
            for lang in ctx.langs:
                per_mention = aps[f"map@{K}"][langs == lang]
                rows.append(
                    metric_row(
                        "mewsli-x", lang, layer, f"map@{K}", per_mention.mean(), split=data.split
                    )
                )
                ctx.add_items("mewsli-x", lang, layer, f"ap@{K}", per_mention, split=data.split)
                # the document of each mention: held-out selection keeps documents together
                ctx.add_items(
                    "mewsli-x", lang, layer, GROUP_KIND, docs[langs == lang], split=data.split
                )
    sizes: dict[str, Any] = {lang: {"mentions": int((langs == lang).sum())} for lang in ctx.langs}
    sizes["candidates"] = {
        "entities": len(data.entities),
        "mentions_file": str(data.mentions_path),
        "entities_file": str(data.entities_path),
    }
    return rows, sizes


class MewsliX(RetrievalTask):
    """Mewsli-X entity retrieval (see the module docstring)."""

    name = "mewsli-x"
    description = "Mewsli-X: entity mentions retrieve their entity's description, mAP@20"
    languages = MEWSLI_LANGS
    metric = "map@20"
    reference = "Botha et al. 2020 (Mewsli); XTREME-R (Ruder et al. 2021)"
    aliases = ("mewsli", "mewslix")
    headlines = (Headline("mewsli-x", "map@20", None, "Mewsli-X mAP@20", kinds=("ap@20",)),)

    def parse_langs(self, spec: str) -> list[str]:
        return fixed_langs("Mewsli-X", MEWSLI_LANGS)(spec)

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        return [mentions_file(data_dir)[1], mewsli_dir(data_dir) / ENTITY_FILE]

    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        data = load_mewsli(data_dir, langs)
        yield from data.mentions
        yield from data.entities

    def searches(
        self,
        data_dir: Path,
        langs: list[str],
        settings: EvalSettings,
        protocol: str = "xtreme",
        max_sentences: int | None = None,
    ) -> list[SearchWork]:
        """The mentions of ``langs`` against every entity description, top 20."""
        data = load_mewsli(data_dir, langs)
        n_m, n_e = len(data.mentions), len(data.entities)
        return [ranking_search(n_m, n_e, K, relevant=1, full=False, backend=settings.search)]

    def evaluate(self, ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
        return evaluate_mewsli(ctx)

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        split = results["metrics"][0]["split"] if results["metrics"] else "?"
        return per_language(results, f"Mewsli-X ({split} mentions)", ("map@20",), "mentions")
