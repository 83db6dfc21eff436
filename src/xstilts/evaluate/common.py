"""What every task evaluator shares: settings, the encode entry point, timing, progress."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xstilts.encode import Encoder
from xstilts.io import atomic_path
from xstilts.search import Backend


class ProgressHook(Protocol):
    """Receives encoding progress (the CLI shows it with rich; tests pass nothing)."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int) -> None: ...


@dataclass
class EvalConfig:
    """Protocol settings of one evaluation; recorded verbatim in the results file."""

    task: str
    langs: list[str]
    layers: list[int] | None = None  # None: every hidden state
    pooling: str = "mean"
    prefix: str = ""
    batch_size: int = 32
    max_length: int = 512
    search_backend: Backend = "auto"
    k: int = 4
    margin: str = "ratio"
    tune_split: str | None = None
    save_embeddings: Path | None = None
    save_predictions: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timer:
    """Seconds spent per stage, summed over languages."""

    encode_s: float = 0.0
    search_s: float = 0.0
    data_s: float = 0.0


@dataclass
class EvalContext:
    """One evaluation in progress: the encoder, settings, resolved layers, timers, progress."""

    encoder: Encoder
    cfg: EvalConfig
    data_dir: Path
    layers: list[int]
    progress: ProgressHook | None = None
    timer: Timer = field(default_factory=Timer)

    def start_progress(self, total: int, description: str) -> None:
        """Announce how many texts will be encoded in total."""
        if self.progress is not None:
            self.progress.start(total, description)

    def encode(self, sides: Sequence[Sequence[str]], prefix: str | None = None) -> list[np.ndarray]:
        """Encode several text lists in one call (fuller batches); one array per list.

        Each array has shape ``(len(self.layers), len(side), hidden)``. ``prefix`` defaults to
        the configured one (tasks with asymmetric query/document prefixes pass their own).
        """
        texts = [t for side in sides for t in side]
        t0 = time.perf_counter()
        emb, _ = self.encoder.encode(
            texts,
            layers=self.layers,
            pooling=self.cfg.pooling,
            prefix=self.cfg.prefix if prefix is None else prefix,
            batch_size=self.cfg.batch_size,
            progress=self.progress.advance if self.progress is not None else None,
        )
        self.timer.encode_s += time.perf_counter() - t0
        out, start = [], 0
        for side in sides:
            out.append(emb[:, start : start + len(side)])
            start += len(side)
        return out

    @contextlib.contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        """Add the time spent in the block to ``timer.<stage>_s``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            name = f"{stage}_s"
            setattr(self.timer, name, getattr(self.timer, name) + time.perf_counter() - t0)

    def save_embeddings(self, stem: str, emb: np.ndarray) -> None:
        """With ``--save-embeddings``: one ``<stem>.layerNN.npy`` per layer (raw pooled, fp32)."""
        directory = self.cfg.save_embeddings
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        for j, layer in enumerate(self.layers):
            path = directory / f"{stem}.layer{layer:02d}.npy"
            with atomic_path(path) as tmp, tmp.open("wb") as f:
                np.save(f, emb[j])
