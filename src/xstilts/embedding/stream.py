"""Streaming embeddings: a text file of any size -> an embedding store, chunk by chunk.

:meth:`xstilts.embedding.encoder.Encoder.encode` returns every embedding in memory, which
stops at one machine's RAM. :func:`embed_file` instead

* scans the file once, streaming, into a compact line index (:mod:`xstilts.embedding.lines`:
  byte offsets and a content hash per line) instead of loading the text; UTF-8, the
  ``id<TAB>text`` format and duplicate ids are checked there, with file and line in the error;
* encodes fixed-size chunks of rows (length-sorted batching happens inside a chunk, order is
  restored) and writes each chunk atomically to ``chunks/cNNNNNN.npz``: a chunk file that
  exists is finished, so an interrupted run resumes at the first missing chunk;
* finally concatenates the chunks into ``layerNN.npy`` with ordinary streamed writes (peak
  memory is one chunk whatever the corpus size), hashing as it writes, and completes the
  manifest: the output folder is then an :class:`~xstilts.embedding.store.EmbeddingStore`, the
  same format and identity as the embedding cache.

A rerun whose identity (model, texts, encoding settings), layers or chunk size differ from the
run in the folder stops with one line before anything is written; a folder where nothing was
computed yet is simply started over.

Under ``accelerate launch`` (or ``torchrun``) process ``i`` of ``P`` encodes the pending chunks
``i, i + P, ...``; rank 0 merges. Chunk boundaries and the batching inside a chunk do not
depend on ``P``, so P processes write the same files as one (bit-identical on the same device
and thread count; float32 rounding can differ with threads per process).

``unique=True`` embeds each distinct text once (first-seen order), as margin mining needs;
``line_rows.npy`` then maps every input line to its row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xstilts.embedding.lines import LineIndex, scan_lines
from xstilts.embedding.settings import EmbedSettings
from xstilts.embedding.store import (
    EmbeddingStore,
    Identity,
    StoreCorrupt,
    layer_file,
)
from xstilts.errors import DataError
from xstilts.io import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

# Characters kept per line before tokenizing: a tokenizer handed a multi-megabyte "line" (a
# file without newlines) would need gigabytes; no token is anywhere near this long, so a line
# cut here is still truncated to exactly max_length tokens.
CHARS_PER_TOKEN_CAP = 100
LINE_ROWS = "line_rows.npy"


# --------------------------------------------------------------------------------------------
# Processes


class ProcessGroup(Protocol):
    """What embedding needs from ``accelerate.PartialState``."""

    process_index: int
    num_processes: int

    def wait_for_everyone(self) -> None: ...


@dataclass
class SingleProcess:
    """The group of one process (no ``accelerate``/``torch.distributed`` involved)."""

    process_index: int = 0
    num_processes: int = 1

    def wait_for_everyone(self) -> None:
        """Nothing to wait for."""


def process_group() -> ProcessGroup:
    """``accelerate.PartialState()`` when launched as several processes, else one process.

    ``accelerate launch``/``torchrun`` set ``WORLD_SIZE``; only then is the distributed state
    (gloo on CPU, NCCL on GPUs) initialised, so a plain run does not pay for it. Without CUDA
    the state is asked for CPU explicitly: ``PartialState()`` alone would see no GPU and fall
    back to a single non-distributed process in every worker.
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        import torch  # deferred: only a multi-process launch needs the distributed state
        from accelerate import PartialState

        return PartialState(cpu=not torch.cuda.is_available())
    return SingleProcess()


def process_device(group: ProcessGroup) -> Any:
    """This process's device under ``accelerate`` (``cuda:<local rank>`` or ``cpu``), or None."""
    return getattr(group, "device", None)


# --------------------------------------------------------------------------------------------
# The job


@dataclass
class EmbedResult:
    """What :func:`embed_file` produced; arrays are opened memory-mapped on demand."""

    out_dir: Path
    manifest: dict[str, Any]
    index: LineIndex
    row_lines: np.ndarray  # input line (0-based) of each row
    line_rows: np.ndarray  # row of each input line
    chunks_encoded: int = 0  # by this process in this call
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[int]:
        """Hidden-state indices stored."""
        return list(self.manifest["job"]["layers"])

    def array(self, layer: int) -> np.ndarray:
        """The ``(rows, dim)`` embeddings of one layer, memory-mapped read-only."""
        return EmbeddingStore(self.out_dir).layer(layer)


@dataclass(frozen=True)
class _Job:
    """One embedding run: what it computes (identity, layers) and how it is cut in chunks."""

    out_dir: Path
    identity: Identity
    layers: list[int]
    chunk_size: int
    rows: int
    dim: int

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.rows / self.chunk_size)

    def chunk_path(self, chunk: int) -> Path:
        return self.out_dir / "chunks" / f"c{chunk:06d}.npz"

    def done_chunks(self) -> set[int]:
        done = set()
        for p in (self.out_dir / "chunks").glob("c*.npz"):
            with contextlib.suppress(ValueError):
                c = int(p.stem[1:])
                if c < self.n_chunks:
                    done.add(c)
        return done

    def describe(self) -> dict[str, Any]:
        """The manifest's ``job`` section (what a resumed run must share, with the identity)."""
        return {"layers": self.layers, "chunk_size": self.chunk_size, "n_chunks": self.n_chunks}


def _hidden_size(encoder: Any) -> int:
    ref = getattr(encoder, "ref", None)
    cfg = ref.config if ref is not None else encoder.model.config
    return int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "d_model", 0))


def _check_same(path: Path, old: dict[str, Any], job: _Job) -> None:
    """A folder holds one run: refuse to mix another into it (nothing is changed)."""

    def refuse(name: str, theirs: Any, mine: Any) -> None:
        raise DataError(
            f"{path}: holds embeddings made with {name}={theirs!r}, this run has {mine!r}; "
            f"nothing was changed (use another --out, or delete {path.parent} to start over)"
        )

    try:
        diff = job.identity.difference(Identity.from_dict(old.get("identity")))
    except StoreCorrupt as exc:
        raise DataError(f"{path}: {exc}") from None
    if diff is not None:
        name, mine, theirs = diff
        refuse(name, theirs, mine)
    for name, mine in job.describe().items():
        theirs = old.get("job", {}).get(name)
        if theirs != mine:
            refuse(name, theirs, mine)


def _prepare(job: _Job, manifest: dict[str, Any], line_rows: np.ndarray | None) -> dict:
    """Rank 0: create or check the output folder; returns the manifest in force."""
    path = job.out_dir / "manifest.json"
    try:
        old = EmbeddingStore(job.out_dir).manifest()
    except StoreCorrupt as exc:
        raise DataError(str(exc)) from None
    if old is not None and not old.get("complete") and not job.done_chunks():
        old = None  # nothing was computed under the old settings: start over with these
    if old is not None:
        _check_same(path, old, job)
        for stray in (job.out_dir / "chunks").glob(".*.tmp"):  # left by a killed process
            stray.unlink(missing_ok=True)
        return old
    ours = ("manifest.json", "chunks", LINE_ROWS)
    if job.out_dir.exists() and any(p.name not in ours for p in job.out_dir.iterdir()):
        raise DataError(
            f"{job.out_dir}: exists, is not empty and has no manifest.json; refusing to write "
            "embeddings into it (use another --out)"
        )
    (job.out_dir / "chunks").mkdir(parents=True, exist_ok=True)
    if line_rows is not None:
        with atomic_path(job.out_dir / LINE_ROWS) as tmp, tmp.open("wb") as f:
            np.save(f, line_rows)
    write_json_atomic(path, manifest)
    return manifest


def _encode_chunk(
    encoder: Any,
    index: LineIndex,
    lines: np.ndarray,
    job: _Job,
    settings: EmbedSettings,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, dict[str, int]]:
    max_chars = encoder.max_length * CHARS_PER_TOKEN_CAP
    texts, clipped = index.read_texts(lines, max_chars=max_chars)
    emb, stats = encoder.encode(
        texts,
        layers=job.layers,
        pooling=settings.pooling,
        prefix=settings.prefix,
        batch_size=settings.batch_size,
        max_tokens_per_batch=settings.token_bound,
        progress=progress,
    )
    info = {
        "rows": len(texts),
        "tokens": stats.n_tokens,
        "padded_tokens": stats.n_padded,
        "truncated": stats.n_truncated,
        "clipped_chars": clipped,
    }
    return emb.astype(settings.store_dtype, copy=False), info


@contextlib.contextmanager
def _quiet_encoder():
    logger = logging.getLogger("xstilts.embedding.encoder")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _HashingWriter:
    """A file being written whose SHA-256 is computed on the way (no second read)."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.sha.update(data)


def _finalize(job: _Job, manifest: dict[str, Any]) -> dict:
    """Rank 0: concatenate the chunks into one ``.npy`` per layer, then complete the manifest.

    Plain sequential writes (not a writable memmap) keep dirty pages out of this process's
    memory: peak memory is one chunk.
    """
    dtype = np.dtype(job.identity.store_dtype)
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (job.rows, job.dim),
    }
    totals = {"tokens": 0, "padded_tokens": 0, "truncated": 0, "clipped_chars": 0}
    with contextlib.ExitStack() as stack:
        writers = []
        for layer in job.layers:
            tmp = stack.enter_context(atomic_path(job.out_dir / layer_file(layer)))
            w = _HashingWriter(stack.enter_context(tmp.open("wb")))
            np.lib.format.write_array_header_1_0(w, header)
            writers.append(w)
        written = 0
        for c in range(job.n_chunks):
            emb, info = _read_chunk(job, c, dtype)
            for j, w in enumerate(writers):
                w.write(np.ascontiguousarray(emb[j]).tobytes())
            written += emb.shape[1]
            for key in totals:
                totals[key] += int(info.get(key, 0))
        if written != job.rows:
            raise DataError(f"{job.out_dir}: chunks hold {written} rows, expected {job.rows}")
    entries = {
        str(layer): {"file": layer_file(layer), "sha256": w.sha.hexdigest()}
        for layer, w in zip(job.layers, writers, strict=True)
    }
    done = {**manifest, "layers": entries, "complete": True, "totals": totals}
    done["job"] = {**done["job"], "chunks_done": job.n_chunks}
    write_json_atomic(job.out_dir / "manifest.json", done)
    for c in range(job.n_chunks):
        job.chunk_path(c).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (job.out_dir / "chunks").rmdir()
    return done


def _read_chunk(job: _Job, c: int, dtype: np.dtype) -> tuple[np.ndarray, dict[str, Any]]:
    path = job.chunk_path(c)
    if not path.is_file():
        raise DataError(f"{path}: chunk missing at the merge; rerun to resume")
    with np.load(path) as z:
        emb = z["emb"]
        info = json.loads(str(z["info"]))
    if emb.shape[0] != len(job.layers) or emb.shape[2] != job.dim or emb.dtype != dtype:
        raise DataError(f"{path}: chunk has shape {emb.shape} {emb.dtype}; rerun it")
    return emb, info


def _new_manifest(
    job: _Job, index: LineIndex, model: dict[str, Any], settings: EmbedSettings
) -> dict[str, Any]:
    return {
        "format": 2,
        "identity": asdict(job.identity),
        "key": job.identity.key(),
        "dim": job.dim,
        "layers": {},
        "complete": False,
        "job": {**job.describe(), "chunks_done": 0},
        "input": {
            "path": str(Path(index.path).resolve()),
            "bytes": index.size,
            "sha256": index.sha256,
            "format": index.fmt,
            "lines": len(index),
            "empty_lines": index.n_empty,
            "unique": settings.unique,
        },
        "meta": {"model": model, "settings": settings.model_dump(mode="json")},
    }


def _plan(
    path: str | Path, encoder: Any, out_dir: Path, settings: EmbedSettings, model_key: str,
    index: LineIndex | None,
) -> tuple[_Job, LineIndex, np.ndarray, np.ndarray]:  # fmt: skip
    """Scan the input and fix what this run computes."""
    index = index or scan_lines(path, settings.fmt)
    if settings.unique:
        row_lines, line_rows = index.unique_rows()
    else:
        row_lines = line_rows = np.arange(len(index), dtype=np.int64)
    identity = Identity(
        model=model_key,
        texts=index.rows_digest(row_lines),
        rows=len(row_lines),
        pooling=settings.pooling,
        prefix=settings.prefix,
        max_length=encoder.max_length,
        dtype=encoder.dtype,
        device_type=encoder.device.type,
        store_dtype=settings.store_dtype,
    )
    job = _Job(
        out_dir,
        identity,
        encoder.layer_indices(settings.layers),
        settings.chunk_size,
        len(row_lines),
        _hidden_size(encoder),
    )
    return job, index, row_lines, line_rows


def embed_file(
    path: str | Path,
    encoder: Any,  # xstilts.embedding.encoder.Encoder or LazyEncoder
    out_dir: str | Path,
    settings: EmbedSettings,
    *,
    model: dict[str, Any],
    group: ProcessGroup | None = None,
    progress: Any = None,
    on_chunk: Callable[[int], None] | None = None,
    index: LineIndex | None = None,
) -> EmbedResult:
    """Embed every line (or every distinct text) of ``path`` into ``out_dir``, resumably.

    ``model`` identifies the encoder: ``{"spec": ..., "key": content hash}`` (the key is part of
    the store identity). ``progress`` has ``start(total, description)``/``advance(n)`` (the
    CLI's rich bar; only rank 0's is shown). ``on_chunk(c)`` runs after chunk ``c`` is safely
    on disk (tests interrupt a run there). ``index`` reuses a scan already made of ``path``.
    """
    t0 = time.perf_counter()
    group = group or SingleProcess()
    job, index, row_lines, line_rows = _plan(
        path, encoder, Path(out_dir), settings, model["key"], index
    )
    manifest = _new_manifest(job, index, model, settings)
    if group.process_index == 0:
        if index.n_empty:
            log.warning("%s: %d empty lines (embedded as empty texts)", path, index.n_empty)
        manifest = _prepare(job, manifest, line_rows if settings.unique else None)
    group.wait_for_everyone()
    if group.process_index != 0:
        manifest = _follower_manifest(job)
    result = EmbedResult(job.out_dir, manifest, index, row_lines, line_rows)
    if manifest.get("complete"):
        result.notes.append(f"{job.out_dir}: already complete, nothing to do")
        return result
    result.chunks_encoded = _encode_pending(
        job, encoder, index, row_lines, settings, group, manifest, progress, on_chunk,
        Path(path).name,
    )  # fmt: skip
    group.wait_for_everyone()
    if group.process_index == 0:
        manifest = _finalize(job, manifest)
        _warn_truncated(path, manifest, encoder)
    group.wait_for_everyone()
    if group.process_index != 0:
        manifest = EmbeddingStore(job.out_dir).manifest() or manifest
    result.manifest = manifest
    result.seconds = time.perf_counter() - t0
    return result


def _follower_manifest(job: _Job) -> dict[str, Any]:
    """Ranks other than 0: the manifest rank 0 prepared, checked against this run."""
    existing = EmbeddingStore(job.out_dir).manifest()
    if existing is None:
        raise DataError(f"{job.out_dir / 'manifest.json'}: missing after rank 0 prepared it")
    _check_same(job.out_dir / "manifest.json", existing, job)
    return existing


def _encode_pending(
    job: _Job, encoder: Any, index: LineIndex, row_lines: np.ndarray, settings: EmbedSettings,
    group: ProcessGroup, manifest: dict[str, Any], progress: Any,
    on_chunk: Callable[[int], None] | None, name: str,
) -> int:  # fmt: skip
    """This process's share of the missing chunks; returns how many it encoded."""
    rank, world = group.process_index, group.num_processes
    pending = sorted(set(range(job.n_chunks)) - job.done_chunks())
    group.wait_for_everyone()  # everyone listed the same done chunks before anyone writes
    mine = pending[rank::world]
    if progress is not None and rank == 0:
        size = job.chunk_size
        progress.start(sum(min(size, job.rows - c * size) for c in mine), f"embedding {name}")
    advance = progress.advance if progress is not None and rank == 0 else None
    for c in mine:
        lines = row_lines[c * job.chunk_size : (c + 1) * job.chunk_size]
        with _quiet_encoder():  # one truncation total at the end, not one warning per chunk
            emb, info = _encode_chunk(encoder, index, lines, job, settings, advance)
        with atomic_path(job.chunk_path(c)) as tmp, tmp.open("wb") as f:
            np.savez(f, emb=emb, info=np.array(json.dumps(info)))
        if rank == 0:  # progress for people watching the manifest; chunk files are the truth
            manifest["job"]["chunks_done"] = len(job.done_chunks())
            write_json_atomic(job.out_dir / "manifest.json", manifest)
        if on_chunk is not None:
            on_chunk(c)
    return len(mine)


def _warn_truncated(path: str | Path, manifest: dict[str, Any], encoder: Any) -> None:
    totals = manifest["totals"]
    if totals["truncated"]:
        log.warning(
            "%s: %d of %d texts truncated to %d tokens",
            path,
            totals["truncated"],
            manifest["identity"]["rows"],
            encoder.max_length,
        )
