"""The training loop: a readable sequence of steps, configured by :class:`TrainConfig`.

No trainer class hierarchy: :func:`train` loads data, builds the model, then runs a plain loop
of (sample task -> batch -> forward -> backward -> clip -> step), evaluating on dev every
``eval_every`` steps and checkpointing every ``save_every`` steps. Hugging Face Accelerate
provides the device placement, mixed precision and multi-process data parallelism, so the same
code runs on a laptop CPU and under ``accelerate launch`` on many GPUs.

Resuming (``resume=True``) restores weights, optimizer, scheduler, torch RNG and the sampler's
counters from the last checkpoint, so the resumed run reaches the same final weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xstilts.errors import UsageError, XstiltsError
from xstilts.hardware import configure_threads, resolve_device, resolve_dtype
from xstilts.intermediate import (
    IntermediateTask,
    LoadedSplit,
    get_intermediate_task,
    parse_task_list,
)
from xstilts.io import write_json_atomic, write_text_atomic
from xstilts.models import resolve_model
from xstilts.models.runs import RUN_FILE, read_pointer, write_pointer
from xstilts.paths import resolve_data_dir
from xstilts.train.checkpoint import load_checkpoint, save_checkpoint
from xstilts.train.config import TrainConfig
from xstilts.train.features import collate, featurize, postprocess_spans
from xstilts.train.heads import HeadSpec, MultiTaskModel, mask_tokens
from xstilts.train.sampling import TaskBatchSampler, parse_sampling
from xstilts.train.task_metrics import compute_task_metrics

LOG_FILE = "train_log.jsonl"
METRICS_FILE = "metrics.json"


@dataclass
class TaskData:
    """One task's training and dev features, ready for batching."""

    task: IntermediateTask
    labels: tuple[str, ...] | None
    train: list[dict]
    dev: list[dict]
    dev_examples: list
    n_train_examples: int
    n_skipped: int
    dev_note: str = ""


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


def _holdout(split: LoadedSplit, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic train/dev division of one split (when only one labelled split exists)."""
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(split.examples))
    n_dev = max(1, int(len(order) * fraction))
    dev = [split.examples[i] for i in sorted(order[:n_dev])]
    train = [split.examples[i] for i in sorted(order[n_dev:])]
    return train, dev


def load_task_data(cfg: TrainConfig, tokenizer: Any, data_dir: Path) -> list[TaskData]:
    """Load, check and featurize every task's train and dev rows before training starts."""
    out = []
    for task in parse_task_list(",".join(cfg.tasks)):
        train_split = cfg.split_for(task.name, task.train_split)
        # --langs selects languages of multilingual tasks; English-only tasks ignore it
        langs = cfg.langs if cfg.langs and len(task.languages) > 1 else None

        def load(split: str, limit: int | None, task=task, langs=langs) -> LoadedSplit:
            return task.load(
                data_dir, split, langs, max_examples=limit,
                skip_bad_rows=cfg.skip_bad_rows, seed=cfg.seed,
            )  # fmt: skip

        dev_loaded = None
        if train_split != task.dev_split and task.dev_split in task.available(data_dir):
            dev_loaded = load(task.dev_split, cfg.eval_max_examples)
            if not dev_loaded.has_labels:
                dev_loaded = None  # labels hidden (e.g. TyDiQA dev copies): hold out instead
        note = ""
        if dev_loaded is None:
            # No labelled dev split: train on 90% of the training split, evaluate on the rest.
            loaded = load(train_split, None)
            train_ex, dev_ex = _holdout(loaded, 0.1, cfg.seed)
            if cfg.max_examples:
                train_ex = train_ex[: cfg.max_examples]
            note = f"dev = 10% held out of {train_split}"
        else:
            loaded = load(train_split, cfg.max_examples)
            train_ex, dev_ex = loaded.examples, dev_loaded.examples
        if cfg.eval_max_examples:
            dev_ex = dev_ex[: cfg.eval_max_examples]
        labels = loaded.labels if loaded.labels is not None else task.labels
        max_len = cfg.span_max_length if task.kind == "span" else cfg.max_length
        kw = {"max_length": max_len, "doc_stride": cfg.doc_stride, "labels": labels}
        out.append(
            TaskData(
                task=task,
                labels=labels,
                train=featurize(task, train_ex, tokenizer, **kw),
                dev=featurize(task, dev_ex, tokenizer, **kw),
                dev_examples=dev_ex,
                n_train_examples=len(train_ex),
                n_skipped=loaded.n_skipped,
                dev_note=note,
            )
        )
    return out


def head_spec(td: TaskData) -> HeadSpec:
    """The head a task needs."""
    kind = td.task.kind
    if kind in ("classification", "tagging"):
        if not td.labels:
            raise XstiltsError(f"task {td.task.name}: no label set")
        return HeadSpec(td.task.name, kind, len(td.labels))
    return HeadSpec(td.task.name, kind, 1 if kind == "multiple_choice" else 2)


def _feature_length(f: dict) -> int:
    ids = f["input_ids"]
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.inference_mode()
def evaluate_dev(
    model: MultiTaskModel, td: TaskData, pad_id: int, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Dev metrics of one task with its own metric (``main`` = the task's headline metric).

    Features are batched longest first (less padding) and predictions put back in order.
    """
    model.eval()
    kind = td.task.kind
    n = len(td.dev)
    preds: list[Any] = [None] * n
    span: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    order = np.argsort([-_feature_length(f) for f in td.dev], kind="stable")
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size].tolist()
        batch = _to_device(collate([td.dev[j] for j in idx], pad_id), device)
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
        width = max((len(a) for a, _ in span.values()), default=0)
        starts = np.full((n, width), -1e9, np.float32)
        ends = np.full((n, width), -1e9, np.float32)
        for j, (a, b) in span.items():
            starts[j, : len(a)], ends[j, : len(b)] = a, b
        answers = postprocess_spans(td.dev_examples, td.dev, starts, ends)
        return compute_task_metrics(td.task, answers, td.dev_examples)
    if kind == "tagging":  # per sentence, so entity F1 never spans two sentences
        refs = [[t for t in f["labels"] if t != -100] for f in td.dev]
        return compute_task_metrics(td.task, preds, refs)
    return compute_task_metrics(td.task, preds, [f["labels"] for f in td.dev])


class _MLMStream:
    """Masked-LM batches from multilingual text, deterministic per step (for resume)."""

    def __init__(self, texts: list[str], tokenizer: Any, cfg: TrainConfig) -> None:
        enc = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
        self.ids = [x for x in enc if len(x) > 2]
        if not self.ids:
            raise XstiltsError("--mlm-aux: no usable text in the MLM data")
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        if tokenizer.mask_token_id is None:
            raise XstiltsError("--mlm-aux: the tokenizer has no mask token")

    def batch(self, step: int, micro: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step * 131 + micro)
        idx = torch.randint(len(self.ids), (self.cfg.batch_size,), generator=gen).tolist()
        feats = [{"input_ids": self.ids[i], "attention_mask": [1] * len(self.ids[i])} for i in idx]
        batch = collate(feats, self.tokenizer.pad_token_id)
        special = torch.isin(batch["input_ids"], self.special) | (batch["attention_mask"] == 0)
        ids, labels = mask_tokens(
            batch["input_ids"],
            special,
            mask_id=self.tokenizer.mask_token_id,
            vocab_size=len(self.tokenizer),
            generator=gen,
            probability=self.cfg.mlm_probability,
        )
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}


def mlm_texts(sources: list[str], data_dir: Path) -> list[str]:
    """Text for the auxiliary MLM loss: files (one sentence per line) or ``xnli`` (15 languages).

    Never Tatoeba/BUCC/LAReQA: those are the evaluation data.
    """
    from xstilts.io import read_lines

    texts: list[str] = []
    for src in sources:
        if src == "xnli":
            task = get_intermediate_task("xnli")
            split = task.load(data_dir, task.dev_split, None)
            for ex in split.examples:
                texts.append(ex.text_a)
                if ex.text_b:
                    texts.append(ex.text_b)
        else:
            texts.extend(t for t in read_lines(Path(src)) if t.strip())
    return texts


def _mixed_precision(requested: str) -> str:
    """Accelerate's name for the compute dtype; ``auto`` means what it means for encoding
    (:func:`xstilts.hardware.resolve_dtype`: bf16 on CUDA and on CPUs with native bf16)."""
    if requested != "auto":
        return requested
    dtype = resolve_dtype("auto", resolve_device(None))
    return "no" if dtype == "fp32" else dtype


def _check_resume(run_dir: Path, cfg: TrainConfig) -> None:
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


def train(
    cfg: TrainConfig,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run (or resume) one training run; returns best and final dev metrics."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from transformers import get_linear_schedule_with_warmup

    status = on_status or (lambda _msg: None)
    run_dir = Path(cfg.out)
    strategy, temperature = parse_sampling(cfg.sampling)
    _check_resume(run_dir, cfg)
    configure_threads()
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(cfg.mixed_precision),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(cfg.seed)
    data_dir = resolve_data_dir(cfg.data_dir)

    status(f"loading {cfg.model}")
    ref = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    loaded = ref.load()
    tokenizer = loaded.tokenizer
    status("loading and featurizing tasks")
    tasks = load_task_data(cfg, tokenizer, data_dir)
    by_name = {td.task.name: td for td in tasks}

    torch.manual_seed(cfg.seed)  # head initialisation does not depend on data loading
    model = MultiTaskModel(loaded.model, [head_spec(td) for td in tasks], dropout=cfg.dropout)
    mlm = None
    if cfg.mlm_aux:
        mlm = _MLMStream(mlm_texts(cfg.mlm_data, data_dir), tokenizer, cfg)
        model.enable_mlm()
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    # The fused kernel updates all parameters in one pass: on a CPU it is much faster than the
    # default multi-tensor path and needs no per-step temporaries the size of the model (the
    # 250k-piece embedding matrix dominates both). Trainer uses it by default too.
    fused = accelerator.device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)
    sampler = TaskBatchSampler(
        {td.task.name: [_feature_length(f) for f in td.train] for td in tasks},
        cfg.batch_size,
        strategy=strategy,
        temperature=temperature,
        seed=cfg.seed,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    total = cfg.max_steps or math.ceil(
        cfg.epochs * sampler.micro_batches_per_epoch / cfg.grad_accum
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    core: MultiTaskModel = accelerator.unwrap_model(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    head_meta = {
        "heads": [head_spec(td).to_dict() for td in tasks],
        "labels": {td.task.name: list(td.labels) if td.labels else None for td in tasks},
        "mlm": cfg.mlm_aux,
    }

    step = 0
    history: dict[str, Any] = {"best_score": None, "best_step": None, "best": {}, "evals": []}
    last = read_pointer(run_dir, "last")
    if cfg.resume and last is not None:
        state = load_checkpoint(last, core, optimizer=optimizer, scheduler=scheduler)
        step = int(state["step"])
        sampler.load_state_dict(state["sampler"])
        history = state["history"]
        if accelerator.is_main_process:
            truncate_log(run_dir / LOG_FILE, step)
        status(f"resumed from {last.name} (step {step} of {total})")
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            run_dir / RUN_FILE,
            {
                "config": cfg.model_dump(mode="json"),
                "weights_hash": cfg.weights_hash(),
                "model": ref.describe(),
                "tasks": {
                    td.task.name: {
                        "train_examples": td.n_train_examples,
                        "train_features": len(td.train),
                        "dev_examples": len(td.dev_examples),
                        "skipped_rows": td.n_skipped,
                        "dev_note": td.dev_note,
                    }
                    for td in tasks
                },
                "total_steps": total,
                "sampling_probabilities": sampler.probs,
            },
        )

    def run_evals() -> dict[str, Any]:
        metrics = {
            td.task.name: evaluate_dev(core, td, pad_id, accelerator.device, cfg.batch_size)
            for td in tasks
        }
        score = float(np.mean([m["main"] for m in metrics.values()]))
        return {"step": step, "score": score, "tasks": metrics}

    def checkpoint(name: str, *, full: bool = True) -> Path:
        """Save weights (+ optimizer/scheduler/RNG when ``full``, for resuming)."""
        target = run_dir / "checkpoints" / name
        save_checkpoint(
            target,
            core,
            tokenizer,
            head_meta,
            optimizer=optimizer if full else None,
            scheduler=scheduler if full else None,
            trainer_state={"step": step, "sampler": sampler.state_dict(), "history": history},
        )
        return target

    def log(record: dict[str, Any]) -> None:
        if accelerator.is_main_process:
            with (run_dir / LOG_FILE).open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    model.train()
    t_last, ex_since, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0
    while step < total:
        for micro in range(cfg.grad_accum):
            task, idx = sampler.next()
            td = by_name[task]
            batch = _to_device(collate([td.train[i] for i in idx], pad_id), accelerator.device)
            with accelerator.autocast():
                loss, _ = model(task, batch)
                if mlm is not None:
                    mlm_batch = _to_device(mlm.batch(step, micro), accelerator.device)
                    loss = loss + cfg.mlm_weight * core.mlm_loss(mlm_batch)
            accelerator.backward(loss / cfg.grad_accum)
            loss_sum += float(loss.detach())
            loss_n += 1
            ex_since += len(idx)
        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        now = time.perf_counter()
        if step % cfg.log_every == 0 or step == total:
            rate = ex_since * accelerator.num_processes / max(now - t_last, 1e-9)
            log(
                {
                    "step": step,
                    "loss": loss_sum / loss_n,
                    "lr": scheduler.get_last_lr()[0],
                    "examples_per_s": round(rate, 2),
                    "drawn": dict(sampler.drawn),
                }
            )
            if on_step is not None:
                on_step(StepInfo(step, total, loss_sum / loss_n, rate, task))
            t_last, ex_since, loss_sum, loss_n = now, 0, 0.0, 0
        if cfg.eval_every and step % cfg.eval_every == 0 and step < total:
            _record_eval(
                history,
                run_evals(),
                checkpoint_fn=checkpoint,
                log=log,
                run_dir=run_dir,
                is_main=accelerator.is_main_process,
            )
        if step % cfg.save_every == 0 and step < total and accelerator.is_main_process:
            write_pointer(run_dir, "last", checkpoint(f"step-{step:07d}"))
            _prune(run_dir, cfg.keep_checkpoints)

    final = run_evals()
    _record_eval(
        history,
        final,
        checkpoint_fn=checkpoint,
        log=log,
        run_dir=run_dir,
        is_main=accelerator.is_main_process,
    )
    if accelerator.is_main_process:
        write_pointer(run_dir, "last", checkpoint("final", full=False))
        _prune(run_dir, cfg.keep_checkpoints)
        write_json_atomic(
            run_dir / METRICS_FILE,
            {
                "steps": step,
                "best_step": history["best_step"],
                "best": history["best"],
                "final": final["tasks"],
                "final_score": final["score"],
            },
        )
    return TrainResult(
        run_dir,
        step,
        history["best_step"],
        history["best"],
        final["tasks"],
        {td.task.name: td.n_skipped for td in tasks},
    )


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


def _record_eval(history, result, *, checkpoint_fn, log, run_dir: Path, is_main: bool) -> None:
    """Log an evaluation and keep the best checkpoint (by the mean of the tasks' main metric)."""
    log({"step": result["step"], "eval": result["tasks"], "score": result["score"]})
    history["evals"].append({"step": result["step"], "score": result["score"]})
    if history["best_score"] is None or result["score"] > history["best_score"]:
        history["best_score"] = result["score"]
        history["best_step"] = result["step"]
        history["best"] = result["tasks"]
        if is_main:
            write_pointer(run_dir, "best", checkpoint_fn("best", full=False))


def _prune(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` step checkpoints (plus best/final)."""
    steps = sorted((run_dir / "checkpoints").glob("step-*"))
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
