"""A compact index of a text file of any size: where every line's id and text are, and a hash
of every text, made in one streaming pass that checks the file as it goes.

About 48 bytes a line instead of the text itself, so ``xstilts embed``/``mine`` can handle
corpora far larger than memory. The per-line hashes are the same 16-byte BLAKE2b keys that
:func:`xstilts.retrieval.mining.text_keys` and :func:`xstilts.embedding.store.text_hash` compute
from strings, so deduplication and store identities agree between files and in-memory lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xstilts.embedding.store import hashes_digest
from xstilts.errors import DataError, UsageError
from xstilts.retrieval.mining import dedup

LINE_FORMATS = ("auto", "text", "id-text")
_BOM = b"\xef\xbb\xbf"


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
        order, and for every line the row of its text (:func:`xstilts.retrieval.mining.dedup`
        on the line hashes, the keys :func:`~xstilts.retrieval.mining.text_keys` makes)."""
        return dedup(self.text_hash)

    def rows_digest(self, rows: np.ndarray) -> str:
        """:func:`xstilts.embedding.store.texts_digest` of the given lines' texts, from the
        hashes alone (no second read of the file)."""
        return hashes_digest([self.text_hash[np.asarray(rows)].tobytes()], len(rows))


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
