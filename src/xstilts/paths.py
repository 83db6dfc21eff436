"""Where data, models and caches live.

Data directory precedence: explicit ``--data-dir``, then ``$XSTILTS_DATA``, then the user cache
directory (``xstilts data fetch`` downloads there). The cache directory (converted builtin
models, embedding cache) is ``$XSTILTS_CACHE`` or the platform user cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Root of xstilts' caches (converted builtin models, embeddings, weight hashes)."""
    env = os.environ.get("XSTILTS_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("xstilts"))


def default_data_dir() -> Path:
    """Where `xstilts data fetch` puts datasets when no directory is given."""
    return cache_dir() / "data"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Pick the data directory: argument, then $XSTILTS_DATA, then the default cache location."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("XSTILTS_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_dir()
