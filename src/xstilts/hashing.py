"""Content hashes of files, cached by (path, size, mtime) so repeated runs don't re-read GBs.

A results file records the hash of the model's weights, so two numbers can be traced to the
same weights even when the model was loaded from different paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from xstilts.io import write_json_atomic
from xstilts.paths import cache_dir

_CHUNK = 1 << 22


def _index_path() -> Path:
    return cache_dir() / "file-hashes.json"


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (no caching)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path, *, use_cache: bool = True) -> str:
    """SHA-256 hex digest of a file, remembered per (resolved path, size, mtime_ns).

    For model weights, hashed once per version of the file; content checks of files that may
    have been altered since (cache entries, downloads) use :func:`sha256_file`.
    """
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    index: dict[str, str] = {}
    if use_cache:
        try:
            index = json.loads(_index_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            index = {}
        if key in index:
            return index[key]
    digest = sha256_file(path)
    if use_cache:
        index[key] = digest
        # a read-only cache only costs re-hashing next time
        with contextlib.suppress(OSError):
            write_json_atomic(_index_path(), index)
    return digest


def files_sha256(paths: list[Path]) -> str:
    """One digest for a set of files: hash of sorted ``name:sha256`` lines."""
    lines = sorted(f"{p.name}:{file_sha256(p)}" for p in paths)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
