"""Streaming embeddings: a text file of any size -> one ``.npy`` file per layer, chunk by chunk.

:meth:`xstilts.encode.Encoder.encode` returns every embedding in memory, which stops at one
machine's RAM. :func:`embed_file` instead

* scans the file once, streaming, into a compact line index (byte offsets, a content hash per
  line: about 48 bytes a line) instead of loading the text: UTF-8, ``id<TAB>text`` format and
  duplicate ids are checked there, with file and line in the error;
* encodes fixed-size chunks of rows (length-sorted batching happens inside a chunk, order is
  restored) and writes each chunk atomically to ``chunks/cNNNNNN.npz``: a chunk file that
  exists is finished, so an interrupted run resumes at the first missing chunk;
* finally concatenates the chunks into ``layerNN.npy`` (plain ``.npy``: open with
  ``np.load(path, mmap_mode="r")``), streamed with ordinary writes rather than a writable
  memmap, so peak memory is one chunk whatever the corpus size;
* records a ``manifest.json`` (model content hash, settings, input hash, rows, dim, dtypes,
  chunk size, chunks done). A rerun with different settings stops with one line before
  anything is written.

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
import mmap
import os
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xstilts import defaults
from xstilts.encode import POOLINGS
from xstilts.errors import DataError, UsageError
from xstilts.io import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LINE_FORMATS = ("auto", "text", "id-text")
STORE_DTYPES = ("float32", "float16")
MANIFEST = "manifest.json"
_BOM = b"\xef\xbb\xbf"
# Characters kept per line before tokenizing: a tokenizer handed a multi-megabyte "line" (a
# file without newlines) would need gigabytes; no token is anywhere near this long, so a line
# cut here is still truncated to exactly max_length tokens.
CHARS_PER_TOKEN_CAP = 100


# --------------------------------------------------------------------------------------------
# The line index


@dataclass
class LineIndex:
    """Where every line's id and text are in a file, and a hash of every text.

    ``text_start[i]:line_end[i]`` are the bytes of line ``i``'s text (0-based lines); for
    ``id-text`` files ``line_start[i]:text_start[i] - 1`` are its id.
    """

    path: Path
    fmt: str  # "text" or "id-text"
    line_start: np.ndarray
    text_start: np.ndarray
    line_end: np.ndarray
    text_hash: np.ndarray  # V16 blake2b of each text's bytes
    size: int
    sha256: str
    n_empty: int

    def __len__(self) -> int:
        return len(self.line_end)

    @contextlib.contextmanager
    def _mapped(self):
        with self.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            yield mm

    def read_texts(self, lines: Sequence[int] | np.ndarray, max_chars: int | None = None):
        """Texts of the given 0-based lines (each cut to ``max_chars``) and how many were cut."""
        out: list[str] = []
        cut = 0
        with self._mapped() as mm:
            for i in np.asarray(lines, dtype=np.int64).tolist():
                text = mm[self.text_start[i] : self.line_end[i]].decode("utf-8")
                if max_chars is not None and len(text) > max_chars:
                    text = text[:max_chars]
                    cut += 1
                out.append(text)
        return out, cut

    def read_ids(self, lines: Sequence[int] | np.ndarray) -> list[str]:
        """Ids of the given lines (``id-text``), else their 1-based line numbers as strings."""
        idx = np.asarray(lines, dtype=np.int64)
        if self.fmt != "id-text":
            return [str(i + 1) for i in idx.tolist()]
        with self._mapped() as mm:
            return [
                mm[self.line_start[i] : self.text_start[i] - 1].decode("utf-8")
                for i in idx.tolist()
            ]

    def unique_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(first_line, line_rows)``: the first line of each distinct text, in first-seen
        order, and for every line the row of its text (what
        :func:`xstilts.evaluate.bucc.unique_texts` computes, from hashes instead of strings)."""
        _, first, inverse = np.unique(self.text_hash, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return first[order].astype(np.int64), rank[inverse.reshape(-1)].astype(np.int64)


def scan_lines(path: str | Path, fmt: str = "auto") -> LineIndex:
    """Stream ``path`` once into a :class:`LineIndex`, checking it as it goes.

    ``fmt``: ``text`` (a sentence per line), ``id-text`` (``id<TAB>sentence``, ids unique) or
    ``auto`` (``id-text`` when the first line has a tab). Raises :class:`DataError` with file
    and line for a missing or empty file, invalid UTF-8, a line without an id, a repeated id.
    """
    path = Path(path)
    if fmt not in LINE_FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(LINE_FORMATS)}")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    starts, tstarts, ends = array("q"), array("q"), array("q")
    hashes = bytearray()
    id_hashes = array("Q")
    sha = hashlib.sha256()
    n_empty = pos = 0
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            sha.update(raw)
            start = pos
            pos += len(raw)
            body = raw[:-1] if raw.endswith(b"\n") else raw
            if body.endswith(b"\r"):
                body = body[:-1]
            if lineno == 1 and body.startswith(_BOM):
                body, start = body[3:], start + 3
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: invalid UTF-8 (byte 0x{body[exc.start]:02x} at offset "
                    f"{start + exc.start})"
                ) from None
            if fmt == "auto":
                fmt = "id-text" if b"\t" in body else "text"
            text_start = start
            if fmt == "id-text":
                tab = body.find(b"\t")
                if tab <= 0:
                    shown = body[:60].decode("utf-8")
                    raise DataError(f"{path}:{lineno}: expected 'id<TAB>sentence', got {shown!r}")
                id_hashes.append(
                    int.from_bytes(hashlib.blake2b(body[:tab], digest_size=8).digest())
                )
                body = body[tab + 1 :]
                text_start = start + tab + 1
            n_empty += not body
            starts.append(start)
            tstarts.append(text_start)
            ends.append(text_start + len(body))
            hashes += hashlib.blake2b(body, digest_size=16).digest()
    if not ends:
        raise DataError(f"{path}: file is empty")
    index = LineIndex(
        path,
        "text" if fmt == "auto" else fmt,
        np.frombuffer(starts, dtype=np.int64),
        np.frombuffer(tstarts, dtype=np.int64),
        np.frombuffer(ends, dtype=np.int64),
        np.frombuffer(bytes(hashes), dtype="V16"),
        pos,
        sha.hexdigest(),
        n_empty,
    )
    if id_hashes:
        _check_unique_ids(index, np.frombuffer(id_hashes, dtype=np.uint64))
    return index


def _check_unique_ids(index: LineIndex, id_hashes: np.ndarray) -> None:
    """A repeated id is an error naming both lines (hash equality confirmed on the ids)."""
    order = np.argsort(id_hashes, kind="stable")
    same = np.nonzero(id_hashes[order][1:] == id_hashes[order][:-1])[0]
    for j in same.tolist():
        first, dup = int(order[j]), int(order[j + 1])
        a, b = index.read_ids([first, dup])
        if a == b:
            raise DataError(
                f"{index.path}:{dup + 1}: duplicate id {b!r} (first on line {first + 1})"
            )


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
        import torch
        from accelerate import PartialState

        return PartialState(cpu=not torch.cuda.is_available())
    return SingleProcess()


def process_device(group: ProcessGroup) -> Any:
    """This process's device under ``accelerate`` (``cuda:<local rank>`` or ``cpu``), or None."""
    return getattr(group, "device", None)


# --------------------------------------------------------------------------------------------
# Embedding


@dataclass(frozen=True)
class EmbedSettings:
    """How to embed; everything but batching is part of the output's identity."""

    layers: list[int] | None = None  # None: every hidden state
    pooling: str = "mean"
    prefix: str = ""
    store_dtype: str = "float32"
    chunk_size: int = 10_000
    unique: bool = False
    fmt: str = "auto"
    batch_size: int = defaults.BATCH_SIZE
    max_tokens_per_batch: int | None = defaults.MAX_TOKENS_PER_BATCH

    def __post_init__(self) -> None:
        if self.store_dtype not in STORE_DTYPES:
            raise UsageError(
                f"--store-dtype {self.store_dtype!r}: choose one of {', '.join(STORE_DTYPES)}"
            )
        if self.chunk_size < 1:
            raise UsageError("--chunk-size must be >= 1")
        if self.pooling not in POOLINGS:
            raise UsageError(f"--pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size {self.batch_size}: must be >= 1")
        if self.max_tokens_per_batch is not None and self.max_tokens_per_batch < 0:
            raise UsageError("--max-tokens-per-batch must be >= 0 (0: no token bound)")
        if self.fmt not in LINE_FORMATS:
            raise UsageError(f"--format {self.fmt!r}: choose one of {', '.join(LINE_FORMATS)}")


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
        return list(self.manifest["settings"]["layers"])

    def array(self, layer: int) -> np.ndarray:
        """The ``(rows, dim)`` embeddings of one layer, memory-mapped read-only."""
        return load_layer(self.out_dir, layer)


def layer_path(out_dir: Path, layer: int) -> Path:
    """File of one layer's embeddings (the ``--save-embeddings`` naming, ``layerNN``)."""
    return Path(out_dir) / f"layer{layer:02d}.npy"


def load_layer(out_dir: str | Path, layer: int) -> np.ndarray:
    """A finished layer file, memory-mapped; a clear error when the run is incomplete."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None or not manifest.get("complete"):
        raise DataError(f"{out_dir}: embedding run is not complete; rerun it to resume")
    if layer not in manifest["settings"]["layers"]:
        raise UsageError(
            f"{out_dir}: layer {layer} not embedded (has {manifest['settings']['layers']})"
        )
    return np.load(layer_path(out_dir, layer), mmap_mode="r")


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of an output directory, or None when there is none."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _hidden_size(encoder: Any) -> int:
    ref = getattr(encoder, "ref", None)
    cfg = ref.config if ref is not None else encoder.model.config
    return int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "d_model", 0))


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The fields a resumed run must share with the first one (batching may differ)."""
    s = manifest.get("settings", {})
    return {
        "format_version": manifest.get("format_version"),
        "input.sha256": manifest.get("input", {}).get("sha256"),
        "input.format": manifest.get("input", {}).get("format"),
        "model": manifest.get("model", {}).get("key"),
        **{
            f"settings.{name}": s.get(name)
            for name in (
                "layers",
                "pooling",
                "prefix",
                "max_length",
                "dtype",
                "device_type",
                "store_dtype",
                "chunk_size",
                "unique",
            )
        },
    }


def _check_same(path: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    a, b = _identity(old), _identity(new)
    for name in b:
        if a.get(name) != b[name]:
            raise DataError(
                f"{path}: holds embeddings made with {name}={a.get(name)!r}, this run has "
                f"{b[name]!r}; nothing was changed (use another --out, or delete "
                f"{path.parent} to start over)"
            )


def _chunk_path(out_dir: Path, chunk: int) -> Path:
    return out_dir / "chunks" / f"c{chunk:06d}.npz"


def _done_chunks(out_dir: Path, n_chunks: int) -> set[int]:
    done = set()
    for p in (out_dir / "chunks").glob("c*.npz"):
        with contextlib.suppress(ValueError):
            c = int(p.stem[1:])
            if c < n_chunks:
                done.add(c)
    return done


def _prepare(out_dir: Path, manifest: dict[str, Any], line_rows: np.ndarray | None) -> dict:
    """Rank 0: create or check the output directory; returns the manifest in force."""
    path = out_dir / MANIFEST
    old = read_manifest(out_dir)
    if old is not None and not old.get("complete") and not _done_chunks(out_dir, 1 << 62):
        old = None  # nothing was computed under the old settings: start over with these
    if old is not None:
        _check_same(path, old, manifest)
        for stray in (out_dir / "chunks").glob(".*.tmp"):  # left by a killed process
            stray.unlink(missing_ok=True)
        return old
    ours = (MANIFEST, "chunks", "line_rows.npy")
    if out_dir.exists() and any(p.name not in ours for p in out_dir.iterdir()):
        raise DataError(
            f"{out_dir}: exists, is not empty and has no {MANIFEST}; refusing to write "
            "embeddings into it (use another --out)"
        )
    (out_dir / "chunks").mkdir(parents=True, exist_ok=True)
    if line_rows is not None:
        with atomic_path(out_dir / "line_rows.npy") as tmp, tmp.open("wb") as f:
            np.save(f, line_rows)
    write_json_atomic(path, manifest)
    return manifest


def _encode_chunk(
    encoder: Any,
    index: LineIndex,
    lines: np.ndarray,
    layers: list[int],
    settings: EmbedSettings,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, dict[str, int]]:
    max_chars = encoder.max_length * CHARS_PER_TOKEN_CAP
    texts, clipped = index.read_texts(lines, max_chars=max_chars)
    emb, stats = encoder.encode(
        texts,
        layers=layers,
        pooling=settings.pooling,
        prefix=settings.prefix,
        batch_size=settings.batch_size,
        max_tokens_per_batch=settings.max_tokens_per_batch,
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
    logger = logging.getLogger("xstilts.encode")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _finalize(out_dir: Path, manifest: dict[str, Any], n_chunks: int, rows: int) -> dict:
    """Rank 0: concatenate the chunks into one ``.npy`` per layer, then complete the manifest.

    Plain sequential writes (not a writable memmap) keep dirty pages out of this process's
    memory: peak memory is one chunk.
    """
    layers = manifest["settings"]["layers"]
    dim = manifest["dim"]
    dtype = np.dtype(manifest["settings"]["store_dtype"])
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (rows, dim),
    }
    totals = {"tokens": 0, "padded_tokens": 0, "truncated": 0, "clipped_chars": 0}
    with contextlib.ExitStack() as stack:
        files = []
        for layer in layers:
            tmp = stack.enter_context(atomic_path(layer_path(out_dir, layer)))
            f = stack.enter_context(tmp.open("wb"))
            np.lib.format.write_array_header_1_0(f, header)
            files.append(f)
        written = 0
        for c in range(n_chunks):
            path = _chunk_path(out_dir, c)
            if not path.is_file():
                raise DataError(f"{path}: chunk missing at the merge; rerun to resume")
            with np.load(path) as z:
                emb = z["emb"]
                info = json.loads(str(z["info"]))
            if emb.shape[0] != len(layers) or emb.shape[2] != dim or emb.dtype != dtype:
                raise DataError(f"{path}: chunk has shape {emb.shape} {emb.dtype}; rerun it")
            for j, f in enumerate(files):
                f.write(np.ascontiguousarray(emb[j]).tobytes())
            written += emb.shape[1]
            for key in totals:
                totals[key] += int(info.get(key, 0))
        if written != rows:
            raise DataError(f"{out_dir}: chunks hold {written} rows, expected {rows}; rerun")
    done = {**manifest, "complete": True, "chunks_done": n_chunks, "totals": totals}
    write_json_atomic(out_dir / MANIFEST, done)
    for c in range(n_chunks):
        _chunk_path(out_dir, c).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out_dir / "chunks").rmdir()
    return done


def embed_file(
    path: str | Path,
    encoder: Any,  # xstilts.encode.Encoder or LazyEncoder
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

    ``model`` identifies the encoder in the manifest: ``{"spec": ..., "key": content hash}``
    (the key decides whether a resumed run may continue). ``progress`` has ``start(total,
    description)``/``advance(n)`` (the CLI's rich bar; only rank 0's is shown). ``on_chunk(c)``
    runs after chunk ``c`` is safely on disk (tests interrupt a run there). ``index`` reuses a
    scan already made of ``path``.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    group = group or SingleProcess()
    rank, world = group.process_index, group.num_processes
    index = index or scan_lines(path, settings.fmt)
    if settings.unique:
        row_lines, line_rows = index.unique_rows()
    else:
        row_lines = line_rows = np.arange(len(index), dtype=np.int64)
    layers = encoder.layer_indices(settings.layers)
    rows = len(row_lines)
    n_chunks = math.ceil(rows / settings.chunk_size)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "complete": False,
        "input": {
            "path": str(Path(path).resolve()),
            "bytes": index.size,
            "sha256": index.sha256,
            "format": index.fmt,
            "lines": len(index),
            "empty_lines": index.n_empty,
        },
        "model": model,
        "settings": {
            **asdict(settings),
            "layers": layers,
            "fmt": index.fmt,
            "max_length": encoder.max_length,
            "dtype": encoder.dtype,
            "device_type": encoder.device.type,
        },
        "rows": rows,
        "dim": _hidden_size(encoder),
        "n_chunks": n_chunks,
        "chunks_done": 0,
        "files": {str(layer): layer_path(Path("."), layer).name for layer in layers},
    }
    if settings.unique:
        manifest["files"]["line_rows"] = "line_rows.npy"
    if rank == 0:
        if index.n_empty:
            log.warning("%s: %d empty lines (embedded as empty texts)", path, index.n_empty)
        manifest = _prepare(out_dir, manifest, line_rows if settings.unique else None)
    group.wait_for_everyone()
    if rank != 0:
        existing = read_manifest(out_dir)
        if existing is None:
            raise DataError(f"{out_dir / MANIFEST}: missing after rank 0 prepared it")
        _check_same(out_dir / MANIFEST, existing, manifest)
        manifest = existing
    result = EmbedResult(out_dir, manifest, index, row_lines, line_rows)
    if manifest.get("complete"):
        result.notes.append(f"{out_dir}: already complete, nothing to do")
        return result
    pending = sorted(set(range(n_chunks)) - _done_chunks(out_dir, n_chunks))
    group.wait_for_everyone()  # everyone listed the same done chunks before anyone writes
    mine = pending[rank::world]
    if progress is not None and rank == 0:
        size = settings.chunk_size
        total = sum(min(size, rows - c * size) for c in mine)
        progress.start(total, f"embedding {Path(path).name}")
    advance = progress.advance if progress is not None and rank == 0 else None
    for c in mine:
        lines = row_lines[c * settings.chunk_size : (c + 1) * settings.chunk_size]
        with _quiet_encoder():  # one truncation total at the end, not one warning per chunk
            emb, info = _encode_chunk(encoder, index, lines, layers, settings, advance)
        with atomic_path(_chunk_path(out_dir, c)) as tmp, tmp.open("wb") as f:
            np.savez(f, emb=emb, info=np.array(json.dumps(info)))
        result.chunks_encoded += 1
        if rank == 0:  # progress for people watching the manifest; chunk files are the truth
            manifest["chunks_done"] = len(_done_chunks(out_dir, n_chunks))
            write_json_atomic(out_dir / MANIFEST, manifest)
        if on_chunk is not None:
            on_chunk(c)
    group.wait_for_everyone()
    if rank == 0:
        manifest = _finalize(out_dir, manifest, n_chunks, rows)
        totals = manifest["totals"]
        if totals["truncated"]:
            log.warning(
                "%s: %d of %d texts truncated to %d tokens",
                path,
                totals["truncated"],
                rows,
                encoder.max_length,
            )
    group.wait_for_everyone()
    if rank != 0:
        manifest = read_manifest(out_dir) or manifest
    result.manifest = manifest
    result.seconds = time.perf_counter() - t0
    return result
