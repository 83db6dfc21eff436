"""LAReQA (XQuAD-R) as in XTREME-R: language-agnostic answer retrieval from one pooled set.

Every question, in every language, ranks the same pool of candidate sentences from all 11
languages by cosine; its relevant candidates are its answer sentence in each language (11).
Reported per question language: mAP@20 (XTREME-R's metric, divisor ``min(20, #relevant)``) and
mAP over the full ranking (the LAReQA paper's metric). Questions carry the query prefix,
candidates (sentence + paragraph) the document prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.data.lareqa import load_lareqa
from xstilts.evaluate.common import EvalContext
from xstilts.evaluate.ranking import average_precisions
from xstilts.results import metric_row

K = 20


def evaluate_lareqa(ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Questions of the configured languages against the full 11-language candidate pool."""
    with ctx.timing("data"):
        data = load_lareqa(ctx.data_dir)
        candidates = data.candidate_texts()
    langs = ctx.cfg.langs
    chosen = [i for i, lang in enumerate(data.question_langs) if lang in langs]
    questions = [data.questions[i] for i in chosen]
    relevant = [data.relevant[i] for i in chosen]
    qlangs = np.array([data.question_langs[i] for i in chosen])
    ctx.start_progress(len(questions) + len(candidates), "encoding LAReQA")
    (q,), (c,) = ctx.encode_roles([questions], [candidates])
    ctx.save_embeddings("lareqa.questions", q)
    ctx.save_embeddings("lareqa.candidates", c)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            aps = average_precisions(
                q[j], c[j], relevant, k=K, full=True, backend=ctx.cfg.search_backend
            )
            for lang in langs:
                mask = qlangs == lang
                for metric, values in aps.items():
                    rows.append(metric_row("lareqa", lang, layer, metric, values[mask].mean()))
                    kind = metric.replace("map", "ap")  # per question: ap@20, ap
                    ctx.add_items("lareqa", lang, layer, kind, values[mask])
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
