"""How long a spec will take on this machine, before running it (``xstilts run SPEC --dry-run``).

Two speeds decide nearly all of a run's time: the model's forward + backward + optimizer step
(training) and its forward pass (evaluation encoding, dev evaluation). Both are measured once
per model, precision and machine by a short calibration (:func:`calibrate`: a few batches of
random token ids of a fixed shape, seconds), and cached (``<cache>/calibration/``): the same
model on the same machine is not measured twice. Each cell's work is counted from the spec and
its data, with the model's own tokenizer:

* training: optimizer steps (from the budget, else ``max_steps``, else epochs over the planned
  rows) x examples per step x tokens per example (a seeded sample of the cell's training rows,
  featurized as the run will: a multiple-choice example is all its choices, a pair item its
  query, document and hard negative), plus the masked-LM batch when ``mlm_aux``, plus the dev
  evaluations and the model load;
* evaluation: every text each retrieval task embeds (its quick subset, if any; tokens from a
  seeded sample of up to 2,000 texts per task, times the count), plus the model load, plus
  the searches it runs for every evaluated layer (:meth:`RetrievalTask.searches
  <xstilts.tasks.base.RetrievalTask.searches>`: BUCC's margin mining both ways, Tatoeba's
  top-1 both ways, LAReQA's full ranking of its pool). Each kind and size of search is timed
  here when the estimate is made, through the task's own search function on random unit
  vectors of the model's width (up to 1,024 queries against the full-size corpus, scaled by
  the number of queries; not cached: a search's speed does not depend on the model). With
  all 13 or 25 layers, or full-size BUCC and LAReQA, search can take as long as encoding,
  and on a GPU far longer (it runs on the CPU).

Cells already finished (a trained run with its metrics, evaluations in the results store) count
only what is left. What it leaves out: threshold tuning and scoring (a linear pass over the
candidates), featurization of span tasks, the bootstrap and the report, and the first-time
conversion of a builtin model.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xstilts.embedding.encoder import tokenize_texts
from xstilts.experiment.grid import Cell
from xstilts.experiment.runner import eval_key
from xstilts.experiment.spec import ExperimentSpec, check_spec_models
from xstilts.hardware import (
    TORCH_DTYPES,
    available_cpus,
    configure_threads,
    cpu_model,
    resolve_dtype,
)
from xstilts.io import write_json_atomic
from xstilts.models import resolve_model
from xstilts.paths import cache_dir, resolve_data_dir
from xstilts.retrieval.knn import normalize
from xstilts.tasks import check_request
from xstilts.tasks.base import SearchWork
from xstilts.tasks.settings import EvalSettings, TaskRequest
from xstilts.train.config import TrainConfig
from xstilts.train.data import feature_tokens, load_task_data

CALIBRATION_VERSION = 1
SAMPLE_ROWS = 64  # training rows per task whose tokens are counted
SAMPLE_TEXTS = 2000  # evaluation texts per task whose tokens are counted
TRAIN_SHAPE = (16, 64)  # calibration batch: examples x tokens
ENCODE_SHAPE = (64, 64)
SEARCH_SAMPLE = 1024  # queries of a search timed against its full-size corpus


@dataclass(frozen=True)
class Calibration:
    """One model's measured speeds on one machine."""

    train_tokens_per_s: float
    encode_tokens_per_s: float
    load_s: float
    machine: str
    measured_at: str


@dataclass(frozen=True)
class CellEstimate:
    """Predicted seconds of one cell's remaining work."""

    label: str
    train_s: float
    eval_s: float  # encoding, model load and search
    note: str = ""
    search_s: float = 0.0  # of eval_s: the searches of every evaluated layer

    @property
    def total_s(self) -> float:
        return self.train_s + self.eval_s


def machine_id() -> str:
    """What a calibration is valid for: the device (GPU name, or CPU model and cores) and the
    torch version."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"{cpu_model()} x{available_cpus()}"
    return f"{device}; torch {torch.__version__}"


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _precisions(spec: ExperimentSpec, cfg: TrainConfig | None) -> tuple[str, str]:
    """Concrete (training, evaluation) compute dtypes, ``auto`` resolved for this machine."""
    device = _device()
    mp = cfg.mixed_precision if cfg is not None else "auto"
    train = resolve_dtype({"no": "fp32"}.get(mp, mp), device)
    return train, resolve_dtype(spec.evaluation.dtype, device)


def calibration_file(model: str, train_dtype: str, eval_dtype: str) -> Path:
    """Where the calibration of ``model`` at these precisions on this machine is cached."""
    key = json.dumps([CALIBRATION_VERSION, model, train_dtype, eval_dtype, machine_id()])
    return cache_dir() / "calibration" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _timed(fn: Any, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _autocast(dtype: str, device: torch.device) -> Any:
    if dtype == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=TORCH_DTYPES[dtype])


def calibrate(
    model: str, train_dtype: str, eval_dtype: str, *, trust_remote_code: bool = False
) -> Calibration:
    """Measure ``model``'s training and encoding tokens/s here (random ids, fixed shapes; the
    model is loaded fresh and its changed weights discarded)."""
    configure_threads()
    device = _device()
    ref = resolve_model(model, trust_remote_code=trust_remote_code)
    ref.load()  # a builtin is converted on its first load: a one-time cost, not a load's
    t0 = time.perf_counter()
    net = resolve_model(model, trust_remote_code=trust_remote_code).load().model.to(device)
    load_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    vocab = int(net.config.vocab_size)

    def ids(shape: tuple[int, int]) -> dict[str, torch.Tensor]:
        x = torch.randint(5, vocab, shape, generator=gen).to(device)
        return {"input_ids": x, "attention_mask": torch.ones_like(x)}

    enc_batch = ids(ENCODE_SHAPE)

    @torch.inference_mode()
    def encode() -> None:
        net.eval()
        with _autocast(eval_dtype, device):
            net(**enc_batch, output_hidden_states=True)
        _sync(device)

    encode_s = _timed(encode, 3)
    train_batch = ids(TRAIN_SHAPE)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-6)

    def step() -> None:
        net.train()
        with _autocast(train_dtype, device):
            out = net(**train_batch)
        out.last_hidden_state.float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)

    train_s = _timed(step, 3)
    return Calibration(
        train_tokens_per_s=math.prod(TRAIN_SHAPE) / train_s,
        encode_tokens_per_s=math.prod(ENCODE_SHAPE) / encode_s,
        load_s=load_s,
        machine=machine_id(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cached_calibration(
    model: str, train_dtype: str, eval_dtype: str, *, trust_remote_code: bool = False
) -> tuple[Calibration, bool]:
    """The cached calibration, or a new one (cached); and whether it was measured now."""
    path = calibration_file(model, train_dtype, eval_dtype)
    if path.is_file():
        try:
            return Calibration(**json.loads(path.read_text(encoding="utf-8"))), False
        except (ValueError, TypeError):
            pass  # an unreadable cache entry is measured again
    cal = calibrate(model, train_dtype, eval_dtype, trust_remote_code=trust_remote_code)
    write_json_atomic(path, asdict(cal))
    return cal, True


# --------------------------------------------------------------------------- counting work


def steps_of(cfg: TrainConfig, plan: dict[str, Any], tokens_per_example: float) -> int:
    """Optimizer steps of a run: from its budget, else max_steps, else epochs over the planned
    rows (a QA row may make several windows: a lower bound then)."""
    per_step = cfg.batch_size * cfg.grad_accum
    if cfg.budget is not None:
        examples = cfg.budget.target
        if cfg.budget.kind == "tokens":
            examples = cfg.budget.target / max(tokens_per_example, 1.0)
        return math.ceil(examples / per_step)
    if cfg.max_steps:
        return cfg.max_steps
    rows = sum(sum(t["rows"].values()) for t in plan["tasks"].values())
    return math.ceil(cfg.epochs * rows / per_step)


def _item_tokens(feature: dict) -> float:
    """Tokens of one drawn pair of a pair item (query + document + hard negative), averaged
    over the item's languages (which ones a batch reads is the sampler's draw)."""

    def mean(side: dict) -> float:
        return statistics.mean(len(x) for x in side.values()) if side else 0.0

    return mean(feature["query"]) + mean(feature["doc"]) + mean(feature["negative"])


def training_tokens(
    cfg: TrainConfig, plan: dict[str, Any], tokenizer: Any, data_dir: Path
) -> float:
    """Mean tokens per drawn example of a run, over a seeded sample of each task's rows,
    weighted by the tasks' sampling probabilities."""
    sample = _sample_config(cfg)
    means = {}
    for td in load_task_data(sample, tokenizer, data_dir):
        feats = list(td.train)
        per = _item_tokens if td.task.kind == "contrastive" else feature_tokens
        means[td.task.name] = statistics.mean(per(f) for f in feats) if feats else 0.0
    probs = {t: part["probability"] for t, part in plan["tasks"].items()}
    return sum(means[t] * probs.get(t, 1.0 / len(means)) for t in means)


def _sample_config(cfg: TrainConfig) -> TrainConfig:
    """The configuration whose first rows are counted: seed and output fixed, so the seeds of
    one setting share one sample (counted once)."""
    return cfg.model_copy(
        update={"max_examples": SAMPLE_ROWS, "eval_max_examples": 1, "seed": 0, "out": "-"}
    )


def evaluation_tokens(spec: ExperimentSpec, tokenizer: Any) -> dict[str, float]:
    """Tokens every evaluation task embeds for one cell, by evaluation key (tokenized with the
    evaluation's prefix and cut, over a seeded sample of its texts, times their count)."""
    data_dir = resolve_data_dir(spec.data_dir)
    ev = spec.evaluation
    out = {}
    for request in ev.tasks:
        task, langs = check_request(request)
        texts = list(task.texts(data_dir, langs, request.max_sentences))
        sample = random.Random(0).sample(texts, min(len(texts), SAMPLE_TEXTS))
        cut = request.doc_max_length or ev.max_length
        ids, _ = tokenize_texts(tokenizer, sample, ev.prefix or "", cut)
        mean = statistics.mean(len(x) for x in ids) if ids else 0.0
        out[eval_key(request)] = mean * len(texts)
    return out


def time_search(work: SearchWork, dim: int, seed: int = 0) -> float:
    """Seconds ``work`` takes here on random unit vectors of width ``dim``: all its queries
    when there are at most :data:`SEARCH_SAMPLE`, else that many against the full-size corpus,
    scaled by the number of queries (each query is searched on its own, so the cost is linear
    in them; the corpus size is kept, since it is what a query's cost depends on), after a
    warm-up call on a few queries."""
    if work.queries == 0 or work.corpus == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    n = min(work.queries, SEARCH_SAMPLE)
    queries = normalize(rng.standard_normal((n, dim), dtype=np.float32))
    corpus = normalize(rng.standard_normal((work.corpus, dim), dtype=np.float32))
    work.run(queries[:8], corpus)  # warm-up: the first call of a process starts thread pools
    t0 = time.perf_counter()
    work.run(queries, corpus)
    return (time.perf_counter() - t0) * work.queries / n


def task_search_seconds(
    request: TaskRequest,
    settings: EvalSettings,
    data_dir: Path,
    dim: int,
    memo: dict[tuple[str, int, int], float] | None = None,
) -> float | None:
    """Seconds one layer's searches of ``request`` take here for vectors of width ``dim``
    (None: the task declares none). ``memo`` (seconds per query by kind and size) lets equal
    searches be timed once (Tatoeba's languages mostly share one size)."""
    memo = {} if memo is None else memo
    task, langs = check_request(request)
    works = task.searches(data_dir, langs, settings, request.protocol, request.max_sentences)
    if works is None:
        return None
    total = 0.0
    for work in works:
        key = (work.label, min(work.queries, SEARCH_SAMPLE), work.corpus)
        if key not in memo:
            memo[key] = time_search(work, dim) / max(work.queries, 1)
        total += memo[key] * work.queries
    return total


def search_seconds(spec: ExperimentSpec, dim: int) -> tuple[dict[str, float], list[str]]:
    """Seconds one layer's searches take per evaluation key, for vectors of width ``dim``, and
    the keys of tasks that declare no searches (left out of the estimate)."""
    data_dir = resolve_data_dir(spec.data_dir)
    memo: dict[tuple[str, int, int], float] = {}
    out: dict[str, float] = {}
    unknown: list[str] = []
    for request in spec.evaluation.tasks:
        seconds = task_search_seconds(request, spec.evaluation, data_dir, dim, memo)
        if seconds is None:
            unknown.append(eval_key(request))
        else:
            out[eval_key(request)] = seconds
    return out, unknown


def estimate_cells(
    spec: ExperimentSpec,
    cells: list[Cell],
    pending: dict[str, list[str]],
    *,
    trust_remote_code: bool = False,
    status: Any = None,
) -> list[CellEstimate]:
    """Predicted remaining seconds per cell; ``pending``: per cell key, the evaluation task
    keys not yet in the results store (every task for a cell never run)."""
    data_dir = resolve_data_dir(spec.data_dir)
    out: list[CellEstimate] = []
    per_model: dict[str, tuple[Any, dict[str, float], dict[str, float]]] = {}
    per_dim: dict[int, dict[str, float]] = {}
    tokens_per_example: dict[tuple[str, str], float] = {}
    layers = check_spec_models(spec, trust_remote_code=trust_remote_code)  # evaluated, per model
    for cell in cells:
        if cell.model not in per_model:
            ref = resolve_model(cell.model, trust_remote_code=trust_remote_code)
            tok = ref.load_tokenizer()
            dim = int(ref.config.hidden_size)
            if dim not in per_dim:
                per_dim[dim], unknown = search_seconds(spec, dim)
                if unknown and status is not None:
                    status(f"search time not counted for {', '.join(unknown)} (not declared)")
            search = {key: len(layers[cell.model]) * s for key, s in per_dim[dim].items()}
            per_model[cell.model] = (tok, evaluation_tokens(spec, tok), search)
        tok, eval_tokens, search = per_model[cell.model]
        train_dtype, eval_dtype = _precisions(spec, cell.train)
        cal, fresh = cached_calibration(
            cell.model, train_dtype, eval_dtype, trust_remote_code=trust_remote_code
        )
        if fresh and status is not None:
            status(
                f"calibrated {cell.model} ({train_dtype} training, {eval_dtype} encoding): "
                f"{cal.train_tokens_per_s:,.0f} / {cal.encode_tokens_per_s:,.0f} tokens/s"
            )
        todo = pending.get(cell.key, list(eval_tokens))
        eval_s = search_s = 0.0
        if todo:
            tokens = sum(n for name, n in eval_tokens.items() if name in todo)
            search_s = sum(s for name, s in search.items() if name in todo)
            eval_s = cal.load_s + tokens / cal.encode_tokens_per_s + search_s
        train_s, note = 0.0, ""
        cfg = cell.train
        if cfg is not None and not (cfg.out / "metrics.json").is_file():
            assert cell.plan is not None
            key = (_sample_config(cfg).model_dump_json(), json.dumps(cell.plan["tasks"]))
            if key not in tokens_per_example:  # the seeds of a setting: counted once
                tokens_per_example[key] = training_tokens(cfg, cell.plan, tok, data_dir)
            per_example = tokens_per_example[key]
            steps = steps_of(cfg, cell.plan, per_example)
            examples = steps * cfg.batch_size * cfg.grad_accum
            factor = 2.0 if cfg.mlm_aux else 1.0  # the MLM batch: one more forward + backward
            dev_rows = cfg.eval_max_examples or 2000
            n_evals = 1 + (steps // cfg.eval_every if cfg.eval_every else 0)
            train_s = (
                cal.load_s
                + factor * examples * per_example / cal.train_tokens_per_s
                + n_evals * dev_rows * per_example / cal.encode_tokens_per_s
            )
            note = f"{steps} steps x {cfg.batch_size * cfg.grad_accum}, {per_example:.0f} tok/ex"
        elif cfg is not None:
            note = "trained"
        out.append(CellEstimate(cell.label, train_s, eval_s, note, search_s))
    return out
