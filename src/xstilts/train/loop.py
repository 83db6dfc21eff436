"""The training loop: a readable sequence of steps, configured by :class:`TrainConfig`.

No trainer class hierarchy: :func:`train` builds a :class:`~xstilts.train.recipe.Recipe` (model,
optimizer, scheduler, data, sampler, auxiliary objectives) and a
:class:`~xstilts.train.recipe.TrainState` (step, dev history, log window), then runs a plain
loop of :func:`optimizer_step` (sample task -> batch -> forward -> backward, per micro-batch;
clip -> step), logging every ``log_every`` steps, evaluating on dev every ``eval_every`` steps
and checkpointing every ``save_every`` steps. Every part is a plain function of the recipe and
the state. Hugging Face Accelerate provides the device placement, mixed precision and
multi-process data parallelism, so the same code runs on a laptop CPU and under
``accelerate launch`` on many GPUs.

A micro-batch's loss is its task head's loss (the head kind decides it, in
:class:`~xstilts.train.heads.MultiTaskModel`) plus the weighted losses of the auxiliary
objectives (:mod:`xstilts.train.objectives`); each objective's loss is logged as well. A new
objective kind is a new head kind or a new objective, not a new loop.

Resuming (``resume=True``) restores weights, optimizer, scheduler, torch RNG and the sampler's
counters from the last checkpoint, so the resumed run reaches the same final weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xstilts.io import write_json_atomic
from xstilts.models.runs import write_pointer
from xstilts.train.checkpoint import save_checkpoint
from xstilts.train.config import TrainConfig
from xstilts.train.evaluation import evaluate_all
from xstilts.train.features import to_device
from xstilts.train.recipe import (
    LOG_FILE,
    LogWindow,
    Recipe,
    TrainState,
    setup,
    training_record,
)

METRICS_FILE = "metrics.json"
RECORD_FILE = "training_record.json"  # what the run trained on, per task and language


@dataclass
class StepInfo:
    """What a progress callback receives after each optimizer step."""

    step: int
    total: int
    loss: float
    examples_per_s: float
    task: str


@dataclass
class TrainResult:
    """Where the run is and how it went."""

    run_dir: Path
    steps: int
    best_step: int | None
    best: dict[str, Any]
    final: dict[str, Any]
    n_skipped: dict[str, int] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)


def _quiet(_message: str) -> None:
    """The status callback when none is given."""


def train(
    cfg: TrainConfig,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run (or resume) one training run; returns best and final dev metrics."""
    started = time.perf_counter()
    status = on_status or _quiet
    recipe, state = setup(cfg, status)
    setup_s = time.perf_counter() - started
    recipe.model.train()
    state.window = LogWindow()
    first = True
    while state.step < recipe.total:
        task = optimizer_step(recipe, state)
        if first:
            log_first_step(recipe, state, setup_s, time.perf_counter() - started, status)
            first = False
        if state.step % cfg.log_every == 0 or state.step == recipe.total:
            info = log_step(recipe, state, task)
            if on_step is not None:
                on_step(info)
        if _due(state.step, cfg.eval_every, recipe.total):
            record_eval(recipe, state, evaluate(recipe, state.step))
        if _due(state.step, cfg.save_every, recipe.total) and recipe.is_main:
            write_pointer(recipe.run_dir, "last", save(recipe, state, f"step-{state.step:07d}"))
            _prune(recipe.run_dir, cfg.keep_checkpoints)
    return finish(recipe, state)


def _due(step: int, every: int | None, total: int) -> bool:
    """Whether a periodic action (dev evaluation, checkpoint) runs after ``step``; the last
    step has its own (final evaluation, final checkpoint)."""
    return bool(every) and step % every == 0 and step < total


# --------------------------------------------------------------------------- one step


def optimizer_step(recipe: Recipe, state: TrainState) -> str:
    """``grad_accum`` micro-batches, clipping and one optimizer and LR step; returns the task
    of the last micro-batch."""
    task = ""
    for micro in range(recipe.cfg.grad_accum):
        task = micro_step(recipe, state, micro)
    recipe.accelerator.clip_grad_norm_(recipe.model.parameters(), recipe.cfg.max_grad_norm)
    recipe.optimizer.step()
    recipe.scheduler.step()
    recipe.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    return task


def micro_step(recipe: Recipe, state: TrainState, micro: int) -> str:
    """Forward and backward of one micro-batch: the drawn task's loss plus each auxiliary
    objective's, weighted. Returns the task drawn."""
    task, idx = recipe.sampler.next()
    td = recipe.by_name[task]
    batch = to_device(td.collate(idx, recipe.pad_id), recipe.device)
    parts: dict[str, torch.Tensor] = {}
    with recipe.accelerator.autocast():
        loss, _ = recipe.model(task, batch)
        for objective in recipe.objectives:
            part = objective.loss(recipe.core, state.step, micro, recipe.device)
            loss = loss + objective.weight * part
            parts[objective.name] = part
    recipe.accelerator.backward(loss / recipe.cfg.grad_accum)
    state.window.add(
        float(loss.detach()), {k: float(v.detach()) for k, v in parts.items()}, len(idx)
    )
    return task


# --------------------------------------------------------------------------- logging


def _append_log(recipe: Recipe, record: dict[str, Any]) -> None:
    """One line of ``train_log.jsonl`` (main process only)."""
    if recipe.is_main:
        with (recipe.run_dir / LOG_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def log_first_step(
    recipe: Recipe, state: TrainState, setup_s: float, seconds: float, status: Callable[[str], None]
) -> None:
    """Time from the start of :func:`train` to this process's first optimizer step (setup:
    model, data, featurizing what the first draws need), and the features built by then."""
    built = {td.task.name: f"{td.train.n_built}/{len(td.train)}" for td in recipe.tasks}
    _append_log(
        recipe,
        {
            "step": state.step,
            "setup_s": round(setup_s, 3),
            "first_step_s": round(seconds, 3),
            "featurized": built,
        },
    )
    status(
        f"first optimizer step after {seconds:.1f} s (setup {setup_s:.1f} s; features built: "
        + ", ".join(f"{t} {n}" for t, n in built.items())
        + ")"
    )


def log_step(recipe: Recipe, state: TrainState, task: str) -> StepInfo:
    """Log the window since the last record (mean loss, each objective's mean loss, LR,
    throughput, batches drawn per task) and start a new window."""
    window, now = state.window, time.perf_counter()
    rate = window.examples * recipe.accelerator.num_processes / max(now - window.started, 1e-9)
    loss = window.loss_sum / window.n
    _append_log(
        recipe,
        {
            "step": state.step,
            "loss": loss,
            **{f"{name}_loss": s / window.n for name, s in window.objective_sums.items()},
            "lr": recipe.scheduler.get_last_lr()[0],
            "examples_per_s": round(rate, 2),
            "drawn": dict(recipe.sampler.drawn),
        },
    )
    state.window = LogWindow(started=now)
    return StepInfo(state.step, recipe.total, loss, rate, task)


# --------------------------------------------------------------------------- dev evaluation


def evaluate(recipe: Recipe, step: int) -> dict[str, Any]:
    """Every task's dev metrics and their mean main metric at ``step``."""
    return evaluate_all(
        recipe.core, recipe.tasks, recipe.pad_id, recipe.device, recipe.cfg.batch_size, step
    )


def record_eval(recipe: Recipe, state: TrainState, result: dict[str, Any]) -> None:
    """Log an evaluation and keep the best checkpoint (by the mean of the tasks' main metric)."""
    _append_log(recipe, {"step": result["step"], "eval": result["tasks"], "score": result["score"]})
    history = state.history
    history["evals"].append({"step": result["step"], "score": result["score"]})
    if history["best_score"] is None or result["score"] > history["best_score"]:
        history["best_score"] = result["score"]
        history["best_step"] = result["step"]
        history["best"] = result["tasks"]
        if recipe.is_main:
            write_pointer(recipe.run_dir, "best", save(recipe, state, "best", full=False))


# --------------------------------------------------------------------------- checkpoints


def save(recipe: Recipe, state: TrainState, name: str, *, full: bool = True) -> Path:
    """Save weights (+ optimizer/scheduler/RNG when ``full``, for resuming) as ``name``."""
    return save_checkpoint(
        recipe.run_dir / "checkpoints" / name,
        recipe.core,
        recipe.tokenizer,
        recipe.head_meta(),
        optimizer=recipe.optimizer if full else None,
        scheduler=recipe.scheduler if full else None,
        trainer_state={
            "step": state.step,
            "sampler": recipe.sampler.state_dict(),
            "history": state.history,
        },
    )


def _prune(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` step checkpoints (plus best/final)."""
    steps = sorted((run_dir / "checkpoints").glob("step-*"))
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def finish(recipe: Recipe, state: TrainState) -> TrainResult:
    """Final dev evaluation, final checkpoint (weights only) and ``metrics.json``."""
    final = evaluate(recipe, state.step)
    record_eval(recipe, state, final)
    history = state.history
    record = training_record(recipe, state.step)
    if recipe.is_main:
        write_json_atomic(recipe.run_dir / RECORD_FILE, record)
        write_pointer(recipe.run_dir, "last", save(recipe, state, "final", full=False))
        _prune(recipe.run_dir, recipe.cfg.keep_checkpoints)
        write_json_atomic(
            recipe.run_dir / METRICS_FILE,
            {
                "steps": state.step,
                "best_step": history["best_step"],
                "best": history["best"],
                "final": final["tasks"],
                "final_score": final["score"],
            },
        )
    return TrainResult(
        recipe.run_dir,
        state.step,
        history["best_step"],
        history["best"],
        final["tasks"],
        {td.task.name: td.n_skipped for td in recipe.tasks},
        record,
    )
