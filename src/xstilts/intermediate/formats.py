"""Record readers for intermediate-task files, one per file format, shared by every task.

A reader turns one file into ``(line, record)`` pairs: ``record`` is a plain dict of the file's
fields and ``line`` is where the row starts (1-based), so that a bad row can be reported as
``path:line: what is wrong``. Readers know formats, not tasks: which fields make an example and
which labels are valid is decided by the converters (:mod:`xstilts.intermediate.converters`).
One reader per *format* (not per dataset) is what keeps MNLI, QQP, XNLI, PAWS-X and XGLUE from
growing five copies of the same TSV loop.

A row a reader cannot parse (malformed JSON, a missing tag) is yielded as a :class:`BadRow`
marker in its place, so the loader reports bad rows in file order whether the reader or the
converter found them. They go through :class:`RowPolicy`: by default the first one raises a
one-line :class:`~xstilts.errors.DataError`; with ``skip_bad_rows`` they are counted and
skipped. A row is never dropped silently. Problems with a whole file (missing, not UTF-8, a JSON
document that does not parse) always raise.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.io import read_lines

Record = dict[str, Any]
# Where a row starts: a line number, or a function computing it (JSON documents compute line
# numbers only when a row is actually bad: the search costs a scan of the text).
Where = int | Callable[[], int]
Row = tuple[Where, "Record | BadRow"]
Reader = Callable[[Path], Iterator[Row]]


class BadRow(Exception):
    """A row that cannot become an example. The message says what is wrong; the loader adds
    ``path:line``. ``line`` overrides the row's start line (a bad token inside a sentence)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class RowPolicy:
    """What happens to a bad row: raise (default) or count it and go on (``--skip-bad-rows``)."""

    skip: bool = False
    n_skipped: int = 0

    def bad(self, path: Path, where: Where, message: str) -> None:
        """Report one bad row: raise a one-line DataError, or count it when skipping."""
        if self.skip:
            self.n_skipped += 1
            return
        line = where() if callable(where) else where
        message = " ".join(message.split())  # one line, whatever the row contained
        raise DataError(f"{path}:{line}: {message}")


def read_text(path: Path) -> str:
    """The whole file as text: strict UTF-8, BOM dropped (invalid bytes name their line)."""
    return "\n".join(read_lines(path, allow_empty=True))


# --------------------------------------------------------------------------- TSV


# Cells that only occur in header rows: lets a headerless reader skip a header when a copy of
# the file has one (XNLI-MT's ``premise hypo label``; XTREME copies differ on this).
_HEADER_CELLS = frozenset(
    {"label", "gold_label", "premise", "hypothesis", "hypo", "sentence", "sentence1", "index"}
)


def tsv_reader(columns: tuple[str, ...] | None = None) -> Reader:
    """Tab-separated rows (no quoting, as GLUE/XNLI/PAWS-X ship them).

    ``columns=None``: the first line is a header naming the fields (GLUE, official PAWS-X and
    XNLI). Otherwise the file is headerless and ``columns`` names the fields by position
    (XTREME's preprocessed files); a first line made of header words is skipped. A row with
    fewer fields than named simply lacks the trailing ones (an unlabelled row); more fields than
    named is an error because the text itself probably contains a tab.
    """

    def read(path: Path) -> Iterator[Row]:
        lines = read_lines(path, allow_empty=True)
        names = columns
        start = 0
        if names is None:
            if not lines:
                raise DataError(f"{path}: file is empty (expected a header line)")
            names = tuple(lines[0].split("\t"))
            start = 1
        elif lines and _HEADER_CELLS.intersection(c.strip().lower() for c in lines[0].split("\t")):
            start = 1
        width = len(names)
        for i in range(start, len(lines)):
            line = lines[i]
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) > width:
                msg = f"expected at most {width} tab-separated fields ({', '.join(names)})"
                yield i + 1, BadRow(f"{msg}, found {len(cells)}")
                continue
            yield i + 1, dict(zip(names, cells, strict=False))

    return read


# --------------------------------------------------------------------------- JSON lines


def _json_lines(path: Path) -> Iterator[tuple[int, int, Record | BadRow]]:
    """``(line, k, object)`` for the k-th non-blank line of a JSON-lines file."""
    k = -1
    for i, line in enumerate(read_lines(path, allow_empty=True), start=1):
        if not line.strip():
            continue
        k += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield i, k, BadRow(f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield i, k, BadRow(f"expected a JSON object, found {type(obj).__name__}")
            continue
        yield i, k, obj


def read_jsonl(path: Path) -> Iterator[Row]:
    """One JSON object per line (ANLI, HellaSwag, CSQA, SIQA, XCOPA, CosmosQA test)."""
    for line, _, obj in _json_lines(path):
        yield line, obj


def sidecar_labels_reader(suffix: str) -> Reader:
    """JSON lines whose labels live in a sibling file, one per line (official SocialIQA:
    ``dev.jsonl`` + ``dev-labels.lst``). The label is stored under ``"label"``."""

    def read(path: Path) -> Iterator[Row]:
        label_path = sidecar_path(path, suffix)
        labels = [s.strip() for s in read_lines(label_path, allow_empty=True) if s.strip()]
        n_rows = sum(1 for ln in read_lines(path, allow_empty=True) if ln.strip())
        if len(labels) != n_rows:
            raise DataError(f"{label_path}: {len(labels)} labels for {n_rows} rows in {path.name}")
        for line, k, obj in _json_lines(path):
            yield line, obj if isinstance(obj, BadRow) else {**obj, "label": labels[k]}

    return read


def sidecar_path(path: Path, suffix: str) -> Path:
    """``dev.jsonl`` + ``-labels.lst`` -> ``dev-labels.lst``."""
    return path.with_name(path.stem + suffix)


# --------------------------------------------------------------------------- JSON documents


class _LineFinder:
    """Line numbers of places in a JSON text, found on demand (only bad rows need one)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def line_of(self, pattern: str) -> Callable[[], int]:
        """A function returning the line of the first match of ``pattern`` (1 if none)."""

        def find() -> int:
            m = re.search(pattern, self.text)
            return self.text.count("\n", 0, m.start()) + 1 if m else 1

        return find


def load_json(path: Path) -> tuple[Any, _LineFinder]:
    """Parse a JSON document; a syntax error is a one-line DataError with its line."""
    text = read_text(path)
    try:
        return json.loads(text), _LineFinder(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None


def read_json_records(path: Path) -> Iterator[Row]:
    """A JSON document holding records: a list, or an object keyed by row id (the GLUE JSON
    subsets of MNLI/QQP here: ``{"0": {"text_a":..., "text_b":..., "label":...}, ...}``).
    The key becomes the record's ``"idx"``."""
    doc, finder = load_json(path)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if isinstance(doc, dict):
        items: Iterable[tuple[Any, Any]] = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        raise DataError(f"{path}:1: expected a JSON object or list of records")
    for key, rec in items:
        anchor = rf'"{re.escape(str(key))}"\s*:\s*\{{' if isinstance(doc, dict) else r"\{"
        where = finder.line_of(anchor)
        if not isinstance(rec, dict):
            yield where, BadRow(f"record {key}: expected a JSON object")
            continue
        yield where, {"idx": str(key), **rec}


def read_squad(path: Path) -> Iterator[Row]:
    """SQuAD v1.1 JSON (SQuAD, XQuAD, TyDiQA-GoldP, MLQA): one record per question.

    Record: ``id, question, context, answers (list of {text, answer_start}), title``. The
    line of a question is the line of its ``"id"`` in the file.
    """
    doc, finder = load_json(path)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise DataError(f'{path}:1: not SQuAD v1.1 JSON (no top-level "data" list)')
    for article in data:
        title = article.get("title", "") if isinstance(article, dict) else ""
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f'{path}:1: article {title!r} has no "paragraphs" list')
        for para in paragraphs:
            context = para.get("context") if isinstance(para, dict) else None
            qas = para.get("qas") if isinstance(para, dict) else None
            if not isinstance(context, str) or not isinstance(qas, list):
                raise DataError(f"{path}:1: a paragraph of {title!r} lacks context/qas")
            for qa in qas:
                qid = str(qa.get("id", ""))
                where = finder.line_of(rf'"id"\s*:\s*"{re.escape(qid)}"')
                yield (
                    where,
                    {
                        "id": qid,
                        "question": qa.get("question"),
                        "context": context,
                        "answers": qa.get("answers"),
                        "title": title,
                    },
                )


# --------------------------------------------------------------------------- CSV


def read_csv(path: Path) -> Iterator[Row]:
    """Comma-separated with a header and RFC 4180 quoting (official CosmosQA ``*.csv``).
    Quoted fields may span lines; a row's line is where it starts."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise DataError(f"{path}:1: malformed CSV: {exc}") from None
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: malformed CSV: {exc}") from None
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield start, BadRow(f"expected {len(header)} CSV fields, found {len(cells)}")
            continue
        yield start, dict(zip(header, cells, strict=True))


# --------------------------------------------------------------------------- line blocks


def block_reader(size: int) -> Reader:
    """Fixed-size blocks of lines, one item per block: ``{"lines": [...]}`` (the HellaSwag
    text export: context, label, then the endings)."""

    def read(path: Path) -> Iterator[Row]:
        lines = read_lines(path)
        for i in range(0, len(lines), size):
            block = lines[i : i + size]
            if len(block) < size:
                yield i + 1, BadRow(f"incomplete item: {len(block)} of {size} lines")
                continue
            yield i + 1, {"lines": block}

    return read


# --------------------------------------------------------------------------- token / tag


def read_token_tags(path: Path) -> Iterator[Row]:
    """CoNLL-style tagging files: one ``token<TAB>tag`` (or ``token tag``) per line, a blank
    line between sentences. Used for CCGbank-derived supertags and XGLUE NER/POS.

    Record: ``tokens``, ``tags`` and ``tag_lines`` (the line of each token, so a bad tag is
    reported on its own line). ``-DOCSTART-`` lines are skipped. A token line without a tag is
    a bad row: the whole sentence is skipped with ``skip_bad_rows``.
    """
    tokens: list[str] = []
    tags: list[str] = []
    tag_lines: list[int] = []
    start = 0
    problem: tuple[int, str] | None = None
    lines = read_lines(path, allow_empty=True)

    def flush() -> Iterator[Row]:
        if problem is not None:
            yield problem[0], BadRow(problem[1])
        elif tokens:
            yield start, {"tokens": list(tokens), "tags": list(tags), "tag_lines": list(tag_lines)}

    for i, line in enumerate(lines, start=1):
        if not line.strip():
            yield from flush()
            tokens, tags, tag_lines, problem = [], [], [], None
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == "-DOCSTART-":
            continue
        if not tokens and problem is None:
            start = i
        if len(fields) < 2 or not fields[-1].strip():
            if problem is None:
                problem = (i, f"missing tag for token {fields[0]!r} (expected token<TAB>tag)")
            continue
        tokens.append(fields[0])
        tags.append(fields[-1].strip())
        tag_lines.append(i)
    yield from flush()
