"""Run one retrieval task on one encoder: (settings, request, encoder) -> a results document.

Everything task-specific is the task object's (:meth:`RetrievalTask.evaluate`); this module
only resolves the request, builds the :class:`~xstilts.tasks.context.EvalContext`, times the
run and assembles the results document (:mod:`xstilts.tasks.results`). See
``docs/protocols.md`` for the exact protocols.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from xstilts.embedding.encoder import Encoder, LazyEncoder
from xstilts.embedding.store import EmbeddingCache
from xstilts.hardware import configure_threads
from xstilts.models import resolve_model
from xstilts.tasks.context import EvalContext, Outputs, ProgressHook
from xstilts.tasks.registry import check_request
from xstilts.tasks.results import build_results, items_to_json
from xstilts.tasks.settings import EvalSettings, TaskRequest


def _settings_record(
    ctx: EvalContext, request: TaskRequest, data_dir: Path, outputs: Outputs
) -> dict[str, Any]:
    """What the results file records as ``settings``: the declared settings and request, with
    what they resolved to (layers, dtype, device, effective maximum length)."""
    encoder = ctx.encoder

    def path(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return {
        **ctx.settings.model_dump(mode="json"),
        "protocol": request.protocol,
        "max_sentences": request.max_sentences,
        "doc_max_length": request.doc_max_length,
        "layers": ctx.layers,
        "dtype": encoder.dtype,
        "device": str(encoder.device),
        "max_length": encoder.max_length,
        "data_dir": str(data_dir),
        "save_embeddings": path(outputs.save_embeddings),
        "save_predictions": path(outputs.save_predictions),
    }


def evaluate(
    encoder: Encoder | LazyEncoder,
    settings: EvalSettings,
    request: TaskRequest,
    data_dir: Path,
    *,
    model_info: dict[str, Any],
    outputs: Outputs | None = None,
    progress: ProgressHook | None = None,
    load_s: float = 0.0,
) -> dict[str, Any]:
    """Run one task on one encoder and return a results document (:mod:`.results`)."""
    task, langs = check_request(request)
    outputs = outputs or Outputs()
    ref = getattr(encoder, "ref", None)
    ctx = EvalContext(
        encoder,
        settings,
        langs,
        data_dir,
        encoder.layer_indices(settings.layers),
        protocol=request.protocol,
        max_sentences=request.max_sentences,
        doc_max_length=request.doc_max_length,
        outputs=outputs,
        progress=progress,
        cache=EmbeddingCache() if settings.cache else None,
        model_key=ref.content_key if ref is not None else None,
    )
    t0 = time.perf_counter()
    rows, sizes = task.evaluate(ctx)
    total = time.perf_counter() - t0 + load_s
    lazy_load_s = getattr(encoder, "load_seconds", 0.0)  # a LazyEncoder loads inside encode
    return build_results(
        task=task.name,
        model=model_info,
        languages=list(langs),
        settings=_settings_record(ctx, request, data_dir, outputs),
        sizes=sizes,
        timings={
            "load_s": load_s + lazy_load_s,
            "data_s": ctx.timer.data_s,
            "encode_s": ctx.timer.encode_s - lazy_load_s,
            "search_s": ctx.timer.search_s,
            "total_s": total,
        },
        metrics=rows,
        encoding={**ctx.totals.report(), "model_loaded": getattr(encoder, "loaded", True)},
        items=[
            {**{k: v for k, v in it.items() if k != "values"}, **items_to_json(it["values"])}
            for it in ctx.items
        ],
    )


def evaluate_model(
    model: str,
    settings: EvalSettings,
    request: TaskRequest,
    data_dir: Path,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    outputs: Outputs | None = None,
    progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Resolve ``model`` (hub id, directory, run directory or builtin:NAME) and evaluate it.

    The model is loaded lazily: when every embedding comes from the cache it is never built.
    """
    configure_threads()
    t0 = time.perf_counter()
    check_request(request)  # a bad task or language fails before the model is resolved
    ref = resolve_model(model, trust_remote_code=trust_remote_code)
    encoder = LazyEncoder(ref, device=device, dtype=settings.dtype, max_length=settings.max_length)
    load_s = time.perf_counter() - t0
    return evaluate(
        encoder,
        settings,
        request,
        data_dir,
        model_info=ref.describe(),
        outputs=outputs,
        progress=progress,
        load_s=load_s,
    )
