"""Training checkpoints: written atomically, read safely, enough to resume bit-for-bit.

Layout of one checkpoint directory::

    encoder/              a regular Hugging Face model directory (+ tokenizer), safetensors
    heads.safetensors     task heads (and the MLM head when used)
    heads.json            head specs and label names
    trainer_state.pt      optimizer, LR scheduler and torch RNG states (tensors only;
                          read with ``torch.load(weights_only=True)``); step checkpoints
                          only: ``best`` and ``final`` keep weights alone
    trainer_state.json    step, sampler state, numpy RNG state, metrics so far

A checkpoint is assembled in a hidden temporary directory and renamed into place, so a kill
at any moment leaves the previous checkpoint intact and never a half-written one. Which
checkpoint is ``last`` or ``best`` is recorded by :mod:`xstilts.models.runs` (the run directory
is read there too, to evaluate a run as a model).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from xstilts.errors import XstiltsError
from xstilts.train.heads import MultiTaskModel

STATE_VERSION = 1


def save_checkpoint(
    directory: Path,
    model: MultiTaskModel,
    tokenizer: Any,
    head_meta: dict[str, Any],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint to ``directory`` atomically (replacing an older one there)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.encoder.save_pretrained(tmp / "encoder", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "encoder")
        save_file(model.head_state_dict(), str(tmp / "heads.safetensors"))
        (tmp / "heads.json").write_text(json.dumps(head_meta, indent=2), encoding="utf-8")
        if optimizer is not None:
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            }
            torch.save(state, tmp / "trainer_state.pt")
        if trainer_state is not None:
            doc = {"version": STATE_VERSION, **trainer_state}
            (tmp / "trainer_state.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load_checkpoint(
    directory: Path,
    model: MultiTaskModel,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> dict[str, Any]:
    """Restore weights (and optimizer/scheduler/RNG when given); return the trainer state."""
    directory = Path(directory)
    if not (directory / "trainer_state.json").is_file():
        raise XstiltsError(f"{directory}: not a complete training checkpoint")
    weights: dict[str, torch.Tensor] = {}
    for f in sorted((directory / "encoder").glob("*.safetensors")):
        weights.update(load_file(str(f)))
    model.encoder.load_state_dict(weights)
    model.load_head_state_dict(load_file(str(directory / "heads.safetensors")))
    doc = json.loads((directory / "trainer_state.json").read_text(encoding="utf-8"))
    if optimizer is not None and (directory / "trainer_state.pt").is_file():
        state = torch.load(directory / "trainer_state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    return doc
