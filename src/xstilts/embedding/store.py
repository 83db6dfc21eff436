"""Stored embeddings: one on-disk format, one identity, used by the cache and by ``embed``.

A **store** is a folder holding ``manifest.json`` and one ``layerNN.npy`` per hidden state
(plain ``.npy``: ``np.load(path, mmap_mode="r")`` works). The manifest records the store's
:class:`Identity` (everything that determines the vectors), the vector width, and per layer its
file and SHA-256, so a file that is missing, truncated or altered is detected when read.

The **identity** is the model's content key (weights and tokenizer hashes, not paths), a digest
of the texts (:func:`texts_digest`: order-sensitive, one BLAKE2b per text, so a streamed file
and an in-memory list of the same texts get the same digest), and every encoding setting that
changes the numbers (pooling, prefix, effective maximum length, compute dtype, device type,
stored dtype). Batching is not part of it: it changes speed, not the vectors (beyond float
rounding).

The **embedding cache** (:class:`EmbeddingCache`) is a content-addressed folder of stores,
``<cache>/embeddings/<key[:2]>/<key>/``, keyed by the identity's hash: evaluating the same model
on the same data again costs only the search. ``xstilts embed`` writes a store of the same
format into ``--out`` (streamed chunk by chunk, see :mod:`xstilts.embedding.stream`).
Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.errors import DataError, UsageError, XstiltsError
from xstilts.hashing import sha256_file
from xstilts.io import atomic_path, write_json_atomic
from xstilts.paths import cache_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
TEXT_HASH_BYTES = 16


def text_hash(text: str) -> bytes:
    """BLAKE2b-128 of a text's UTF-8 bytes (what :class:`xstilts.embedding.lines.LineIndex`
    computes for every line of a file while scanning it)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=TEXT_HASH_BYTES).digest()


def hashes_digest(hashes: Iterable[bytes], n: int) -> str:
    """Digest of an ordered sequence of per-text hashes (and their count)."""
    h = hashlib.sha256(n.to_bytes(8, "little"))
    for item in hashes:
        h.update(item)
    return h.hexdigest()


def texts_digest(texts: Sequence[str]) -> str:
    """Order-sensitive digest of a list of texts; equal for the same texts however held."""
    return hashes_digest((text_hash(t) for t in texts), len(texts))


@dataclass(frozen=True)
class Identity:
    """Everything that determines a store's vectors (see the module docstring)."""

    model: str
    texts: str
    rows: int
    pooling: str
    prefix: str
    max_length: int
    dtype: str
    device_type: str
    store_dtype: str = "float32"

    def key(self) -> str:
        """The content address of a store with this identity."""
        doc = {"format": FORMAT_VERSION, **asdict(self)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def difference(self, other: Identity) -> tuple[str, Any, Any] | None:
        """The first field that differs, as ``(name, mine, theirs)``, or None."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                return f.name, mine, theirs
        return None

    @classmethod
    def from_dict(cls, doc: Any) -> Identity:
        """Read an identity from a manifest (a damaged one raises :class:`StoreCorrupt`)."""
        try:
            return cls(**{f.name: doc[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise StoreCorrupt(f"manifest identity is incomplete ({exc})") from None


class StoreCorrupt(Exception):
    """A store that cannot be read back as recorded (a file missing, truncated or altered)."""


def layer_file(layer: int) -> str:
    """File name of one hidden state's vectors."""
    return f"layer{layer:02d}.npy"


class EmbeddingStore:
    """One store folder: its manifest, and per-layer arrays checked against their SHA-256."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, None when there is none; a damaged one raises :class:`StoreCorrupt`."""
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreCorrupt(f"{self.manifest_path}: unreadable ({exc})") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise StoreCorrupt(f"{self.manifest_path}: not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("layers"), dict):
            raise StoreCorrupt(f"{self.manifest_path}: has the wrong structure")
        return doc

    def identity(self) -> Identity | None:
        """The identity recorded in the manifest (None without a manifest)."""
        doc = self.manifest()
        return None if doc is None else Identity.from_dict(doc.get("identity"))

    def layers(self) -> list[int]:
        """Hidden states stored (finished) in this store."""
        doc = self.manifest()
        return sorted(int(k) for k in doc["layers"]) if doc else []

    def layer_path(self, layer: int) -> Path:
        return self.directory / layer_file(layer)

    def read(self, layers: Sequence[int], *, verify: bool = True) -> np.ndarray:
        """The ``(len(layers), rows, dim)`` vectors of stored layers, checked against the
        manifest (their SHA-256 when ``verify``); raises :class:`StoreCorrupt` otherwise."""
        return np.stack([self.layer(layer, verify=verify, mmap=False) for layer in layers])

    def layer(self, layer: int, *, verify: bool = False, mmap: bool = True) -> np.ndarray:
        """One stored layer, memory-mapped by default (large stores from ``embed``)."""
        doc = self.manifest()
        if doc is None:
            raise StoreCorrupt(f"{self.manifest_path}: missing")
        try:
            entry = doc["layers"][str(layer)]
            name, digest = str(entry["file"]), str(entry["sha256"])
            shape = (int(doc["identity"]["rows"]), int(doc["dim"]))
        except (KeyError, TypeError, ValueError):
            raise StoreCorrupt(f"{self.manifest_path}: no usable entry for layer {layer}") from None
        path = self.directory / name
        try:
            if verify and sha256_file(path) != digest:
                raise StoreCorrupt(f"{path.name}: content differs from its recorded SHA-256")
            arr = np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise StoreCorrupt(f"{path.name}: unreadable ({exc})") from None
        if arr.shape != shape:
            raise StoreCorrupt(f"{path.name}: shape {arr.shape}, recorded {shape}")
        return arr

    def write(
        self,
        identity: Identity,
        layers: Sequence[int],
        arrays: np.ndarray,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store ``arrays`` (``(len(layers), rows, dim)``), merging with the layers already
        stored under the same identity (another identity's files are replaced)."""
        rows, dim = int(arrays.shape[1]), int(arrays.shape[2])
        if rows != identity.rows:
            raise ValueError(f"{rows} rows for an identity of {identity.rows}")
        try:
            old = self.manifest()
            same = old is not None and Identity.from_dict(old.get("identity")) == identity
        except StoreCorrupt:
            old, same = None, False
        entries = dict(old["layers"]) if same and old and old.get("dim") == dim else {}
        for j, layer in enumerate(layers):
            entries[str(layer)] = self._write_layer(layer, arrays[j], identity.store_dtype)
        self.write_manifest(identity, dim, entries, meta or {})

    def _write_layer(self, layer: int, values: np.ndarray, dtype: str) -> dict[str, str]:
        path = self.layer_path(layer)
        with atomic_path(path) as tmp:
            with tmp.open("wb") as f:
                np.save(f, np.ascontiguousarray(values, dtype=dtype))
            digest = sha256_file(tmp)
        return {"file": path.name, "sha256": digest}

    def write_manifest(
        self, identity: Identity, dim: int, entries: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        """Write the manifest (last, so a store is only complete once its files are)."""
        doc = {
            "format": FORMAT_VERSION,
            "identity": asdict(identity),
            "key": identity.key(),
            "dim": dim,
            "layers": entries,
            "meta": meta,
        }
        write_json_atomic(self.manifest_path, doc)


@dataclass(frozen=True)
class CacheInfo:
    """Summary for ``xstilts cache info``."""

    path: Path
    entries: int
    files: int
    bytes: int


class EmbeddingCache:
    """A content-addressed folder of :class:`EmbeddingStore`\\ s (see the module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / "embeddings"

    def store(self, identity: Identity) -> EmbeddingStore:
        """The store where vectors of this identity live (whether or not they exist yet)."""
        key = identity.key()
        return EmbeddingStore(self.root / key[:2] / key)

    def get(self, identity: Identity, layers: Sequence[int]) -> np.ndarray | None:
        """The stored ``(len(layers), rows, dim)`` vectors, or None on a miss.

        A damaged entry (a file missing, truncated or altered, a manifest of the wrong shape,
        another identity in the folder) is dropped with a warning and reads as a miss, so the
        vectors are recomputed.
        """
        store = self.store(identity)
        try:
            if store.identity() != identity or not set(layers) <= set(store.layers()):
                return None
            return store.read(layers)
        except StoreCorrupt as exc:
            log.warning(
                "embedding cache entry %s is corrupt (%s); recomputing",
                store.directory.name[:12],
                exc,
            )
            self.drop(identity)
            return None

    def put(
        self,
        identity: Identity,
        layers: Sequence[int],
        arrays: np.ndarray,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store vectors, merging with the layers already there.

        Caching is an optimisation: when the entry cannot be written (the cache was cleared
        meanwhile by another process, the disk is full) the computed vectors are still used
        by the caller, with a warning, never lost to an error.
        """
        try:
            self.store(identity).write(identity, layers, arrays, meta)
        except (OSError, XstiltsError) as exc:
            log.warning("embedding cache entry %s not written (%s)", identity.key()[:12], exc)

    def drop(self, identity: Identity) -> None:
        """Remove one entry."""
        shutil.rmtree(self.store(identity).directory, ignore_errors=True)

    def info(self) -> CacheInfo:
        """How many entries and bytes the cache holds."""
        entries = files = size = 0
        if self.root.is_dir():
            for manifest in self.root.glob(f"*/*/{MANIFEST}"):
                entries += 1
                for p in manifest.parent.iterdir():
                    files += 1
                    size += p.stat().st_size
        return CacheInfo(self.root, entries, files, size)

    def clear(self) -> CacheInfo:
        """Delete every entry; returns what was there."""
        before = self.info()
        shutil.rmtree(self.root, ignore_errors=True)
        return before


def open_store(directory: str | Path) -> EmbeddingStore:
    """A finished store to read from (``xstilts embed`` output), or a one-line error."""
    store = EmbeddingStore(directory)
    try:
        doc = store.manifest()
    except StoreCorrupt as exc:
        raise DataError(str(exc)) from None
    if doc is None:
        raise DataError(f"{store.directory}: no {MANIFEST}; not an embedding store")
    if not doc.get("complete", True):
        raise DataError(f"{store.directory}: embedding run is not complete; rerun it to resume")
    return store


def load_layer(directory: str | Path, layer: int) -> np.ndarray:
    """One finished layer of a store, memory-mapped; a clear error when it is not there."""
    store = open_store(directory)
    if layer not in store.layers():
        raise UsageError(f"{directory}: layer {layer} not embedded (has {store.layers()})")
    try:
        return store.layer(layer)
    except StoreCorrupt as exc:
        raise DataError(f"{directory}: {exc}") from None
