"""Zero-shot retrieval protocols: (task, encoder) -> a results document with tidy metric rows.

One module per task (:mod:`.tatoeba`, :mod:`.bucc`, ...), each exposing an evaluator with the
signature ``(ctx: EvalContext) -> (rows, sizes)``; :data:`EVALUATORS` maps task names to them.
Every evaluator encodes through :meth:`EvalContext.encode`, the single place where batching
settings, progress and timing apply. See ``docs/protocols.md`` for the exact protocols.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xstilts.cache import EmbeddingCache
from xstilts.data.registry import get_task
from xstilts.encode import Encoder, LazyEncoder
from xstilts.evaluate.bucc import evaluate_bucc
from xstilts.evaluate.common import EvalConfig, EvalContext, ProgressHook
from xstilts.evaluate.lareqa import evaluate_lareqa
from xstilts.evaluate.mewsli import evaluate_mewsli
from xstilts.evaluate.tatoeba import evaluate_tatoeba, tatoeba_metrics
from xstilts.results import build_results, items_to_json

__all__ = [
    "EVALUATORS",
    "EvalConfig",
    "EvalContext",
    "ProgressHook",
    "evaluate",
    "evaluate_model",
    "tatoeba_metrics",
]

Evaluator = Callable[[EvalContext], tuple[list[dict[str, Any]], dict[str, Any]]]
EVALUATORS: dict[str, Evaluator] = {
    "tatoeba": evaluate_tatoeba,
    "bucc2018": evaluate_bucc,
    "lareqa": evaluate_lareqa,
    "mewsli-x": evaluate_mewsli,
}


def evaluate(
    encoder: Encoder | LazyEncoder,
    cfg: EvalConfig,
    data_dir: Path,
    *,
    model_info: dict[str, Any],
    progress: ProgressHook | None = None,
    load_s: float = 0.0,
) -> dict[str, Any]:
    """Run one task on one encoder and return a results document (see :mod:`xstilts.results`)."""
    task = get_task(cfg.task)
    task.check_options(cfg.protocol, cfg.max_sentences)
    ref = getattr(encoder, "ref", None)
    ctx = EvalContext(
        encoder,
        cfg,
        data_dir,
        encoder.layer_indices(cfg.layers),
        progress,
        cache=EmbeddingCache() if cfg.use_cache else None,
        model_key=ref.content_key if ref is not None else None,
    )
    t0 = time.perf_counter()
    rows, sizes = EVALUATORS[task.name](ctx)
    total = time.perf_counter() - t0 + load_s
    lazy_load_s = getattr(encoder, "load_seconds", 0.0)  # a LazyEncoder loads inside encode
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(cfg).items()
        if k not in ("task", "langs", "extra")
    }
    settings.update(
        layers=ctx.layers,
        dtype=encoder.dtype,
        device=str(encoder.device),
        max_length=encoder.max_length,
        data_dir=str(data_dir),
        **cfg.extra,
    )
    return build_results(
        task=task.name,
        model=model_info,
        languages=list(cfg.langs),
        settings=settings,
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
    cfg: EvalConfig,
    data_dir: Path,
    *,
    device: str | None = None,
    dtype: str = "auto",
    max_length: int = 512,
    trust_remote_code: bool = False,
    progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Resolve ``model`` (hub id, directory, run directory or builtin:NAME) and evaluate it.

    The model is loaded lazily: when every embedding comes from the cache it is never built.
    """
    from xstilts.hardware import configure_threads
    from xstilts.models import resolve_model

    configure_threads()
    t0 = time.perf_counter()
    ref = resolve_model(model, trust_remote_code=trust_remote_code)
    encoder = LazyEncoder(ref, device=device, dtype=dtype, max_length=max_length)
    load_s = time.perf_counter() - t0
    return evaluate(
        encoder, cfg, data_dir, model_info=ref.describe(), progress=progress, load_s=load_s
    )
