"""Dev evaluation of one task with its own metric, and of all tasks together."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xstilts.train.data import TaskData
from xstilts.train.features import collate, feature_length, postprocess_spans, to_device
from xstilts.train.heads import MultiTaskModel
from xstilts.train.pairs import evaluate_pairs
from xstilts.train.task_metrics import compute_task_metrics


@torch.inference_mode()
def evaluate_dev(
    model: MultiTaskModel, td: TaskData, pad_id: int, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Dev metrics of one task with its own metric (``main`` = the task's headline metric).

    Features are batched longest first (less padding) and predictions put back in order. A pair
    task's metric is retrieval accuracy over its dev pairs (:func:`evaluate_pairs`).
    """
    model.eval()
    kind = td.task.kind
    if kind == "contrastive":
        assert td.dev_pairs is not None
        metrics = evaluate_pairs(model, td.dev, td.dev_pairs, pad_id, device, batch_size)
        model.train()
        return metrics
    n = len(td.dev)
    preds: list[Any] = [None] * n
    span: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    order = np.argsort([-feature_length(f) for f in td.dev], kind="stable")
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size].tolist()
        batch = to_device(collate([td.dev[j] for j in idx], pad_id), device)
        _, logits = model(td.task.name, batch)
        logits = logits.float().cpu()
        for r, j in enumerate(idx):
            if kind == "span":
                width = len(td.dev[j]["input_ids"])
                span[j] = (logits[r, :width, 0].numpy(), logits[r, :width, 1].numpy())
            elif kind == "tagging":
                labels = torch.tensor(td.dev[j]["labels"])
                preds[j] = logits[r, : len(labels)].argmax(-1)[labels != -100].tolist()
            else:
                preds[j] = int(logits[r].argmax(-1))
    model.train()
    if kind == "span":
        return _span_metrics(td, span)
    if kind == "tagging":  # per sentence, so entity F1 never spans two sentences
        refs = [[t for t in f["labels"] if t != -100] for f in td.dev]
        return compute_task_metrics(td.task, preds, refs)
    return compute_task_metrics(td.task, preds, [f["labels"] for f in td.dev])


def _span_metrics(td: TaskData, span: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Answers from every window's start/end logits, scored against the gold answers."""
    n = len(td.dev)
    width = max((len(a) for a, _ in span.values()), default=0)
    starts = np.full((n, width), -1e9, np.float32)
    ends = np.full((n, width), -1e9, np.float32)
    for j, (a, b) in span.items():
        starts[j, : len(a)], ends[j, : len(b)] = a, b
    answers = postprocess_spans(td.dev_examples, td.dev, starts, ends)
    return compute_task_metrics(td.task, answers, td.dev_examples)


def evaluate_all(
    model: MultiTaskModel,
    tasks: list[TaskData],
    pad_id: int,
    device: torch.device,
    batch_size: int,
    step: int,
) -> dict[str, Any]:
    """Every task's dev metrics and their mean main metric (what picks the best checkpoint)."""
    metrics = {td.task.name: evaluate_dev(model, td, pad_id, device, batch_size) for td in tasks}
    score = float(np.mean([m["main"] for m in metrics.values()]))
    return {"step": step, "score": score, "tasks": metrics}
