"""What identifies a training run directory and which encoder in it to evaluate.

A run directory (written by :mod:`xstilts.train`) is marked by :data:`RUN_FILE`; its
``checkpoints.json`` points at named checkpoints (``last`` for resuming, ``best``). Model
resolution (:func:`xstilts.models.resolve_model`) reads these to evaluate a run like any other
model, so they live here, below training: ``xstilts.models`` never imports ``xstilts.train``.
"""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.io import write_json_atomic

RUN_FILE = "xstilts_run.json"  # marks a training run directory
POINTER_FILE = "checkpoints.json"  # name -> checkpoint directory, relative to the run


def write_pointer(run_dir: Path, name: str, target: Path) -> None:
    """Record ``name -> target`` (e.g. last/best checkpoint) in ``run_dir/checkpoints.json``."""
    path = run_dir / POINTER_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = {}
    doc[name] = str(target.relative_to(run_dir))
    write_json_atomic(path, doc)


def read_pointer(run_dir: Path, name: str) -> Path | None:
    """The checkpoint directory recorded under ``name``, if it exists."""
    try:
        doc = json.loads((run_dir / POINTER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rel = doc.get(name)
    return run_dir / rel if rel and (run_dir / rel).is_dir() else None


def run_encoder_dir(run_dir: Path) -> Path | None:
    """The encoder to evaluate for a run directory: the best checkpoint, else the last one."""
    for name in ("best", "last"):
        ckpt = read_pointer(run_dir, name)
        if ckpt is not None and (ckpt / "encoder" / "config.json").is_file():
            return ckpt / "encoder"
    return None
