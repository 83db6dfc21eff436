"""Rehearse an experiment spec on this machine and predict the full run's wall time and memory.

A spec for XLM-R (or any model not on this machine) cannot be run offline, but its shapes,
memory and speed can: the spec's models are replaced by a stand-in of the same architecture
(``builtin:random-xlmr-base`` / ``-large``: the hub's config with random weights and the real
tokenizer), one trained setting runs a few optimizer steps with the spec's own training options
on the real offline data, and the evaluation encodes a sample of the spec's own evaluation
texts with its evaluation options. From the measured seconds per optimizer step and tokens
encoded per second, and from the spec's grid (cells, steps per cell from its budget,
evaluation tokens per cell counted with the real tokenizer), the script prints the predicted
wall time and the peak memory of the whole run, on the machine it runs on.

What it assumes (printed with the prediction): every setting's optimizer step costs what the
rehearsed setting's does (use ``--setting`` to rehearse the most expensive one); encoding speed
scales with real tokens; evaluation tasks whose data is not on this machine are left out of the
count (named). Usage:
``python benchmarks/rehearse_spec.py configs/study-xlmr.yaml`` (hub models that are not on this
machine are rehearsed as ``builtin:random-xlmr-base`` / ``-large``, by their names).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _common import header
from xstilts.embedding.encoder import LazyEncoder
from xstilts.errors import XstiltsError
from xstilts.experiment.estimate import steps_of
from xstilts.experiment.grid import Cell, expand_grid
from xstilts.experiment.spec import ExperimentSpec, load_spec
from xstilts.models import resolve_model
from xstilts.paths import resolve_data_dir
from xstilts.tasks import check_request
from xstilts.train.config import TrainConfig
from xstilts.train.loop import train


def peak_memory_gb() -> float:
    """Peak memory of this process so far: CUDA allocations on a GPU, else the resident set."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rehearse_training(cell: Cell, steps: int) -> dict[str, Any]:
    """Run ``steps`` optimizer steps of the cell's configuration; seconds per step (median
    after the first two), tokens per example, peak memory."""
    assert cell.train is not None
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg: TrainConfig = cell.train.model_copy(
            update={
                "out": Path(tmp) / "run",
                "max_steps": steps,
                "budget": None,
                "log_every": 1,
                "eval_every": None,
                "save_every": 10**9,
                "eval_max_examples": 8,
            }
        )
        t0 = time.perf_counter()
        result = train(cfg, on_step=lambda _info: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
    gaps = [b - a for a, b in itertools.pairwise(stamps)][1:]
    record = result.record
    return {
        "s_per_step": statistics.median(gaps) if gaps else total / steps,
        "setup_s": total - sum(gaps),
        "tokens_per_example": record["tokens"] / max(record["examples"], 1),
        "peak_gb": peak_memory_gb(),
    }


def evaluation_texts(
    spec: ExperimentSpec,
) -> tuple[dict[str, tuple[list[str], int | None]], list[str]]:
    """Every text each evaluation embeds (its quick subset, if any), per task, with the length
    its texts are cut to (the document-side cut, if any: LAReQA's questions are shorter than
    it anyway), and the tasks whose data is not on this machine."""
    data_dir = resolve_data_dir(spec.data_dir)
    found, missing = {}, []
    for request in spec.evaluation.tasks:
        task, langs = check_request(request)
        try:
            texts = list(task.texts(data_dir, langs, request.max_sentences))
            found[f"{task.name} ({request.langs_spec() or 'default'})"] = (
                texts,
                request.doc_max_length,
            )
        except XstiltsError as exc:
            missing.append(f"{task.name}: {str(exc)[:80]}")
    return found, missing


def rehearse_encoding(
    spec: ExperimentSpec, model: str, texts: dict[str, tuple[list[str], int | None]], n: int
) -> tuple[float, dict[str, int], float]:
    """Tokens per second encoding a sample of the evaluation texts with the spec's settings,
    and the real tokens of every task's texts."""
    ev = spec.evaluation
    encoder = LazyEncoder(resolve_model(model), dtype=ev.dtype, max_length=ev.max_length)
    sample = [t for batch, _ in texts.values() for t in batch[:: max(1, len(batch) // n)][:n]]
    # every hidden state: the forward pass costs the same whichever are kept
    encoder.encode(sample[:32], layers="all", pooling=ev.pooling)  # warm-up
    _, stats = encoder.encode(
        sample, layers="all", pooling=ev.pooling, batch_size=ev.batch_size,
        max_tokens_per_batch=ev.token_bound,
    )  # fmt: skip
    tokens = {
        name: sum(len(ids) for ids in encoder.encoder.tokenize(batch, ev.prefix or "", cut)[0])
        for name, (batch, cut) in texts.items()
    }
    return stats.n_tokens / stats.seconds, tokens, peak_memory_gb()


def stand_ins(real_models: list[str], pairs: list[str]) -> dict[str, str]:
    """The model each of the spec's models is rehearsed with: ``REAL=STAND_IN`` pairs from the
    command line, else the model itself where it resolves on this machine, else the random
    XLM-R of its size (``large`` in the name: the large one)."""
    given = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    bare = [pair for pair in pairs if "=" not in pair]
    out = {}
    for real in real_models:
        if real in given:
            out[real] = given[real]
        elif bare:
            out[real] = bare[0]
        else:
            size = "large" if "large" in real.lower() else "base"
            out[real] = real if _here(real) else f"builtin:random-xlmr-{size}"
    return out


def _here(model: str) -> bool:
    """Whether ``model`` loads without the network: a builtin, a local directory, or a hub id
    in the local hub cache (asking the hub offline would only retry and time out)."""
    if model.startswith("builtin:") or Path(model).exists():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json"), str)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", type=Path)
    ap.add_argument(
        "--model", action="append", default=[],
        help="stand-in: STAND_IN for every model, or REAL=STAND_IN (repeatable); default: the "
        "model itself if it resolves here, else builtin:random-xlmr-base/-large by its name",
    )  # fmt: skip
    ap.add_argument("--setting", default=None, help="trained setting to rehearse")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--sentences", type=int, default=256, help="texts encoded per task")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    mapping = stand_ins(list(spec.models), args.model)
    shown = ", ".join(f"{real} as {alt}" for real, alt in mapping.items())
    header(f"rehearse_spec: {args.spec} ({shown})")
    texts, missing = evaluation_texts(spec)
    total_h, peak = 0.0, 0.0
    for real, alt in mapping.items():
        one = spec.model_copy(update={"models": [alt]})
        cells = expand_grid(one)
        trained = [c for c in cells if c.train is not None]
        chosen = next(c for c in trained if args.setting in (None, c.setting.name))
        what = f"{chosen.setting.name} ({', '.join(chosen.setting.tasks)})"
        print(f"{real}: {len(cells)} cells, {len(trained)} trained; rehearsing {what} with "
              f"{alt} for {args.steps} steps")  # fmt: skip
        tr = rehearse_training(chosen, args.steps)
        steps = sum(steps_of(c.train, c.plan, tr["tokens_per_example"]) for c in trained)
        tok_s, tokens, enc_peak = rehearse_encoding(one, alt, texts, args.sentences)
        total_h += report(real, cells, trained, tr, steps, tok_s, tokens, enc_peak)
        peak = max(peak, tr["peak_gb"], enc_peak)
    for item in missing:
        print(f"not counted (data not on this machine): {item}")
    print(f"predicted for the whole spec ({len(mapping)} model(s)): {total_h:.1f} h on this "
          f"machine; peak memory {peak:.1f} GiB")  # fmt: skip
    print(
        "assumptions: every setting's step costs what the rehearsed one's does; encoding "
        "time scales with real tokens; the real model's weights cost what the stand-in's do"
    )


def report(model, cells, trained, tr, steps, tok_s, tokens, enc_peak) -> float:
    """Print one model's measurements and prediction; return its predicted hours."""
    per_cell = sum(tokens.values())
    train_h = (steps * tr["s_per_step"] + len(trained) * tr["setup_s"]) / 3600
    eval_h = len(cells) * per_cell / tok_s / 3600
    print(f"  training: {tr['s_per_step']:.2f} s per optimizer step (median), setup and final "
          f"evaluation {tr['setup_s']:.0f} s per run, {tr['tokens_per_example']:.0f} tokens per "
          f"example, peak memory {tr['peak_gb']:.1f} GiB")  # fmt: skip
    print(f"  encoding: {tok_s:,.0f} tokens/s; peak memory of the process {enc_peak:.1f} GiB")
    for name, n in tokens.items():
        print(f"    {name}: {n:,} tokens per cell")
    print(f"  predicted for {model}: training {steps:,} steps = {train_h:.1f} h, evaluation "
          f"{per_cell:,} tokens per cell x {len(cells)} cells = {eval_h:.1f} h, total "
          f"{train_h + eval_h:.1f} h")  # fmt: skip
    return train_h + eval_h


if __name__ == "__main__":
    sys.exit(main())
