"""What a training run is built from (:class:`Recipe`) and where it is (:class:`TrainState`).

:func:`setup` turns a :class:`~xstilts.train.config.TrainConfig` into both, in a fixed order
(the order decides the random numbers each part draws): the accelerator and seeds, the model
and tokenizer, the featurized task data, the heads, the auxiliary objectives, the optimizer,
the task sampler and the LR schedule; then it restores the last checkpoint when resuming and
records the run in ``xstilts_run.json``. The loop (:mod:`xstilts.train.loop`) only reads the
recipe and advances the state.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xstilts.errors import UsageError
from xstilts.hardware import configure_threads, resolve_device, resolve_dtype
from xstilts.io import write_json_atomic, write_text_atomic
from xstilts.layers import resolve_layers
from xstilts.models import ModelRef, resolve_model
from xstilts.models.runs import RUN_FILE, read_pointer
from xstilts.paths import resolve_data_dir
from xstilts.train.checkpoint import load_checkpoint
from xstilts.train.config import TrainConfig
from xstilts.train.data import TaskData, head_spec, load_task_data
from xstilts.train.heads import MultiTaskModel, SentenceSettings
from xstilts.train.objectives import MLMObjective, Objective, build_objectives
from xstilts.train.record import count_by_lang, summarize
from xstilts.train.sampling import TaskBatchSampler, parse_sampling

LOG_FILE = "train_log.jsonl"
# Parameters without weight decay (biases and normalisation weights), by name suffix.
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight", "log_scale")


@dataclass
class Recipe:
    """The parts of a run: built once by :func:`setup`, then only used."""

    cfg: TrainConfig
    run_dir: Path
    accelerator: Any  # accelerate.Accelerator
    model_ref: ModelRef
    tokenizer: Any
    tasks: list[TaskData]
    model: Any  # the model as prepared by the accelerator (wrapped when data-parallel)
    core: MultiTaskModel  # the same model unwrapped: heads, auxiliary losses, saving
    optimizer: Any
    scheduler: Any
    sampler: TaskBatchSampler
    objectives: tuple[Objective, ...]
    total: int  # optimizer steps
    by_name: dict[str, TaskData] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {td.task.name: td for td in self.tasks}

    @property
    def device(self) -> torch.device:
        """Where batches go."""
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints and logs."""
        return bool(self.accelerator.is_main_process)

    @property
    def pad_id(self) -> int:
        """The tokenizer's padding id (0 when it has none)."""
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def head_meta(self) -> dict[str, Any]:
        """``heads.json``: head specs and label names of every checkpoint."""
        return {
            "heads": [head_spec(td).to_dict() for td in self.tasks],
            "labels": {td.task.name: list(td.labels) if td.labels else None for td in self.tasks},
            "mlm": self.cfg.mlm_aux,
        }


@dataclass
class LogWindow:
    """Sums over the optimizer steps since the last log record."""

    started: float = field(default_factory=time.perf_counter)
    examples: int = 0
    loss_sum: float = 0.0
    n: int = 0  # micro-batches
    objective_sums: dict[str, float] = field(default_factory=dict)

    def add(self, loss: float, objective_losses: dict[str, float], examples: int) -> None:
        """Count one micro-batch."""
        self.loss_sum += loss
        self.n += 1
        self.examples += examples
        for name, value in objective_losses.items():
            self.objective_sums[name] = self.objective_sums.get(name, 0.0) + value


def new_history() -> dict[str, Any]:
    """Dev evaluations so far and the best one (saved in every checkpoint's trainer state)."""
    return {"best_score": None, "best_step": None, "best": {}, "evals": []}


@dataclass
class TrainState:
    """Where the run is: what a checkpoint restores besides weights, optimizer and sampler."""

    step: int = 0
    history: dict[str, Any] = field(default_factory=new_history)
    window: LogWindow = field(default_factory=LogWindow)


# --------------------------------------------------------------------------- setup


def setup(cfg: TrainConfig, status: Callable[[str], None]) -> tuple[Recipe, TrainState]:
    """Build every part of a run from its configuration; restore it when resuming."""
    run_dir = Path(cfg.out)
    strategy, temperature = parse_sampling(cfg.sampling)
    check_run_dir(run_dir, cfg)
    configure_threads()
    accelerator = _accelerator(cfg)
    data_dir = resolve_data_dir(cfg.data_dir)
    status(f"loading {cfg.model}")
    ref = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    loaded = ref.load()
    status("loading and featurizing tasks")
    tasks = load_task_data(cfg, loaded.tokenizer, data_dir)
    torch.manual_seed(cfg.seed)  # head initialisation does not depend on data loading
    core = MultiTaskModel(
        loaded.model,
        [head_spec(td) for td in tasks],
        dropout=cfg.dropout,
        sentence=sentence_settings(cfg, loaded.model, loaded.tokenizer, accelerator),
    )
    objectives = build_objectives(cfg, loaded.tokenizer, data_dir, core)
    optimizer = _optimizer(core, cfg, accelerator.device)
    sampler = TaskBatchSampler(
        {td.task.name: td.train for td in tasks},  # lengths measured as windows are drawn
        cfg.batch_size,
        strategy=strategy,
        temperature=temperature,
        seed=cfg.seed,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        plans={td.task.name: td.plan for td in tasks if td.plan is not None},
    )
    total = total_steps(cfg, sampler, tasks, status)
    scheduler = _scheduler(optimizer, cfg, total)
    model, optimizer = accelerator.prepare(core, optimizer)
    recipe = Recipe(
        cfg=cfg,
        run_dir=run_dir,
        accelerator=accelerator,
        model_ref=ref,
        tokenizer=loaded.tokenizer,
        tasks=tasks,
        model=model,
        core=accelerator.unwrap_model(model),
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        objectives=objectives,
        total=total,
    )
    state = restore(recipe, status)
    if recipe.is_main:
        write_run_file(recipe)
    return recipe, state


def sentence_settings(
    cfg: TrainConfig, model: Any, tokenizer: Any, accelerator: Any
) -> SentenceSettings:
    """The contrastive objective's sentence vectors: ``layer`` checked against the model (as
    evaluation checks ``--layer``); gradient caching only in one process (its second forward
    pass runs inside the backward pass, where data parallelism has already synchronised)."""
    n = int(model.config.num_hidden_layers) + 1
    layer = resolve_layers([-1 if cfg.layer == "last" else cfg.layer], n)[0]
    if cfg.grad_cache and accelerator.num_processes > 1:
        raise UsageError("--grad-cache runs in one process; use --grad-accum across processes")
    return SentenceSettings(
        layer=layer,
        pooling=cfg.pooling,
        temperature=cfg.temperature,
        learn_temperature=cfg.learn_temperature,
        grad_cache=cfg.grad_cache,
        special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
    )


def total_steps(
    cfg: TrainConfig,
    sampler: TaskBatchSampler,
    tasks: list[TaskData],
    status: Callable[[str], None],
) -> int:
    """Optimizer steps of the run: from the budget when there is one (exactly enough to see
    ``budget`` examples or tokens, drawn from a twin of the sampler), else ``max_steps``, else
    ``epochs`` passes. A task repeated more than ``budget.max_repeats`` epochs is reported."""
    if cfg.budget is None:
        return cfg.max_steps or math.ceil(
            cfg.epochs * sampler.micro_batches_per_epoch / cfg.grad_accum
        )
    by_name = {td.task.name: td for td in tasks}

    def size(task: str, batch: Any) -> float:
        if cfg.budget is not None and cfg.budget.kind == "tokens":
            return float(sum(tokens for _, tokens in by_name[task].drawn(batch)))
        return float(len(batch))

    steps, drawn = sampler.steps_for(cfg.budget.target, cfg.grad_accum, size)
    for name, batches in drawn.items():
        epochs = batches / max(sampler.batches_per_epoch(name), 1)
        if epochs > cfg.budget.max_repeats:
            status(
                f"warning: the budget repeats {name} {epochs:.1f} times (more than "
                f"max_repeats {cfg.budget.max_repeats:g}): a small task seen many times"
            )
    return steps


def training_record(recipe: Recipe, steps: int) -> dict[str, Any]:
    """What the run trained on, per task and language (:mod:`xstilts.train.record`): rows
    available, examples (features: a QA window counts as one) and tokens drawn, epochs; and the
    auxiliary MLM text drawn. Recomputed from the deterministic sampler and MLM draws, so a
    resumed run's record equals an uninterrupted one's."""
    tasks = {}
    for td in recipe.tasks:
        examples: Counter[str] = Counter()
        tokens: Counter[str] = Counter()
        regimes: Counter[str] = Counter()
        for batch in recipe.sampler.drawn_batches(td.task.name):
            regimes[getattr(batch, "regime", "")] += 1
            for lang, n in td.drawn(batch):
                examples[lang] += 1
                tokens[lang] += n
        tasks[td.task.name] = {
            "rows": td.rows_by_lang,
            "features": len(td.train),
            "examples": dict(sorted(examples.items())),
            "tokens": dict(sorted(tokens.items())),
            "epochs": round(sum(examples.values()) / max(len(td.train), 1), 4),
        }
        if td.plan is not None:  # pair tasks: batches per regime (monolingual, cross-lingual...)
            tasks[td.task.name]["batches"] = dict(sorted(regimes.items()))
    cfg = recipe.cfg
    record: dict[str, Any] = {
        "tasks": tasks,
        "mlm": _mlm_record(recipe, steps),
        "steps": steps,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "processes": recipe.accelerator.num_processes,
        "budget": cfg.budget.model_dump() if cfg.budget else None,
    }
    return summarize(record)


def _mlm_record(recipe: Recipe, steps: int) -> dict[str, Any] | None:
    stream = next((o.stream for o in recipe.objectives if isinstance(o, MLMObjective)), None)
    if stream is None:
        return None
    examples: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for step in range(steps):
        for micro in range(recipe.cfg.grad_accum):
            for i in stream.indices(step, micro):
                examples[stream.langs[i]] += 1
                tokens[stream.langs[i]] += len(stream.ids[i])
    return {
        "rows": count_by_lang(stream.langs),
        "examples": dict(sorted(examples.items())),
        "tokens": dict(sorted(tokens.items())),
    }


def _mixed_precision(requested: str) -> str:
    """Accelerate's name for the compute dtype; ``auto`` means what it means for encoding
    (:func:`xstilts.hardware.resolve_dtype`: bf16 on CUDA and on CPUs with native bf16)."""
    if requested != "auto":
        return requested
    dtype = resolve_dtype("auto", resolve_device(None))
    return "no" if dtype == "fp32" else dtype


def _accelerator(cfg: TrainConfig) -> Any:
    """Accelerate's device placement, mixed precision and data parallelism; seeds every RNG."""
    # Deferred: accelerate takes seconds to import, and the CLI and the experiment runner
    # import this module whether or not they train.
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    precision = _mixed_precision(cfg.mixed_precision)
    if AcceleratorState._shared_state.get("_mixed_precision") not in (None, precision):
        # accelerate keeps one process-wide state and refuses a second precision; one process
        # trains runs one after another (the experiment runner, the tests), so the finished
        # run's state is dropped (the distributed set-up, PartialState, is kept)
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        mixed_precision=precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(cfg.seed)
    return accelerator


def _optimizer(model: MultiTaskModel, cfg: TrainConfig, device: torch.device) -> Any:
    """AdamW; no weight decay on biases and normalisation weights."""
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if not n.endswith(NO_DECAY)],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for n, p in named if n.endswith(NO_DECAY)], "weight_decay": 0.0},
    ]
    # The fused kernel updates all parameters in one pass: on a CPU it is much faster than the
    # default multi-tensor path and needs no per-step temporaries the size of the model (the
    # 250k-piece embedding matrix dominates both). Trainer uses it by default too.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)


def _scheduler(optimizer: Any, cfg: TrainConfig, total: int) -> Any:
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    # Deferred: importing transformers' optimization module loads much of transformers.
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)


# --------------------------------------------------------------------------- run directory


def check_run_dir(run_dir: Path, cfg: TrainConfig) -> None:
    """A run directory belongs to one configuration: refuse to mix two in it."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return
    prev = json.loads(path.read_text(encoding="utf-8"))
    if prev.get("weights_hash") != cfg.weights_hash():
        raise UsageError(
            f"{run_dir} holds a run with different settings (weights hash "
            f"{prev.get('weights_hash', '?')[:12]} vs {cfg.weights_hash()[:12]}); use another --out"
        )
    if not cfg.resume and read_pointer(run_dir, "last") is not None:
        raise UsageError(f"{run_dir} already has checkpoints: pass --resume to continue that run")


def restore(recipe: Recipe, status: Callable[[str], None]) -> TrainState:
    """A fresh state, or, when resuming, the last checkpoint's (weights, optimizer, scheduler,
    RNG and sampler restored in place; log records after it dropped)."""
    last = read_pointer(recipe.run_dir, "last")
    if not recipe.cfg.resume or last is None:
        return TrainState()
    saved = load_checkpoint(
        last, recipe.core, optimizer=recipe.optimizer, scheduler=recipe.scheduler
    )
    state = TrainState(step=int(saved["step"]), history=saved["history"])
    recipe.sampler.load_state_dict(saved["sampler"])
    if recipe.is_main:
        truncate_log(recipe.run_dir / LOG_FILE, state.step)
    status(f"resumed from {last.name} (step {state.step} of {recipe.total})")
    return state


def truncate_log(path: Path, step: int) -> None:
    """Drop the log records written after ``step`` (the checkpoint a run resumes from): the
    resumed run writes those steps again, and a log must not hold any step twice."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if isinstance(record, dict) and int(record.get("step", 0)) <= step:
            kept.append(line + "\n")
    write_text_atomic(path, "".join(kept))


def write_run_file(recipe: Recipe) -> None:
    """``xstilts_run.json``: configuration, its weights hash, model provenance, task sizes."""
    recipe.run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        recipe.run_dir / RUN_FILE,
        {
            "config": recipe.cfg.model_dump(mode="json"),
            "weights_hash": recipe.cfg.weights_hash(),
            "model": recipe.model_ref.describe(),
            "tasks": {td.task.name: td.summary() for td in recipe.tasks},
            "total_steps": recipe.total,
            "sampling_probabilities": recipe.sampler.probs,
            # what --mixed-precision auto resolved to here ("no" = fp32), and where
            "mixed_precision": recipe.accelerator.mixed_precision,
            "device": str(recipe.accelerator.device),
        },
    )
