"""Intermediate-task registry: each task is data + metadata, as the retrieval tasks are.

A task (:class:`IntermediateTask`) says what it is (head kind, languages, labels, metric,
reference) and where its files may be, per split, as an ordered list of :class:`Source`
layouts: the official release first or last, whichever is more complete, and the copies in
``../shared/data`` (XTREME/XTREME-R preprocessed files, GLUE JSON subsets). The first layout
whose files exist is read. Adding a task means adding one object to :data:`INTERMEDIATE_TASKS`.

Parsing is split in two so no two loaders repeat each other:

* readers (:mod:`xstilts.data.task_formats`) turn a file format into ``(line, record)`` pairs;
* converters (here) turn a record into an example, validating its label / answer span.

Bad input is reported as ``path:line: what is wrong`` (:class:`~xstilts.errors.DataError`),
or counted and skipped with ``skip_bad_rows=True`` (:attr:`LoadedSplit.n_skipped`).

Unlabelled splits (GLUE/XNLI/PAWS-X test files without labels, XCOPA's hidden XTREME-R test
labels) load with ``label = UNLABELLED`` (-1), for prediction only.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xstilts.data.task_formats import (
    BadRow,
    Reader,
    Record,
    Row,
    RowPolicy,
    block_reader,
    read_csv,
    read_json_records,
    read_jsonl,
    read_squad,
    read_token_tags,
    sidecar_labels_reader,
    sidecar_path,
    tsv_reader,
)
from xstilts.errors import DataError, closest

HeadKind = Literal["classification", "multiple_choice", "span", "tagging"]

UNLABELLED = -1  # label of an example from a split that has no labels (prediction only)
UNK_TAG = "<unk>"  # last entry of a tag set derived from data: tags unseen in training


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class TextExample:
    """Single-sentence (``text_b=None``) or sentence-pair classification."""

    uid: str
    lang: str
    text_a: str
    text_b: str | None
    label: int


@dataclass(frozen=True)
class ChoiceExample:
    """Multiple choice: a context (premise / question / story) and its candidate answers."""

    uid: str
    lang: str
    context: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class SpanExample:
    """Extractive QA; ``answers`` are ``(char_start, text)`` into ``context``."""

    uid: str
    lang: str
    question: str
    context: str
    answers: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class TaggingExample:
    """One tag per word; ``tags`` index into the split's label set."""

    uid: str
    lang: str
    tokens: tuple[str, ...]
    tags: tuple[int, ...]


Example = TextExample | ChoiceExample | SpanExample | TaggingExample


@dataclass(frozen=True)
class LoadedSplit:
    """The examples of one split (all requested languages concatenated) and how they were read."""

    task: IntermediateTask
    split: str
    examples: list
    labels: tuple[str, ...] | None  # label / tag names; None for multiple choice and spans
    n_skipped: int  # bad rows skipped (only with skip_bad_rows=True)
    files: list[Path]

    @property
    def langs(self) -> tuple[str, ...]:
        """Languages present, in load order."""
        return tuple(dict.fromkeys(ex.lang for ex in self.examples))

    @property
    def has_labels(self) -> bool:
        """False for prediction-only splits (labels hidden)."""
        return not any(
            getattr(ex, "label", 0) == UNLABELLED
            or (isinstance(ex, SpanExample) and not ex.answers)
            for ex in self.examples
        )


# --------------------------------------------------------------------------- converters


@dataclass
class _Ctx:
    """What a converter needs besides the record: language, label lookup, uid fallback."""

    lang: str
    labelled: bool
    labels: tuple[str, ...] | None
    aliases: Mapping[str, str]
    file_key: str
    label_index: dict[str, int] = field(default_factory=dict)
    map_unknown_to_unk: bool = False

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.label_index = {name: i for i, name in enumerate(self.labels)}

    def uid(self, native: Any, k: int) -> str:
        """``lang:id``; rows without an id get ``lang:file:k`` (k-th row of the file)."""
        return (
            f"{self.lang}:{native}"
            if native not in (None, "")
            else f"{self.lang}:{self.file_key}:{k}"
        )

    def label(self, raw: Any, *, line: int | None = None) -> int:
        """Index of a raw label in the task's label set (after aliases such as ``e`` ->
        ``entailment`` or ``0`` -> ``not_duplicate``)."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise BadRow("missing label", line)
        key = str(raw).strip()
        key = self.aliases.get(key, key)
        if key in self.label_index:
            return self.label_index[key]
        if self.map_unknown_to_unk and UNK_TAG in self.label_index:
            return self.label_index[UNK_TAG]
        raise BadRow(f"label {raw!r} is not in the label set (valid: {_names(self.labels)})", line)


def _names(labels: Sequence[str] | None, limit: int = 20) -> str:
    labels = list(labels or ())
    shown = ", ".join(labels[:limit])
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


def _text(rec: Record, name: str) -> str:
    value = rec.get(name)
    if value is None:
        raise BadRow(f"missing field {name!r}")
    if not isinstance(value, str):
        raise BadRow(f"field {name!r} is not text: {value!r}")
    return value


def _joined(rec: Record, names: str | tuple[str, ...]) -> str:
    """One field, or several joined by a space (an ad's title + description)."""
    if isinstance(names, str):
        return _text(rec, names)
    return " ".join(_text(rec, n) for n in names)


Converter = Callable[[Record, _Ctx, int], Example]


def _pair(
    a: str | tuple[str, ...],
    b: str | tuple[str, ...] | None,
    label: str,
    uid: str | None = None,
) -> Converter:
    """Classification converter reading text(s) and the label from the named fields."""

    def convert(rec: Record, ctx: _Ctx, k: int) -> TextExample:
        return TextExample(
            uid=ctx.uid(rec.get(uid) if uid else None, k),
            lang=ctx.lang,
            text_a=_joined(rec, a),
            text_b=_joined(rec, b) if b is not None else None,
            label=ctx.label(rec.get(label)) if ctx.labelled else UNLABELLED,
        )

    return convert


# A multiple-choice parser returns (native id, context, choices, raw label, label names).
ChoiceParts = tuple[Any, str, list[str], Any, tuple[str, ...]]


def _choice(parse: Callable[[Record], ChoiceParts]) -> Converter:
    """Multiple-choice converter: a format-specific ``parse`` plus shared label validation."""

    def convert(rec: Record, ctx: _Ctx, k: int) -> ChoiceExample:
        native, context, choices, raw, names = parse(rec)
        if ctx.labelled:
            if raw is None or not str(raw).strip():
                raise BadRow("missing label")
            key = str(raw).strip()
            if key not in names:
                raise BadRow(f"label {raw!r} is not in the label set (valid: {', '.join(names)})")
            label = names.index(key)
        else:
            label = UNLABELLED
        return ChoiceExample(ctx.uid(native, k), ctx.lang, context, tuple(choices), label)

    return convert


_DIGITS = tuple(str(i) for i in range(10))


def _hellaswag_text(rec: Record) -> ChoiceParts:
    """HellaSwag text export: ``activity: context``, the label, then the four endings."""
    lines = rec["lines"]
    return None, lines[0], lines[2:], lines[1], _DIGITS[: len(lines) - 2]


def _hellaswag_json(rec: Record) -> ChoiceParts:
    """Official HellaSwag jsonl; the context is rendered as in the text export."""
    endings = rec.get("endings")
    if not isinstance(endings, list) or not endings:
        raise BadRow("missing field 'endings'")
    context = f"{_text(rec, 'activity_label')}: {_text(rec, 'ctx')}"
    return (
        rec.get("ind"),
        context,
        [str(e) for e in endings],
        rec.get("label"),
        _DIGITS[: len(endings)],
    )


def _cosmosqa(rec: Record) -> ChoiceParts:
    """CosmosQA (csv or jsonl): the question follows the story in the context segment."""
    choices = [_text(rec, f"answer{i}") for i in range(4)]
    context = f"{_text(rec, 'context')} {_text(rec, 'question')}"
    return rec.get("id"), context, choices, rec.get("label"), _DIGITS[:4]


def _csqa(rec: Record) -> ChoiceParts:
    """CommonsenseQA: official nested ``question.stem/choices`` or the HF flat export."""
    q = rec.get("question")
    if isinstance(q, dict):  # official: {"question": {"stem", "choices": [{"label","text"}]}}
        stem = _text(q, "stem")
        items = q.get("choices")
        if not isinstance(items, list):
            raise BadRow("missing field 'question.choices'")
        names = tuple(str(c.get("label")) for c in items)
        texts = [str(c.get("text")) for c in items]
    else:  # HF: {"question": str, "choices": {"label": [...], "text": [...]}}
        stem = _text(rec, "question")
        ch = rec.get("choices")
        if not isinstance(ch, dict):
            raise BadRow("missing field 'choices'")
        names = tuple(str(x) for x in ch.get("label", []))
        texts = [str(x) for x in ch.get("text", [])]
    if not texts or len(names) != len(texts):
        raise BadRow("choices: labels and texts differ in number")
    return rec.get("id"), stem, texts, rec.get("answerKey"), names


def _siqa(rec: Record) -> ChoiceParts:
    """SocialIQA: ``correct`` A/B/C (v1.4 copy) or a 1-based sidecar ``label``."""
    choices = [_text(rec, f"answer{c}") for c in "ABC"]
    context = f"{_text(rec, 'context')} {_text(rec, 'question')}"
    if "correct" in rec:
        return rec.get("id"), context, choices, rec.get("correct"), ("A", "B", "C")
    return rec.get("id"), context, choices, rec.get("label"), ("1", "2", "3")


# COPA's question word rendered as a question (jiant's COPA formulation); kept in English for
# every language so translated premises are paired with the same prompt.
_COPA_QUESTION = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}


def _xcopa(rec: Record) -> ChoiceParts:
    """XCOPA / COPA: premise + question prompt, two alternatives, 0-based label."""
    q = _text(rec, "question")
    if q not in _COPA_QUESTION:
        raise BadRow(f"question {q!r} is neither 'cause' nor 'effect'")
    context = f"{_text(rec, 'premise')} {_COPA_QUESTION[q]}"
    choices = [_text(rec, "choice1"), _text(rec, "choice2")]
    return rec.get("idx"), context, choices, rec.get("label"), ("0", "1")


def _squad(rec: Record, ctx: _Ctx, k: int) -> SpanExample:
    """SQuAD v1.1 question; every answer must be found at its ``answer_start``. Empty answer
    texts are hidden answers (XTREME's test copies blank them) and are dropped."""
    question = _text(rec, "question")
    context = _text(rec, "context")
    raw = rec.get("answers") or []
    if not isinstance(raw, list):
        raise BadRow(f"question {rec.get('id')!r}: 'answers' is not a list")
    answers: list[tuple[int, str]] = []
    for ans in raw:
        text, start = (
            (ans.get("text"), ans.get("answer_start")) if isinstance(ans, dict) else (None, None)
        )
        if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
            raise BadRow(
                f"question {rec.get('id')!r}: answer needs 'text' and integer 'answer_start'"
            )
        if not text:
            continue
        found = context[start : start + len(text)]
        if found != text:
            raise BadRow(
                f"question {rec.get('id')!r}: answer {text!r} not found at answer_start {start} "
                f"in the context (found {found!r})"
            )
        answers.append((start, text))
    if ctx.labelled and not answers:
        raise BadRow(f"question {rec.get('id')!r}: missing answers")
    return SpanExample(ctx.uid(rec.get("id"), k), ctx.lang, question, context, tuple(answers))


def _tagged(rec: Record, ctx: _Ctx, k: int) -> TaggingExample:
    """A tagged sentence; each tag is validated on its own line."""
    tags = tuple(
        ctx.label(tag, line=line) for tag, line in zip(rec["tags"], rec["tag_lines"], strict=True)
    )
    return TaggingExample(ctx.uid(None, k), ctx.lang, tuple(rec["tokens"]), tags)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One file layout for one split: where the files are, how to read and convert them.

    ``paths`` are relative to the data directory, ``{lang}`` is filled in, and all of them are
    read and concatenated (ANLI's three rounds). ``langs`` limits the languages this layout has
    (None: all the task's). ``keep`` selects one language's rows from a multi-language file
    (official XNLI, TyDiQA). ``sidecar`` names a labels file next to each path.
    """

    paths: tuple[str, ...]
    read: Reader
    convert: Converter
    layout: str
    labelled: bool = True
    langs: tuple[str, ...] | None = None
    keep: Callable[[Record, str], bool] | None = None
    sidecar: str | None = None

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        """The data files of this layout for one language."""
        return [data_dir / p.format(lang=lang) for p in self.paths]

    def required(self, data_dir: Path, lang: str) -> list[Path]:
        """Every file that must exist (data files and their label sidecars)."""
        files = self.files(data_dir, lang)
        if self.sidecar:
            files += [sidecar_path(p, self.sidecar) for p in files]
        return files

    def offers(self, lang: str) -> bool:
        """Whether this layout can hold ``lang`` at all."""
        return self.langs is None or lang in self.langs


# (language, layout, file, rows) read for one language of one split
_Group = tuple[str, Source, Path, list[Row]]


def _src(
    paths: str | tuple[str, ...],
    read: Reader,
    convert: Converter,
    layout: str,
    **kw: Any,
) -> Source:
    return Source((paths,) if isinstance(paths, str) else paths, read, convert, layout, **kw)


# --------------------------------------------------------------------------- the task object


_SPLIT_ALIASES = {"validation": "dev", "val": "dev", "valid": "dev", "eval": "dev"}


@dataclass(frozen=True)
class IntermediateTask:
    """Metadata and loader of one intermediate (fine-tuning) task."""

    name: str
    kind: HeadKind
    languages: tuple[str, ...]
    default_langs: tuple[str, ...]
    labels: tuple[str, ...] | None  # None when derived from the data (CCG) or not applicable
    num_choices: int | None
    metric: str  # "accuracy" | "f1" (SQuAD F1) | "entity_f1"
    train_split: str
    dev_split: str
    description: str
    reference: str
    english: bool  # True for English-only intermediate tasks (reports: English vs multilingual)
    download: str = ""  # where to get the full data
    splits: Mapping[str, tuple[Source, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    label_aliases: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ introspection

    def split_names(self) -> tuple[str, ...]:
        """Every split this task knows a layout for (whether or not its files exist)."""
        return tuple(self.splits)

    def canonical_split(self, split: str) -> str:
        """``validation``/``val`` -> ``dev``; unknown splits list the known ones."""
        key = split.strip().lower()
        if key not in self.splits:
            key = _SPLIT_ALIASES.get(key, key)
        if key not in self.splits:
            raise DataError(
                f"{self.name} has no split {split!r}{closest(key, list(self.splits))}; "
                f"splits: {', '.join(self.splits)}"
            )
        return key

    def expected_files(self, data_dir: Path, split: str, lang: str) -> list[tuple[str, list[Path]]]:
        """``(layout, files)`` for every layout that may hold ``split`` of ``lang``."""
        split = self.canonical_split(split)
        return [
            (s.layout, s.required(data_dir, lang)) for s in self.splits[split] if s.offers(lang)
        ]

    def available(self, data_dir: str | Path | None = None) -> dict[str, tuple[str, ...]]:
        """Splits present under ``data_dir`` and the languages each has files for."""
        root = _data_root(data_dir)
        out: dict[str, tuple[str, ...]] = {}
        for split, sources in self.splits.items():
            langs = tuple(
                lang
                for lang in self.languages
                if any(s.offers(lang) and _exists(s.required(root, lang)) for s in sources)
            )
            if langs:
                out[split] = langs
        return out

    # ------------------------------------------------------------------ loading

    def _resolve_langs(
        self, root: Path, split: str, langs: Sequence[str] | str | None
    ) -> list[str]:
        """Requested languages -> codes. ``None``: :attr:`default_langs`; ``all``: every
        language this split exists for (missing files are an error); ``available``: those whose
        files are present under the data directory."""
        sources = self.splits[split]
        items = (langs.split(",") if isinstance(langs, str) else list(langs)) if langs else []
        items = [x.strip().lower() for x in items if x.strip()]
        offered = [x for x in self.languages if any(s.offers(x) for s in sources)]
        if not items:
            chosen = [x for x in self.default_langs if x in offered]
            return chosen or offered
        if items == ["all"]:
            return offered
        if items == ["available"]:
            present = [
                x
                for x in offered
                if any(_exists(s.required(root, x)) for s in sources if s.offers(x))
            ]
            if not present:
                self._source(root, split, offered[0])  # raises: says what is expected where
            return present
        for lang in items:
            if lang not in self.languages:
                raise DataError(
                    f"{self.name} has no language {lang!r}{closest(lang, self.languages)}; "
                    f"languages: {', '.join(self.languages)} (or all, available)"
                )
            if lang not in offered:
                get = f"; {self.download}" if self.download else ""
                raise DataError(
                    f"{self.name} {split} exists only for {', '.join(offered)}, not {lang!r}{get}"
                )
        return list(dict.fromkeys(items))

    def _source(self, root: Path, split: str, lang: str) -> Source:
        """The first layout whose files exist; else a one-line error naming what is expected."""
        candidates = [s for s in self.splits[split] if s.offers(lang)]
        for s in candidates:
            if _exists(s.required(root, lang)):
                return s
        expected = " or ".join(
            f"{' + '.join(str(p) for p in s.required(root, lang))} ({s.layout})" for s in candidates
        )
        which = f"{self.name} {split}" + (f" [{lang}]" if len(self.languages) > 1 else "")
        get = f"; get it from {self.download}" if self.download else ""
        raise DataError(f"{which}: no data file found: expected {expected}{get}")

    def load(
        self,
        data_dir: str | Path | None,
        split: str,
        langs: Sequence[str] | None = None,
        *,
        max_examples: int | None = None,
        skip_bad_rows: bool = False,
        seed: int = 0,
        labels: tuple[str, ...] | None = None,
    ) -> LoadedSplit:
        """Read one split for the given languages, concatenated in language order.

        ``langs``: codes, or ``["all"]`` (every language of this split) or ``["available"]``
        (those present under ``data_dir``); default :attr:`default_langs`.

        ``max_examples`` keeps a seeded random subset (file order preserved). ``labels``: for a
        task whose tag set is derived from the data (CCG), the tag set to index into (by default
        the training split's when its files exist); tags outside it become ``<unk>``.
        """
        root = _data_root(data_dir)
        split = self.canonical_split(split)
        chosen = self._resolve_langs(root, split, langs)
        policy = RowPolicy(skip=skip_bad_rows)
        read_cache: dict[Path, list[Row]] = {}
        groups: list[_Group] = []
        for lang in chosen:
            src = self._source(root, split, lang)
            for path in src.files(root, lang):
                first_read = path not in read_cache
                if first_read:
                    read_cache[path] = list(src.read(path))
                rows = read_cache[path]
                if src.keep is not None:  # one language of a multi-language file
                    rows = [
                        (w, r)
                        for w, r in rows
                        if (first_read and isinstance(r, BadRow))  # reported once, in file order
                        or (not isinstance(r, BadRow) and src.keep(r, lang))
                    ]
                    if not any(not isinstance(r, BadRow) for _, r in rows):
                        raise DataError(f"{path}: no rows for language {lang!r}")
                groups.append((lang, src, path, rows))

        label_set = self._label_set(root, split, chosen, groups, labels)
        examples: list[Example] = []
        seen: set[str] = set()
        for lang, src, path, rows in groups:
            ctx = _Ctx(
                lang=lang,
                labelled=src.labelled and not (self.kind == "span" and _answers_hidden(rows)),
                labels=label_set,
                aliases=self.label_aliases,
                file_key=path.stem,
                map_unknown_to_unk=self.labels is None,
            )
            for k, (where, rec) in enumerate(rows):
                try:
                    if isinstance(rec, BadRow):
                        raise rec
                    ex = src.convert(rec, ctx, k)
                except BadRow as exc:
                    policy.bad(path, exc.line or where, str(exc))
                    continue
                if ex.uid in seen:  # ids that are not unique (XTREME's TyDiQA train: "0", "1")
                    ex = dataclasses.replace(ex, uid=f"{ex.uid}#{path.stem}:{k}")
                seen.add(ex.uid)
                examples.append(ex)
        if not examples:
            raise DataError(
                f"{self.name} {split}: no usable rows in {', '.join(map(str, read_cache))}"
            )
        if max_examples is not None and max_examples < len(examples):
            keep = sorted(random.Random(seed).sample(range(len(examples)), max(0, max_examples)))
            examples = [examples[i] for i in keep]
        return LoadedSplit(self, split, examples, label_set, policy.n_skipped, list(read_cache))

    def _label_set(
        self,
        root: Path,
        split: str,
        langs: list[str],
        groups: list[_Group],
        given: tuple[str, ...] | None,
    ) -> tuple[str, ...] | None:
        """The task's labels. A tag set derived from data (CCG) is ``given``, else the sorted
        tags of the *training* split when its files exist (so dev/test tags index exactly as
        the head was trained, whoever loads them), else of this split; :data:`UNK_TAG` last."""
        if self.labels is not None or self.kind != "tagging":
            return self.labels
        if given is not None:
            return tuple(given)
        if split != self.train_split:
            try:
                sources = [(lang, self._source(root, self.train_split, lang)) for lang in langs]
            except DataError:  # no training files: derive from this split
                sources = []
            if sources:
                groups = [
                    (lang, src, path, list(src.read(path)))
                    for lang, src in sources
                    for path in src.files(root, lang)
                ]
        seen = {
            tag
            for _, _, _, rows in groups
            for _, rec in rows
            if not isinstance(rec, BadRow)
            for tag in rec.get("tags", ())
        }
        seen.discard(UNK_TAG)
        return (*sorted(seen), UNK_TAG)


def _answers_hidden(rows: list[Row]) -> bool:
    """True when no question of a SQuAD file has a non-empty answer: a test copy whose answers
    were blanked (XTREME's XQuAD and TyDiQA dev), read as unlabelled rather than as bad rows."""
    return not any(
        isinstance(a, dict) and a.get("text")
        for _, rec in rows
        if not isinstance(rec, BadRow)
        for a in (rec.get("answers") if isinstance(rec.get("answers"), list) else [])
    )


def _data_root(data_dir: str | Path | None) -> Path:
    from xstilts.paths import resolve_data_dir

    return resolve_data_dir(data_dir)


def _exists(paths: list[Path]) -> bool:
    return all(p.is_file() for p in paths)


# --------------------------------------------------------------------------- registry data

NLI_LABELS = ("entailment", "neutral", "contradiction")
# ANLI's e/n/c and XNLI-MT's "contradictory" map onto one NLI label set, so NLI tasks share it.
NLI_ALIASES = {
    "e": "entailment",
    "n": "neutral",
    "c": "contradiction",
    "contradictory": "contradiction",
}

XNLI_LANGS = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
XCOPA_LANGS = ("en", "et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
TYDIQA_LANGS = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
# Official TyDiQA-GoldP files mix languages; ids start with the language's English name.
_TYDI_NAMES = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip

NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
UPOS_LABELS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
NC_LABELS = (
    "foodanddrink", "sports", "travel", "finance", "lifestyle", "news", "entertainment", "health",
    "video", "autos",
)  # fmt: skip
XGLUE_NER_LANGS = ("de", "en", "es", "nl")
XGLUE_POS_LANGS = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "it", "nl", "pl", "ru", "th", "tr", "ur",
    "vi", "zh",
)  # fmt: skip

GLUE = "https://gluebenchmark.com/tasks"


def _binary_aliases(labels: tuple[str, str]) -> dict[str, str]:
    """GLUE-style ``0``/``1`` labels -> names."""
    return {"0": labels[0], "1": labels[1]}


def _glue_json(split: str, task: str) -> Source:
    return _src(
        f"{task}/glue_pretrain_{split}.json",
        read_json_records,
        _pair("text_a", "text_b", "label", "idx"),
        "GLUE JSON subset",
    )


def _both_xglue(rel: str, read: Reader, convert: Converter, **kw: Any) -> tuple[Source, ...]:
    """XGLUE files under ``xglue/`` (the tarball's folder renamed) or ``xglue_full_dataset/``."""
    return tuple(
        _src(f"{root}/{rel}", read, convert, "XGLUE", **kw)
        for root in ("xglue", "xglue_full_dataset")
    )


def _nli_tasks() -> list[IntermediateTask]:
    mnli_tsv = _pair("sentence1", "sentence2", "gold_label", "pairID")

    def glue(name: str, **kw: Any) -> Source:
        return _src(f"mnli/{name}", tsv_reader(), mnli_tsv, "GLUE TSV", **kw)

    anli = _pair("context", "hypothesis", "label", "uid")
    common = dict(
        kind="classification",
        labels=NLI_LABELS,
        num_choices=None,
        metric="accuracy",
        label_aliases=NLI_ALIASES,
    )
    tasks = [
        IntermediateTask(
            name="mnli",
            languages=("en",),
            default_langs=("en",),
            train_split="train",
            dev_split="dev",
            english=True,
            description="MultiNLI: premise/hypothesis entailment, 3 classes (dev = matched)",
            reference="Williams et al. 2018; GLUE (Wang et al. 2019)",
            download=GLUE,
            splits={
                "train": (glue("train.tsv"), _glue_json("train", "mnli")),
                "dev": (glue("dev_matched.tsv"), _glue_json("dev", "mnli")),
                "dev_mismatched": (glue("dev_mismatched.tsv"),),
                "test": (glue("test_matched.tsv", labelled=False),),
                "test_mismatched": (glue("test_mismatched.tsv", labelled=False),),
            },
            **common,
        ),
    ]
    rounds = {
        "anli-r1": (("R1",), "round 1"),
        "anli-r2": (("R2",), "round 2"),
        "anli-r3": (("R3",), "round 3"),
        "anli": (("R1", "R2", "R3"), "rounds 1-3 concatenated"),
    }
    for name, (rs, which) in rounds.items():
        tasks.append(
            IntermediateTask(
                name=name,
                languages=("en",),
                default_langs=("en",),
                train_split="train",
                dev_split="dev",
                english=True,
                description=f"Adversarial NLI v1.0, {which}, 3 classes",
                reference="Nie et al. 2020",
                download="https://github.com/facebookresearch/anli",
                splits={
                    s: (
                        _src(
                            tuple(f"anli/{r}/{s}.jsonl" for r in rs),
                            read_jsonl,
                            anli,
                            "ANLI v1.0 jsonl",
                        ),
                    )
                    for s in ("train", "dev", "test")
                },
                **common,
            )
        )
    xtreme = _pair("premise", "hypothesis", "label")
    positional = tsv_reader(("premise", "hypothesis", "label"))
    official = _pair("sentence1", "sentence2", "gold_label", "pairID")

    def in_lang(rec: Record, lang: str) -> bool:
        return rec.get("language") == lang

    xnli_official = {
        s: (
            _src(f"xnli/xnli.{s}.tsv", tsv_reader(), official, "XNLI 1.0", keep=in_lang),
            _src(f"xnli/XNLI-1.0/xnli.{s}.tsv", tsv_reader(), official, "XNLI 1.0", keep=in_lang),
        )
        for s in ("dev", "test")
    }
    tasks.append(
        IntermediateTask(
            name="xnli",
            languages=XNLI_LANGS,
            default_langs=XNLI_LANGS,
            train_split="train",
            dev_split="dev",
            english=False,
            description="XNLI: MNLI-style NLI in 15 languages; train = XNLI-MT machine "
            "translations of MNLI (translate-train)",
            reference="Conneau et al. 2018; XTREME (Hu et al. 2020)",
            download="https://github.com/facebookresearch/XNLI (XNLI-1.0, XNLI-MT-1.0)",
            splits={
                "train": (
                    _src("xnli/train-{lang}.tsv", positional, xtreme, "XTREME"),
                    _src(
                        "xnli/multinli.train.{lang}.tsv",
                        tsv_reader(),
                        _pair("premise", "hypo", "label"),
                        "XNLI-MT 1.0",
                    ),
                    _src(
                        "xnli/XNLI-MT-1.0/multinli/multinli.train.{lang}.tsv",
                        tsv_reader(),
                        _pair("premise", "hypo", "label"),
                        "XNLI-MT 1.0",
                    ),
                    *_both_xglue(
                        "XNLI/multinli.train.en.tsv",
                        tsv_reader(),
                        _pair("premise", "hypo", "label"),
                        langs=("en",),
                    ),
                ),
                "dev": (
                    _src("xnli/dev-{lang}.tsv", positional, xtreme, "XTREME"),
                    *xnli_official["dev"],
                    *_both_xglue("XNLI/{lang}.dev", positional, xtreme),
                ),
                "test": (
                    *xnli_official["test"],
                    *_both_xglue("XNLI/{lang}.test", positional, xtreme),
                    _src(
                        "xnli/test-{lang}.tsv",
                        positional,
                        xtreme,
                        "XTREME (labels hidden)",
                        labelled=False,
                    ),
                ),
            },
            **common,
        )
    )
    return tasks


def _paraphrase_tasks() -> list[IntermediateTask]:
    qqp_labels = ("not_duplicate", "duplicate")
    qqp_tsv = _pair("question1", "question2", "is_duplicate", "id")
    sst_labels = ("negative", "positive")
    sst_tsv = _pair("sentence", None, "label")
    paws_labels = ("not_paraphrase", "paraphrase")
    paws = _pair("sentence1", "sentence2", "label", "id")
    paws_pos = tsv_reader(("sentence1", "sentence2", "label"))

    def paws_official(split_file: str, **kw: Any) -> tuple[Source, ...]:
        return tuple(
            _src(f"{root}{{lang}}/{split_file}", tsv_reader(), paws, "PAWS-X official", **kw)
            for root in ("pawsx/", "pawsx/x-final/")
        ) + _both_xglue(f"PAWSX/{{lang}}/{split_file}", tsv_reader(), paws, **kw)

    return [
        IntermediateTask(
            name="qqp",
            kind="classification",
            languages=("en",),
            default_langs=("en",),
            labels=qqp_labels,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=True,
            description="Quora Question Pairs: are two questions duplicates (2 classes)",
            reference="Iyer et al. 2017; GLUE (Wang et al. 2019)",
            download=GLUE,
            label_aliases=_binary_aliases(qqp_labels),
            splits={
                "train": (
                    _src("qqp/train.tsv", tsv_reader(), qqp_tsv, "GLUE TSV"),
                    _glue_json("train", "qqp"),
                ),
                "dev": (
                    _src("qqp/dev.tsv", tsv_reader(), qqp_tsv, "GLUE TSV"),
                    _glue_json("dev", "qqp"),
                ),
                "test": (_src("qqp/test.tsv", tsv_reader(), qqp_tsv, "GLUE TSV", labelled=False),),
            },
        ),
        IntermediateTask(
            name="sst2",
            kind="classification",
            languages=("en",),
            default_langs=("en",),
            labels=sst_labels,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=True,
            description="Stanford Sentiment Treebank, binary sentence sentiment",
            reference="Socher et al. 2013; GLUE (Wang et al. 2019)",
            download=GLUE,
            label_aliases=_binary_aliases(sst_labels),
            splits={
                "train": (
                    _src("sst2/train_full.tsv", tsv_reader(), sst_tsv, "GLUE TSV (full)"),
                    _src("sst2/train.tsv", tsv_reader(), sst_tsv, "GLUE TSV"),
                ),
                "dev": (_src("sst2/dev.tsv", tsv_reader(), sst_tsv, "GLUE TSV"),),
                "test": (
                    _src("sst2/test-labeled.tsv", tsv_reader(), sst_tsv, "labelled test TSV"),
                    _src(
                        "sst2/test.tsv",
                        tsv_reader(),
                        _pair("sentence", None, "label", "index"),
                        "GLUE TSV",
                        labelled=False,
                    ),
                ),
            },
        ),
        IntermediateTask(
            name="pawsx",
            kind="classification",
            languages=PAWSX_LANGS,
            default_langs=PAWSX_LANGS,
            labels=paws_labels,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=False,
            description="PAWS-X: adversarial paraphrase identification in 7 languages; "
            "non-English train is machine-translated (translate-train)",
            reference="Yang et al. 2019; XTREME (Hu et al. 2020)",
            download="https://github.com/google-research-datasets/paws/tree/master/pawsx",
            label_aliases=_binary_aliases(paws_labels),
            splits={
                "train": (
                    _src("pawsx/train-{lang}.tsv", paws_pos, paws, "XTREME"),
                    *paws_official("train.tsv", langs=("en",)),
                    *paws_official("translated_train.tsv"),
                ),
                "dev": (
                    _src("pawsx/dev-{lang}.tsv", paws_pos, paws, "XTREME"),
                    *paws_official("dev_2k.tsv"),
                ),
                "test": (
                    *paws_official("test_2k.tsv"),
                    _src(
                        "pawsx/test-{lang}.tsv",
                        paws_pos,
                        paws,
                        "XTREME (labels hidden)",
                        labelled=False,
                    ),
                ),
            },
        ),
    ]


def _choice_tasks() -> list[IntermediateTask]:
    common = dict(kind="multiple_choice", labels=None, metric="accuracy")
    hs_json, hs_text = _choice(_hellaswag_json), _choice(_hellaswag_text)
    cosmos, csqa, siqa, xcopa = _choice(_cosmosqa), _choice(_csqa), _choice(_siqa), _choice(_xcopa)
    siqa_official = sidecar_labels_reader("-labels.lst")
    return [
        IntermediateTask(
            name="hellaswag",
            languages=("en",),
            default_langs=("en",),
            num_choices=4,
            train_split="train",
            dev_split="dev",
            english=True,
            description="HellaSwag: pick the plausible continuation of an ActivityNet/WikiHow "
            "context (4 endings)",
            reference="Zellers et al. 2019",
            download="https://github.com/rowanz/hellaswag (data/)",
            splits={
                "train": (
                    _src("hellaswag/hellaswag_train.jsonl", read_jsonl, hs_json, "official jsonl"),
                    _src(
                        "hellaswag/hellaswag_train_full.txt",
                        block_reader(6),
                        hs_text,
                        "text blocks",
                    ),
                ),
                "dev": (
                    _src("hellaswag/hellaswag_val.jsonl", read_jsonl, hs_json, "official jsonl"),
                    _src(
                        "hellaswag/hellaswag_val_full.txt", block_reader(6), hs_text, "text blocks"
                    ),
                ),
                "test": (
                    _src(
                        "hellaswag/hellaswag_test.jsonl",
                        read_jsonl,
                        hs_json,
                        "official jsonl",
                        labelled=False,
                    ),
                ),
            },
            **common,
        ),
        IntermediateTask(
            name="cosmosqa",
            languages=("en",),
            default_langs=("en",),
            num_choices=4,
            train_split="train",
            dev_split="dev",
            english=True,
            description="CosmosQA: commonsense reading comprehension over blog stories (4 answers)",
            reference="Huang et al. 2019",
            download="https://github.com/wilburOne/cosmosqa (data/)",
            splits={
                "train": (
                    _src("cosmosqa/train.csv", read_csv, cosmos, "official CSV"),
                    _src("cosmosqa/train.jsonl", read_jsonl, cosmos, "jsonl"),
                ),
                "dev": (
                    _src("cosmosqa/valid.csv", read_csv, cosmos, "official CSV"),
                    _src("cosmosqa/valid.jsonl", read_jsonl, cosmos, "jsonl"),
                ),
                "test": (
                    _src(
                        "cosmosqa/test.jsonl", read_jsonl, cosmos, "official jsonl", labelled=False
                    ),
                ),
            },
            **common,
        ),
        IntermediateTask(
            name="commonsenseqa",
            languages=("en",),
            default_langs=("en",),
            num_choices=5,
            train_split="train",
            dev_split="dev",
            english=True,
            description="CommonsenseQA: ConceptNet-based commonsense questions (5 answers)",
            reference="Talmor et al. 2019",
            download="https://www.tau-nlp.org/commonsenseqa",
            splits={
                "train": (
                    _src(
                        "commonsenseqa/train_rand_split.jsonl", read_jsonl, csqa, "official jsonl"
                    ),
                ),
                "dev": (
                    _src("commonsenseqa/dev_rand_split.jsonl", read_jsonl, csqa, "official jsonl"),
                ),
                "test": (
                    _src(
                        "commonsenseqa/test_rand_split_no_answers.jsonl",
                        read_jsonl,
                        csqa,
                        "official jsonl",
                        labelled=False,
                    ),
                ),
            },
            **common,
        ),
        IntermediateTask(
            name="siqa",
            languages=("en",),
            default_langs=("en",),
            num_choices=3,
            train_split="train",
            dev_split="dev",
            english=True,
            description="SocialIQA: reasoning about people's motivations and reactions (3 answers)",
            reference="Sap et al. 2019",
            download="https://leaderboard.allenai.org/socialiqa",
            splits={
                "train": (
                    _src("siqa/socialIQa_v1.4_trn.jsonl", read_jsonl, siqa, "SocialIQA v1.4"),
                    _src(
                        "siqa/train.jsonl",
                        siqa_official,
                        siqa,
                        "official jsonl + labels",
                        sidecar="-labels.lst",
                    ),
                ),
                "dev": (
                    _src("siqa/socialIQa_v1.4_dev.jsonl", read_jsonl, siqa, "SocialIQA v1.4"),
                    _src(
                        "siqa/dev.jsonl",
                        siqa_official,
                        siqa,
                        "official jsonl + labels",
                        sidecar="-labels.lst",
                    ),
                ),
                "test": (
                    _src("siqa/socialIQa_v1.4_tst.jsonl", read_jsonl, siqa, "SocialIQA v1.4"),
                ),
            },
            **common,
        ),
        IntermediateTask(
            name="xcopa",
            languages=XCOPA_LANGS,
            default_langs=XCOPA_LANGS,
            num_choices=2,
            train_split="train",
            dev_split="dev",
            english=False,
            description="XCOPA: choice of plausible alternatives (cause/effect) in 11 languages + "
            "English COPA; train is English only",
            reference="Ponti et al. 2020; XTREME-R (Ruder et al. 2021)",
            download="https://github.com/cambridgeltl/xcopa (data/); English train: SuperGLUE COPA",
            splits={
                "train": (
                    _src("xcopa/train-{lang}.jsonl", read_jsonl, xcopa, "XTREME-R", langs=("en",)),
                ),
                "dev": (
                    _src("xcopa/val-{lang}.jsonl", read_jsonl, xcopa, "XTREME-R"),
                    _src("xcopa/{lang}/val.{lang}.jsonl", read_jsonl, xcopa, "XCOPA official"),
                    _src("xcopa/data/{lang}/val.{lang}.jsonl", read_jsonl, xcopa, "XCOPA official"),
                ),
                "test": (
                    _src("xcopa/{lang}/test.{lang}.jsonl", read_jsonl, xcopa, "XCOPA official"),
                    _src(
                        "xcopa/data/{lang}/test.{lang}.jsonl", read_jsonl, xcopa, "XCOPA official"
                    ),
                    _src(
                        "xcopa/test-{lang}.jsonl",
                        read_jsonl,
                        xcopa,
                        "XTREME-R (labels hidden)",
                        labelled=False,
                    ),
                ),
            },
            **common,
        ),
    ]


def _span_tasks() -> list[IntermediateTask]:
    common = dict(kind="span", labels=None, num_choices=None, metric="f1")

    def tydi_lang(rec: Record, lang: str) -> bool:
        return str(rec.get("id", "")).startswith(_TYDI_NAMES[lang] + "-")

    def tydi(split: str) -> tuple[Source, ...]:
        return (
            _src(f"tydiqa/tydiqa.goldp.{{lang}}.{split}.json", read_squad, _squad, "XTREME"),
            _src(
                f"tydiqa/tydiqa-goldp-v1.1-{split}.json",
                read_squad,
                _squad,
                "TyDiQA official",
                keep=tydi_lang,
            ),
        )

    return [
        IntermediateTask(
            name="squad",
            languages=("en",),
            default_langs=("en",),
            train_split="train",
            dev_split="dev",
            english=True,
            description="SQuAD v1.1 extractive question answering over Wikipedia paragraphs",
            reference="Rajpurkar et al. 2016",
            download="https://rajpurkar.github.io/SQuAD-explorer/ (train-v1.1.json, dev-v1.1.json)",
            splits={
                s: (_src(f"squad/{s}-v1.1.json", read_squad, _squad, "SQuAD v1.1 JSON"),)
                for s in ("train", "dev")
            },
            **common,
        ),
        IntermediateTask(
            name="xquad",
            languages=XQUAD_LANGS,
            default_langs=("en",),
            train_split="test",
            dev_split="test",
            english=False,
            description="XQuAD: 240 SQuAD v1.1 dev paragraphs / 1190 questions professionally "
            "translated; evaluation only (one split, 'test')",
            reference="Artetxe et al. 2020; XTREME (Hu et al. 2020)",
            download="https://github.com/google-deepmind/xquad",
            splits={
                "test": (
                    # XQuAD-R (LAReQA) has XQuAD's contexts, questions and answers for 11
                    # languages; XTREME's copy of XQuAD has the answers blanked.
                    _src("lareqa/xquad-r/{lang}.json", read_squad, _squad, "XQuAD-R copy"),
                    _src("xquad/xquad.{lang}.json", read_squad, _squad, "XQuAD JSON"),
                )
            },
            **common,
        ),
        IntermediateTask(
            name="tydiqa",
            languages=TYDIQA_LANGS,
            default_langs=("en",),
            train_split="train",
            dev_split="dev",
            english=False,
            description="TyDiQA-GoldP: typologically diverse QA with the gold passage, 9 languages",
            reference="Clark et al. 2020; XTREME (Hu et al. 2020)",
            download="https://github.com/google-research-datasets/tydiqa (GoldP v1.1)",
            splits={"train": tydi("train"), "dev": tydi("dev")},
            **common,
        ),
        IntermediateTask(
            name="xglue-mlqa",
            languages=("ar", "de", "en", "es", "hi", "vi", "zh"),
            default_langs=("en",),
            train_split="train",
            dev_split="dev",
            english=False,
            description="XGLUE MLQA: train on English SQuAD v1.1, dev/test in 7 languages "
            "(context and question in the same language)",
            reference="Lewis et al. 2020; XGLUE (Liang et al. 2020)",
            download="https://microsoft.github.io/XGLUE/ (xglue_full_dataset.tar.gz)",
            splits={
                "train": _both_xglue(
                    "MLQA/squad1.1/train-v1.1.json", read_squad, _squad, langs=("en",)
                ),
                **{
                    s: _both_xglue(
                        f"MLQA/MLQA_V1/{s}/{s}-context-{{lang}}-question-{{lang}}.json",
                        read_squad,
                        _squad,
                    )
                    for s in ("dev", "test")
                },
            },
            **common,
        ),
    ]


def _tagging_tasks() -> list[IntermediateTask]:
    def conll(root: str, **kw: Any) -> dict[str, tuple[Source, ...]]:
        return {
            "train": _both_xglue(f"{root}/en.train", read_token_tags, _tagged, langs=("en",), **kw),
            "dev": _both_xglue(f"{root}/{{lang}}.dev", read_token_tags, _tagged, **kw),
            "test": _both_xglue(f"{root}/{{lang}}.test", read_token_tags, _tagged, **kw),
        }

    xglue = "https://microsoft.github.io/XGLUE/ (xglue_full_dataset.tar.gz)"
    return [
        IntermediateTask(
            name="ccg",
            kind="tagging",
            languages=("en",),
            default_langs=("en",),
            labels=None,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=True,
            description="CCG supertagging on CCGbank (token<TAB>supertag per line, blank line "
            "between sentences); tag set derived from the training data",
            reference="Hockenmaier & Steedman 2007",
            download="CCGbank, LDC2005T13 (https://catalog.ldc.upenn.edu/LDC2005T13), converted "
            "to token<TAB>tag files",
            splits={
                s: (
                    _src(f"ccg/{s}.tsv", read_token_tags, _tagged, "token-tag"),
                    _src(f"ccg/ccg.{s}.tsv", read_token_tags, _tagged, "token-tag"),
                )
                for s in ("train", "dev", "test")
            },
        ),
        IntermediateTask(
            name="xglue-ner",
            kind="tagging",
            languages=XGLUE_NER_LANGS,
            default_langs=("en",),
            labels=NER_LABELS,
            num_choices=None,
            metric="entity_f1",
            train_split="train",
            dev_split="dev",
            english=False,
            description="XGLUE NER (CoNLL-2002/2003, BIO tags); train English only",
            reference="Tjong Kim Sang 2002, 2003; XGLUE (Liang et al. 2020)",
            download=xglue,
            splits=conll("NER"),
        ),
        IntermediateTask(
            name="xglue-pos",
            kind="tagging",
            languages=XGLUE_POS_LANGS,
            default_langs=("en",),
            labels=UPOS_LABELS,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=False,
            description="XGLUE POS (Universal Dependencies 2.5 UPOS); train English only",
            reference="Zeman et al. 2019; XGLUE (Liang et al. 2020)",
            download=xglue,
            splits=conll("POS"),
        ),
    ]


def _xglue_classification() -> list[IntermediateTask]:
    """XGLUE's NC/QADSM/WPR/QAM: headerless TSV, English train, dev/test per language."""
    xglue = "https://microsoft.github.io/XGLUE/ (xglue_full_dataset.tar.gz)"

    def splits(
        task: str, columns: tuple[str, ...], convert: Converter
    ) -> dict[str, tuple[Source, ...]]:
        read = tsv_reader(columns)
        upper = task.upper()
        return {
            "train": _both_xglue(f"{upper}/xglue.{task}.en.train", read, convert, langs=("en",)),
            "dev": _both_xglue(f"{upper}/xglue.{task}.{{lang}}.dev", read, convert),
            # test labels are not distributed with XGLUE: prediction only
            "test": _both_xglue(
                f"{upper}/xglue.{task}.{{lang}}.test", read, convert, labelled=False
            ),
        }

    specs = [
        (
            "nc",
            ("en", "de", "es", "fr", "ru"),
            NC_LABELS,
            ("title", "body", "label"),
            _pair("title", "body", "label"),
            "News Classification: news title + body -> 10 categories",
        ),
        (
            "qadsm",
            ("en", "de", "fr"),
            ("Bad", "Good"),
            ("query", "ad_title", "ad_description", "label"),
            _pair("query", ("ad_title", "ad_description"), "label"),
            "Query-Ad Matching: is an ad (title + description) relevant to a query",
        ),
        (
            "wpr",
            ("en", "de", "es", "fr", "it", "pt", "zh"),
            ("Bad", "Fair", "Good", "Excellent", "Perfect"),
            ("query", "title", "snippet", "label"),
            _pair("query", ("title", "snippet"), "label"),
            "Web Page Ranking: query/page relevance, 5 grades (trained as 5-way classification; "
            "XGLUE reports nDCG over each query's pages, not computed here)",
        ),
        (
            "qam",
            ("en", "de", "fr"),
            ("False", "True"),
            ("question", "passage", "label"),
            _pair("question", "passage", "label"),
            "QA Matching: does a passage answer a question",
        ),
    ]
    return [
        IntermediateTask(
            name=f"xglue-{task}",
            kind="classification",
            languages=langs,
            default_langs=("en",),
            labels=labels,
            num_choices=None,
            metric="accuracy",
            train_split="train",
            dev_split="dev",
            english=False,
            description=f"XGLUE {desc}",
            reference="XGLUE (Liang et al. 2020)",
            download=xglue,
            label_aliases={str(i): name for i, name in enumerate(labels)},
            splits=splits(task, columns, convert),
        )
        for task, langs, labels, columns, convert, desc in specs
    ]


INTERMEDIATE_TASKS: dict[str, IntermediateTask] = {
    t.name: t
    for t in (
        *_nli_tasks(),
        *_paraphrase_tasks(),
        *_choice_tasks(),
        *_span_tasks(),
        *_tagging_tasks(),
        *_xglue_classification(),
    )
}

# Phang et al. 2020's nine English intermediate tasks.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "english-all": (
        "anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "squad", "sst2",
    ),
}  # fmt: skip

_NAME_ALIASES = {
    "sst-2": "sst2", "sst": "sst2", "multinli": "mnli", "paws-x": "pawsx", "csqa": "commonsenseqa",
    "cosmos": "cosmosqa", "socialiqa": "siqa", "tydiqa-goldp": "tydiqa", "squad1.1": "squad",
    "squad-v1.1": "squad",
}  # fmt: skip


def get_intermediate_task(name: str) -> IntermediateTask:
    """Look a task up by name (case-insensitive, common spellings accepted); unknown names get
    the closest valid ones."""
    key = name.strip().lower().replace("_", "-")
    key = _NAME_ALIASES.get(key, key)
    if key not in INTERMEDIATE_TASKS:
        valid = [*INTERMEDIATE_TASKS, *TASK_GROUPS]
        raise DataError(
            f"unknown intermediate task {name!r}{closest(key, valid)}; "
            f"valid: {', '.join(INTERMEDIATE_TASKS)} (groups: {', '.join(TASK_GROUPS)})"
        )
    return INTERMEDIATE_TASKS[key]


def parse_task_list(spec: str) -> list[IntermediateTask]:
    """``"mnli,squad"`` -> tasks; group names (``english-all``) expand; duplicates dropped."""
    out: list[IntermediateTask] = []
    for raw in spec.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        names = TASK_GROUPS.get(item, (item,))
        out.extend(get_intermediate_task(n) for n in names)
    if not out:
        raise DataError("no intermediate tasks given (e.g. --tasks mnli,squad or english-all)")
    return list({t.name: t for t in out}.values())
