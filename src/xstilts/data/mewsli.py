"""Mewsli-X entity retrieval (Botha et al. 2020; XTREME-R, Ruder et al. 2021).

Files in ``<data>/mewsli-x/``, in the layout written by google-research's
``dense_representations_for_entity_retrieval/mel/get-mewsli-x.sh``:

* mentions: ``wikinews_mentions-test.jsonl`` (XTREME-R's evaluation split), else
  ``wikinews_mentions-dev.jsonl``, else ``example_mentions.jsonl`` (the upstream test fixture);
  one JSON object per line: ``{"context": {"language", "text", "sentence_spans": [{start,
  end}]}, "mentions": [{"example_id", "entity_id", "mention_span": {start, end, text}}]}``;
* entities: ``candidate_set_entities.jsonl``, one ``{"entity_id", "title", "description",
  "sentence_spans", ...}`` per line (about 1M entities in the full set).

Texts follow the baseline preprocessing of XTREME-R's ``third_party/utils_mewslix.py``: a mention
becomes ``"<mention>: <sentence with the mention wrapped in { }>"`` using the one sentence that
contains it; an entity becomes the sentences of its description joined by spaces.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.io import read_lines

MEWSLI_LANGS: tuple[str, ...] = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")
MENTION_FILES: tuple[tuple[str, str], ...] = (
    ("test", "wikinews_mentions-test.jsonl"),
    ("dev", "wikinews_mentions-dev.jsonl"),
    ("example", "example_mentions.jsonl"),
)
ENTITY_FILE = "candidate_set_entities.jsonl"
HOW_TO_GET = (
    "get the data with google-research/google-research "
    "dense_representations_for_entity_retrieval/mel/get-mewsli-x.sh (see docs/protocols.md)"
)
# Existing "{...}" in the text is rewritten to "(...)" so the mention markers stay unique.
_MARKED = re.compile(r"\{(.*?)\}")


@dataclass(frozen=True)
class MewsliData:
    """Mention queries (with language and gold entity) and the entity candidate set."""

    split: str
    example_ids: list[str]
    mention_langs: list[str]
    mentions: list[str]  # preprocessed query texts
    gold: list[int]  # index into the entities
    entity_ids: list[str]
    entities: list[str]  # preprocessed description texts
    mentions_path: Path
    entities_path: Path
    # per mention: the line of its document in the mentions file (a held-out selection split
    # keeps a document's mentions together)
    mention_docs: list[int] = field(default_factory=list)


def mewsli_dir(data_dir: Path) -> Path:
    """``<data>/mewsli-x``."""
    return data_dir / "mewsli-x"


def mentions_file(data_dir: Path) -> tuple[str, Path]:
    """The split and path of the mentions file to evaluate (first that exists, see module doc)."""
    d = mewsli_dir(data_dir)
    for split, name in MENTION_FILES:
        if (d / name).is_file():
            return split, d / name
    return MENTION_FILES[0][0], d / MENTION_FILES[0][1]


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: expected a JSON object")
        out.append((n, obj))
    return out


def _spans(value: Any) -> list[tuple[int, int]]:
    return [(int(s["start"]), int(s["end"])) for s in value]


def _clean(text: str) -> str:
    """XTREME-R's normalisation: newlines to spaces, one pass of double-space removal."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def mention_text(text: str, sentences: list[tuple[int, int]], start: int, end: int) -> str | None:
    """The query text of a mention, or None when no single sentence contains it."""
    for s, e in sentences:
        if s <= start < e and s < end <= e:
            left = _MARKED.sub(r"(\1)", text[s:start])
            right = _MARKED.sub(r"(\1)", text[end:e])
            mention = text[start:end]
            return _clean(f"{mention}: {left} {{ {mention} }} {right}")
    return None


def entity_text(description: str, sentences: list[tuple[int, int]]) -> str:
    """The candidate text of an entity: its description sentences (all of it if none given)."""
    if not sentences:
        return _clean(description)
    return _clean(" ".join(description[s:e] for s, e in sentences))


def load_entities(path: Path) -> tuple[list[str], list[str]]:
    """Entity ids and texts; a repeated id or a malformed line is an error naming the line."""
    if not path.is_file():
        raise DataError(f"{path}: Mewsli-X candidate set not found; {HOW_TO_GET}")
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for n, obj in _jsonl(path):
        try:
            eid = str(obj["entity_id"])
            text = entity_text(obj["description"], _spans(obj.get("sentence_spans", [])))
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{path}:{n}: expected an entity with entity_id, description, sentence_spans"
            ) from None
        if eid in seen:
            raise DataError(f"{path}:{n}: duplicate entity id {eid!r} (first on line {seen[eid]})")
        seen[eid] = n
        ids.append(eid)
        texts.append(text)
    if not ids:
        raise DataError(f"{path}: no entities")
    return ids, texts


def load_mewsli(data_dir: Path, langs: list[str]) -> MewsliData:
    """Load mentions of ``langs`` and the candidate set; every mention is checked first.

    Errors (one line each): a mention whose entity id is not in the candidate set, a mention
    span that does not match its text or crosses a sentence boundary, a requested language
    without mentions.
    """
    split, mpath = mentions_file(data_dir)
    if not mpath.is_file():
        raise DataError(f"{mpath}: Mewsli-X mentions not found; {HOW_TO_GET}")
    epath = mewsli_dir(data_dir) / ENTITY_FILE
    entity_ids, entities = load_entities(epath)
    index = {eid: i for i, eid in enumerate(entity_ids)}
    example_ids: list[str] = []
    mlangs: list[str] = []
    mentions: list[str] = []
    gold: list[int] = []
    docs: list[int] = []
    present: set[str] = set()
    wanted = set(langs)
    for n, obj in _jsonl(mpath):
        try:
            ctx = obj["context"]
            lang, text = str(ctx["language"]), ctx["text"]
            sentences = _spans(ctx["sentence_spans"])
            items = [
                (str(m["example_id"]), str(m["entity_id"]), m["mention_span"])
                for m in obj["mentions"]
            ]
            spans = [(int(s["start"]), int(s["end"]), s["text"]) for _, _, s in items]
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{mpath}:{n}: expected {{context: {{language, text, sentence_spans}}, "
                "mentions: [{example_id, entity_id, mention_span}]}"
            ) from None
        present.add(lang)
        for (example_id, eid, _), (start, end, surface) in zip(items, spans, strict=True):
            if eid not in index:
                raise DataError(
                    f"{mpath}:{n}: mention {example_id} links to entity {eid!r}, which is not in "
                    f"{epath}"
                )
            if text[start:end] != surface:
                raise DataError(
                    f"{mpath}:{n}: mention {example_id}: span {start}:{end} is "
                    f"{text[start:end]!r} in the text, not {surface!r}"
                )
            query = mention_text(text, sentences, start, end)
            if query is None:
                raise DataError(
                    f"{mpath}:{n}: mention {example_id} is not inside one sentence of its context"
                )
            if lang not in wanted:
                continue
            example_ids.append(example_id)
            mlangs.append(lang)
            mentions.append(query)
            gold.append(index[eid])
            docs.append(n)
    missing = [lang for lang in langs if lang not in present]
    if missing:
        raise DataError(
            f"{mpath}: no mentions in {', '.join(missing)} (languages present: "
            f"{', '.join(sorted(present)) or 'none'}); choose with --langs"
        )
    return MewsliData(
        split, example_ids, mlangs, mentions, gold, entity_ids, entities, mpath, epath, docs
    )
