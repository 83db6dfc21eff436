"""What every task evaluator shares: settings, the encode entry point, timing, progress.

:meth:`EvalContext.encode` is the single choke point every task encodes through: the embedding
cache, batching settings, progress and timing apply there and nowhere else.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xstilts.embedding.encoder import Encoder, EncodeStats, LazyEncoder
from xstilts.embedding.store import EmbeddingCache, Identity, texts_digest
from xstilts.io import atomic_path
from xstilts.tasks.settings import EvalSettings


class ProgressHook(Protocol):
    """Receives encoding progress (the CLI shows it with rich; tests pass nothing)."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int) -> None: ...


@dataclass
class Timer:
    """Seconds spent per stage, summed over languages."""

    encode_s: float = 0.0
    search_s: float = 0.0
    data_s: float = 0.0


@dataclass
class EncodingTotals:
    """Encoding work summed over one evaluation (reported in the results file)."""

    sentences: int = 0
    cached_sentences: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def add(self, stats: EncodeStats) -> None:
        """Count one encoder call."""
        self.sentences += stats.n_texts
        self.tokens += stats.n_tokens
        self.padded_tokens += stats.n_padded
        self.truncated += stats.n_truncated
        self.seconds += stats.seconds

    def report(self) -> dict[str, Any]:
        """JSON-ready summary: throughput, padding ratio, cache hits."""
        return {
            "sentences_encoded": self.sentences,
            "sentences_from_cache": self.cached_sentences,
            "tokens": self.tokens,
            "padding_ratio": round(1 - self.tokens / self.padded_tokens, 4)
            if self.padded_tokens
            else 0.0,
            "truncated": self.truncated,
            "sentences_per_s": round(self.sentences / self.seconds, 1) if self.seconds else None,
        }


@dataclass
class Outputs:
    """Optional files an evaluation writes besides its results document."""

    save_embeddings: Path | None = None  # one .npy per language, side and layer
    save_predictions: Path | None = None  # BUCC: mined test pairs above the threshold


@dataclass
class EvalContext:
    """One evaluation in progress: the encoder, settings, languages, resolved layers, timers,
    progress, and the per-sentence outcomes recorded so far."""

    encoder: Encoder | LazyEncoder
    settings: EvalSettings
    langs: list[str]
    data_dir: Path
    layers: list[int]
    protocol: str = "xtreme"
    max_sentences: int | None = None  # a quick subset (see the task's ``subset``)
    doc_max_length: int | None = None  # tokens kept of document-side texts (None: max_length)
    outputs: Outputs = field(default_factory=Outputs)
    progress: ProgressHook | None = None
    cache: EmbeddingCache | None = None
    model_key: str | None = None  # content hash of weights + tokenizer; None disables caching
    timer: Timer = field(default_factory=Timer)
    totals: EncodingTotals = field(default_factory=EncodingTotals)
    items: list[dict[str, Any]] = field(default_factory=list)

    def add_items(
        self,
        task: str,
        lang: str,
        layer: int,
        kind: str,
        values: np.ndarray,
        *,
        direction: str | None = None,
        protocol: str = "xtreme",
        split: str = "test",
    ) -> None:
        """Record per-sentence outcomes behind a metric (for paired bootstrap CIs).

        Same key columns as the metric rows they explain; ``kind`` says what the values are
        (``correct`` per query, ``ap@20`` per question, BUCC ``pred``/``tp``/``gold`` counts
        per source sentence).
        """
        self.items.append(
            {
                "task": task,
                "lang": lang,
                "layer": int(layer),
                "direction": direction,
                "protocol": protocol,
                "split": split,
                "kind": kind,
                "values": np.asarray(values),
            }
        )

    def start_progress(self, total: int, description: str) -> None:
        """Announce how many texts will be encoded in total."""
        if self.progress is not None:
            self.progress.start(total, description)

    def _advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(n)

    def encode(
        self,
        sides: Sequence[Sequence[str]],
        prefix: str | None = None,
        max_length: int | None = None,
    ) -> list[np.ndarray]:
        """Encode several text lists; one array per list, ``(len(self.layers), len(side), hidden)``.

        ``prefix`` defaults to the configured one (tasks with asymmetric query/document
        prefixes pass their own). Each list is looked up in the embedding cache on its own (so
        protocols that group sentences differently share entries); the lists not found are
        encoded together in one call, for fuller batches.
        """
        prefix = self.settings.prefix if prefix is None else prefix
        limit = self.encoder.limit(max_length)
        t0 = time.perf_counter()
        found: list[np.ndarray | None] = [None] * len(sides)
        ids: list[Identity | None] = [None] * len(sides)
        if self.cache is not None and self.model_key is not None:
            for i, side in enumerate(sides):
                if side:
                    ids[i] = self.identity(side, prefix, limit)
                    found[i] = self.cache.get(ids[i], self.layers)
                    if found[i] is not None:
                        self.totals.cached_sentences += len(side)
                        self._advance(len(side))
        missing = [i for i, f in enumerate(found) if f is None]
        texts = [t for i in missing for t in sides[i]]
        if texts:
            emb, stats = self.encoder.encode(
                texts,
                layers=self.layers,
                pooling=self.settings.pooling,
                prefix=prefix,
                batch_size=self.settings.batch_size,
                max_tokens_per_batch=self.settings.token_bound,
                progress=self._advance,
                max_length=limit,
            )
            self.totals.add(stats)
            start = 0
            for i in missing:
                found[i] = emb[:, start : start + len(sides[i])]
                start += len(sides[i])
                identity = ids[i]
                if identity is not None and self.cache is not None:
                    self.cache.put(identity, self.layers, found[i])
        hidden = next((f.shape[2] for f in found if f is not None and f.size), 0)
        self.timer.encode_s += time.perf_counter() - t0
        return [
            f if f is not None else np.empty((len(self.layers), 0, hidden), np.float32)
            for f in found
        ]

    def identity(self, texts: Sequence[str], prefix: str, max_length: int) -> Identity:
        """The store identity of ``texts`` embedded with ``prefix`` and cut to
        ``max_length`` tokens under these settings."""
        assert self.model_key is not None
        return Identity(
            model=self.model_key,
            texts=texts_digest(texts),
            rows=len(texts),
            pooling=self.settings.pooling,
            prefix=prefix,
            max_length=max_length,
            dtype=self.encoder.dtype,
            device_type=self.encoder.device.type,
        )

    def encode_roles(
        self, queries: Sequence[Sequence[str]], docs: Sequence[Sequence[str]]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Encode query-side lists with the query prefix and document-side lists with the
        document prefix (and the document-side length limit); one call (fuller batches) when
        the two sides are encoded alike."""
        qp, dp = self.settings.role_prefixes()
        doc_limit = None
        if self.doc_max_length is not None and self.encoder.limit(self.doc_max_length) < (
            self.encoder.max_length
        ):
            doc_limit = self.doc_max_length
        if qp == dp and doc_limit is None:
            out = self.encode([*queries, *docs], prefix=qp)
            return out[: len(queries)], out[len(queries) :]
        return self.encode(queries, prefix=qp), self.encode(docs, prefix=dp, max_length=doc_limit)

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
        directory = self.outputs.save_embeddings
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        for j, layer in enumerate(self.layers):
            path = directory / f"{stem}.layer{layer:02d}.npy"
            with atomic_path(path) as tmp, tmp.open("wb") as f:
                np.save(f, emb[j])
