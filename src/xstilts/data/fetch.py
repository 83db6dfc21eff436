"""Download retrieval datasets from their public sources, verified by SHA-256 before use.

Files land in the data directory (``--data-dir``, ``$XSTILTS_DATA`` or the user cache) under
the layout the loaders read. Every file is downloaded to a temporary name, checked against the
checksum recorded in ``checksums.json`` and only then renamed into place, so an interrupted or
tampered download is never used. Files already present with the right checksum are skipped,
so a rerun resumes an interrupted fetch. Sources without a recorded checksum (the BUCC 2018
archives) are refused unless ``allow_unverified`` is set; their digest is then printed so it
can be compared and pinned.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from xstilts.errors import DataError
from xstilts.hashing import sha256_file
from xstilts.io import atomic_path


@dataclass(frozen=True)
class Download:
    """One file to fetch: where from, where to (relative to the data dir), expected digest."""

    url: str
    dest: str
    sha256: str | None
    extract: bool = False  # a .tar.bz2 archive unpacked into the data dir


def recorded_checksums() -> dict[str, dict[str, str]]:
    """The digests shipped with xstilts (``{task: {file name: sha256}}``)."""
    text = resources.files("xstilts.data").joinpath("checksums.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _download(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as f:
            shutil.copyfileobj(resp, f)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{url}: download failed ({reason})") from None


def _extract(archive: Path, data_dir: Path) -> None:
    """Unpack a BUCC archive (its members are ``bucc2018/<l>-en/...``) into ``data_dir``."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(data_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: cannot extract ({exc})") from None


def fetch(
    downloads: list[Download],
    data_dir: Path,
    *,
    allow_unverified: bool = False,
    timeout: float = 60.0,
    on_file: Callable[[Download, str], None] | None = None,
) -> list[Path]:
    """Download (or verify already present) ``downloads`` into ``data_dir``.

    Which files a task needs is the task's own knowledge
    (:meth:`xstilts.tasks.RetrievalTask.downloads`); this is the machinery. ``on_file(download,
    status)`` is called per file with status ``"ok"`` (present and verified), ``"downloaded"``
    or ``"unverified"``. Returns the destination paths.
    """
    unpinned = [d for d in downloads if d.sha256 is None]
    if unpinned and not allow_unverified:
        raise DataError(
            f"no recorded checksum for {unpinned[0].url} ({len(unpinned)} file(s)); "
            "rerun with --allow-unverified to download and print their SHA-256"
        )
    out: list[Path] = []
    for d in downloads:
        dest = data_dir / d.dest
        if dest.is_file() and d.sha256 and sha256_file(dest) == d.sha256:
            status = "ok"
        else:
            with atomic_path(dest) as tmp:
                _download(d.url, tmp, timeout)
                digest = sha256_file(tmp)
                if d.sha256 and digest != d.sha256:
                    raise DataError(
                        f"{d.url}: checksum mismatch (got sha256 {digest}, expected {d.sha256}); "
                        "file discarded"
                    )
            status = "downloaded" if d.sha256 else f"unverified sha256={digest}"
        if d.extract:
            _extract(dest, data_dir)
        if on_file is not None:
            on_file(d, status)
        out.append(dest)
    return out
