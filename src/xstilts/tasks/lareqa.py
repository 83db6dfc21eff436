"""LAReQA (XQuAD-R) as in XTREME-R: language-agnostic answer retrieval from one pooled set.

Every question, in every language, ranks the same pool of candidate sentences from all 11
languages by cosine; its relevant candidates are its answer sentence in each language (11).
Reported per question language: mAP@20 (XTREME-R's metric, divisor ``min(20, #relevant)``) and
mAP over the full ranking (the LAReQA paper's metric). Questions carry the query prefix,
candidates (sentence + paragraph) the document prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.data.lareqa import LAREQA_LANGS, LareqaData, lareqa_path, load_lareqa
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


def _load(data_dir: Path, max_sentences: int | None) -> LareqaData:
    """The whole set, or the quick subset of ``--max-sentences`` (:meth:`LareqaData.head`)."""
    data = load_lareqa(data_dir)
    return data if max_sentences is None else data.head(max_sentences)


def evaluate_lareqa(ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
    """Questions of the configured languages against the full 11-language candidate pool."""
    with ctx.timing("data"):
        data = _load(ctx.data_dir, ctx.max_sentences)
        candidates = data.candidate_texts()
    langs = ctx.langs
    chosen = [i for i, lang in enumerate(data.question_langs) if lang in langs]
    questions = [data.questions[i] for i in chosen]
    relevant = [data.relevant[i] for i in chosen]
    qlangs = np.array([data.question_langs[i] for i in chosen])
    articles = np.array([data.question_articles[i] for i in chosen], dtype=np.float32)
    ctx.start_progress(len(questions) + len(candidates), "encoding LAReQA")
    (q,), (c,) = ctx.encode_roles([questions], [candidates])
    ctx.save_embeddings("lareqa.questions", q)
    ctx.save_embeddings("lareqa.candidates", c)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            aps = average_precisions(
                q[j], c[j], relevant, k=K, full=True, backend=ctx.settings.search
            )
            for lang in langs:
                mask = qlangs == lang
                for metric, values in aps.items():
                    rows.append(metric_row("lareqa", lang, layer, metric, values[mask].mean()))
                    kind = metric.replace("map", "ap")  # per question: ap@20, ap
                    ctx.add_items("lareqa", lang, layer, kind, values[mask])
                # the article of each question: held-out selection keeps articles together
                ctx.add_items("lareqa", lang, layer, GROUP_KIND, articles[mask])
    cand_langs = np.array(data.candidate_langs)
    sizes = {
        lang: {
            "questions": int((qlangs == lang).sum()),
            "candidates": int((cand_langs == lang).sum()),
        }
        for lang in langs
    }
    sizes["pool"] = {"candidates": len(candidates), "languages": len(data.paths)}
    return rows, sizes


class Lareqa(RetrievalTask):
    """LAReQA on XQuAD-R (see the module docstring)."""

    name = "lareqa"
    description = (
        "LAReQA on XQuAD-R: questions retrieve answer sentences from an 11-language pool, "
        "mAP@20 (XTREME-R) and mAP"
    )
    languages = LAREQA_LANGS
    metric = "map@20"
    reference = "Roy et al. 2020 (LAReQA); XTREME-R (Ruder et al. 2021)"
    aliases = ("xquad-r",)
    headlines = (Headline("lareqa", "map@20", None, "LAReQA mAP@20", kinds=("ap@20",)),)
    subset = (
        "the articles of the first {n} questions, their questions in every language and a pool "
        "of their sentences only (a smaller pool: an easier task than the full set)"
    )

    def parse_langs(self, spec: str) -> list[str]:
        return fixed_langs("LAReQA", LAREQA_LANGS)(spec)

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        return [lareqa_path(data_dir, lang)]

    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        """The questions of ``langs`` and the whole candidate pool (every language's sentences
        and paragraphs: the pool is shared)."""
        data = _load(data_dir, max_sentences)
        yield from (q for q, lang in zip(data.questions, data.question_langs, strict=True)
                    if lang in langs)  # fmt: skip
        yield from data.sentences
        yield from dict.fromkeys(data.contexts)

    def searches(
        self,
        data_dir: Path,
        langs: list[str],
        settings: EvalSettings,
        protocol: str = "xtreme",
        max_sentences: int | None = None,
    ) -> list[SearchWork]:
        """The questions of ``langs`` ranking the whole pool (mAP needs the full ranking)."""
        data = _load(data_dir, max_sentences)
        chosen = [i for i, lang in enumerate(data.question_langs) if lang in langs]
        width = max((len(data.relevant[i]) for i in chosen), default=1)
        pool = len(data.sentences)  # a candidate is a sentence with its paragraph
        return [
            ranking_search(len(chosen), pool, K, relevant=width, full=True, backend=settings.search)
        ]

    def evaluate(self, ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
        return evaluate_lareqa(ctx)

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        title = "LAReQA (XQuAD-R), 11-language pool"
        return per_language(results, title, ("map@20", "map"), "questions")
