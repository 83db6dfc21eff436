"""On-disk embedding cache: re-evaluating the same model on the same data costs only search.

An entry is keyed by everything that determines the vectors: the model's weights and tokenizer
(content hashes, not paths), the texts, pooling, prefix, maximum length, compute dtype and
device type. Each hidden state is stored in its own ``.npy`` file so a later request for any
subset of the stored layers is served from the same entry. Every file is written atomically
and listed in the entry's ``manifest.json`` with its SHA-256; a file that is missing, truncated
or altered is detected on read, the entry is dropped and the vectors are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.errors import XstiltsError
from xstilts.hashing import sha256_file
from xstilts.io import atomic_path, write_json_atomic
from xstilts.paths import cache_dir

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def texts_sha256(texts: Sequence[str]) -> str:
    """Order-sensitive digest of a list of texts (length-prefixed, so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class _Corrupt(Exception):
    """An entry that cannot be read back as stored (internal: turned into a cache miss)."""


@dataclass(frozen=True)
class CacheInfo:
    """Summary for ``xstilts cache info``."""

    path: Path
    entries: int
    files: int
    bytes: int


class EmbeddingCache:
    """Per-layer embedding arrays on disk, content-addressed."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / "embeddings"

    @staticmethod
    def key(model_key: str, texts: Sequence[str], settings: dict[str, Any]) -> str:
        """The entry key for these texts under these model and encoding settings."""
        doc = {
            "format": FORMAT_VERSION,
            "model": model_key,
            "texts": texts_sha256(texts),
            "n": len(texts),
            "settings": settings,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _manifest(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self._dir(key) / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def get(self, key: str, layers: Sequence[int]) -> np.ndarray | None:
        """The stored ``(len(layers), n, dim)`` array, or None on a miss or a corrupt entry.

        A damaged entry (a file missing, truncated or altered, a manifest of the wrong shape)
        is dropped with a warning and reads as a miss, so the vectors are recomputed.
        """
        manifest = self._manifest(key)
        if manifest is None:
            return None
        try:
            return self._read(key, manifest, layers)
        except _Corrupt as exc:
            log.warning("embedding cache entry %s is corrupt (%s); recomputing", key[:12], exc)
            self.drop(key)
            return None

    def _read(self, key: str, manifest: Any, layers: Sequence[int]) -> np.ndarray | None:
        try:
            stored = manifest["layers"]
            shape = (int(manifest["n"]), int(manifest["dim"]))
            if not all(str(layer) in stored for layer in layers):
                return None
            entries = [
                (stored[str(layer)]["file"], stored[str(layer)]["sha256"]) for layer in layers
            ]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _Corrupt("manifest.json has the wrong structure") from None
        arrays = []
        for name, digest in entries:
            path = self._dir(key) / str(name)
            try:
                arr = np.load(path) if sha256_file(path) == digest else None
            except (OSError, ValueError):
                arr = None
            if arr is None or arr.shape != shape:
                raise _Corrupt(path.name)
            arrays.append(arr)
        return np.stack(arrays)

    def put(self, key: str, layers: Sequence[int], emb: np.ndarray, meta: dict[str, Any]) -> None:
        """Store ``emb`` (``(len(layers), n, dim)``), merging with layers already stored.

        Caching is an optimisation: when the entry cannot be written (the cache was cleared
        meanwhile by another process, the disk is full) the computed vectors are still
        returned to the caller, with a warning, never lost to an error.
        """
        try:
            self._put(key, layers, emb, meta)
        except (OSError, XstiltsError) as exc:
            log.warning("embedding cache entry %s not written (%s)", key[:12], exc)

    def _put(self, key: str, layers: Sequence[int], emb: np.ndarray, meta: dict[str, Any]) -> None:
        directory = self._dir(key)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest(key)
        n, dim = int(emb.shape[1]), int(emb.shape[2])
        valid = isinstance(manifest, dict) and isinstance(manifest.get("layers"), dict)
        if not valid or (manifest.get("n"), manifest.get("dim")) != (n, dim):
            manifest = {"layers": {}}
        stored = dict(manifest["layers"])
        for j, layer in enumerate(layers):
            name = f"layer{layer:03d}.npy"
            with atomic_path(directory / name) as tmp:
                with tmp.open("wb") as f:
                    np.save(f, np.ascontiguousarray(emb[j], dtype=np.float32))
                digest = sha256_file(tmp)
            stored[str(layer)] = {"file": name, "sha256": digest}
        write_json_atomic(
            directory / "manifest.json",
            {"format": FORMAT_VERSION, "n": n, "dim": dim, "layers": stored, "meta": meta},
        )

    def drop(self, key: str) -> None:
        """Remove one entry."""
        shutil.rmtree(self._dir(key), ignore_errors=True)

    def info(self) -> CacheInfo:
        """How many entries and bytes the cache holds."""
        entries = files = size = 0
        if self.root.is_dir():
            for manifest in self.root.glob("*/*/manifest.json"):
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
