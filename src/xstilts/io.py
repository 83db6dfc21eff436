"""Small file helpers shared by every stage: atomic writes and strict text reading."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xstilts.errors import DataError, OutputError


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _make_dirs(directory: Path, shown: Path) -> None:
    """``mkdir -p`` with a one-line :class:`OutputError` (a file in the way, no permission)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{shown}: cannot write: {directory} is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write ({_why(exc)})") from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Readers never see a half-written file: an interrupted run leaves either the old file or
    nothing, plus at most a stray ``.tmp`` file that the next run overwrites. Failing to write
    (a folder in the way, no permission, a full disk) is a one-line :class:`OutputError`.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory, expected a file path")
    _make_dirs(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_why(exc)})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_why(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


def ensure_writable(path: str | Path, *, directory: bool = False) -> Path:
    """Fail now, before any long work, when ``path`` (a file, or a folder with
    ``directory=True``) cannot be written: a folder where a file is expected or the other way
    round, a file in the way of a parent folder, a folder where files cannot be created.
    Nothing is created: the nearest existing folder is probed with a temporary file."""
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, expected a folder")
    if not directory and path.is_dir():
        raise OutputError(f"{path}: is a directory, expected a file path")
    folder = path if directory else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot write: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".xstilts-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({_why(exc)})") from None
    return path


@contextlib.contextmanager
def staging_dir(target: str | Path) -> Iterator[Path]:
    """A scratch folder next to ``target`` whose files move into ``target`` on success.

    For outputs made of several files (a report): a failure half-way leaves ``target`` as it
    was, never a mix of old and new files.
    """
    target = Path(target)
    ensure_writable(target, directory=True)
    _make_dirs(target.parent, target)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({_why(exc)})") from None
    try:
        yield stage
        for src in sorted(p for p in stage.rglob("*") if p.is_file()):
            dest = target / src.relative_to(stage)
            _make_dirs(dest.parent, dest)
            os.replace(src, dest)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({_why(exc)})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_lines(path: str | Path, *, allow_empty: bool = False) -> list[str]:
    """Read a UTF-8 text file as a list of lines without their line endings.

    Raises :class:`DataError` naming the file (and line) when it is missing, empty or not
    valid UTF-8: a silently mis-decoded sentence would silently change retrieval scores.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a text file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if not lines and not allow_empty:
        raise DataError(f"{path}: file is empty")
    return lines
