"""MTEB compatibility: bitext scoring as MTEB does it (``--protocol mteb``, shared by Tatoeba
and BUCC) and the export of such results as MTEB result files (``xstilts export-mteb``).

MTEB's ``BitextMiningEvaluator`` (embeddings-benchmark/mteb) embeds the ``sentence1`` column as
queries and the ``sentence2`` column as the corpus; for Tatoeba and BUCC ``sentence1`` is the
non-English side. Each query takes its top-1 corpus sentence by cosine similarity, and the
predicted corpus indices are scored against the gold indices with scikit-learn's accuracy and
``average="weighted"`` precision/recall/F1 (main score: F1). Rows carry ``direction="x->en"``.

Protocol names in results rows: ``mteb`` (Tatoeba; BUCC as in MTEB's current ``BUCC.v2`` task:
the aligned gold pairs only) and ``mteb-v1`` (BUCC as in MTEB's superseded ``BUCC`` task: the
gold pairs' non-English sentences query the whole English side).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.metrics import accuracy_at_1, weighted_precision_recall_f1
from xstilts.retrieval.knn import Backend, knn, normalize
from xstilts.tasks.results import metric_row

MTEB_PROTOCOLS = ("mteb", "mteb-v1")  # values of the ``protocol`` column
MTEB_DIRECTION = "x->en"


def top1(queries: np.ndarray, corpus: np.ndarray, backend: Backend = "auto") -> np.ndarray:
    """Cosine top-1 corpus index per query (ties: the lower corpus index, the convention of
    :mod:`xstilts.retrieval.knn`; MTEB's ``torch.topk`` leaves them unspecified)."""
    _, idx = knn(normalize(queries), normalize(corpus), 1, backend)
    return idx[:, 0]


def bitext_scores(
    queries: np.ndarray, corpus: np.ndarray, gold: np.ndarray, backend: Backend = "auto"
) -> dict[str, float]:
    """MTEB's bitext scores: accuracy, precision, recall, F1 of cosine top-1 against ``gold``.

    ``gold[i]`` is the corpus index of query ``i``'s translation.
    """
    return scores_of(top1(queries, corpus, backend), gold)


def scores_of(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """MTEB's accuracy and weighted precision/recall/F1 of predicted corpus indices."""
    precision, recall, f1 = weighted_precision_recall_f1(gold, predicted)
    return {
        "accuracy": accuracy_at_1(predicted, gold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def mteb_rows(
    task: str,
    lang: str,
    layer: int,
    scores: dict[str, float],
    *,
    protocol: str = "mteb",
    split: str = "test",
) -> list[dict[str, Any]]:
    """Results rows for one language and layer of an MTEB-protocol evaluation."""
    return [
        metric_row(
            task, lang, layer, name, value, direction=MTEB_DIRECTION, protocol=protocol, split=split
        )
        for name, value in scores.items()
    ]
