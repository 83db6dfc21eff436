"""What an intermediate task is: its examples, its file layouts, its metadata and its loader.

A task (:class:`IntermediateTask`) says what it is (head kind, languages, labels, metric,
reference) and where its files may be, per split, as an ordered list of :class:`Source`
layouts: the official release first or last, whichever is more complete, and the copies in
``../shared/data`` (XTREME/XTREME-R preprocessed files, GLUE JSON subsets). The first layout
whose files exist is read.

The defaults are the common case, so a task declaration states only what is particular to it:
English only (``languages`` and ``default_langs`` ``("en",)``), splits ``train``/``dev``,
metric ``accuracy``, no fixed label set, no fixed number of choices. :attr:`english` is derived
from the languages.

Parsing is split in two so no two loaders repeat each other:

* readers (:mod:`xstilts.intermediate.formats`) turn a file format into ``(line, record)``
  pairs;
* converters (:mod:`xstilts.intermediate.converters`) turn a record into an example,
  validating its label / answer span, with a :class:`ConvertContext` supplied by the loader.

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

from xstilts.errors import DataError, closest
from xstilts.intermediate.formats import BadRow, Reader, Record, Row, RowPolicy, sidecar_path
from xstilts.paths import resolve_data_dir

HeadKind = Literal["classification", "multiple_choice", "span", "tagging", "contrastive"]

UNLABELLED = -1  # label of an example from a split that has no labels (prediction only)
UNK_TAG = "<unk>"  # last entry of a tag set derived from data: tags unseen in training
ENGLISH = ("en",)


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class TextExample:
    """Single-sentence (``text_b=None``) or sentence-pair classification."""

    uid: str
    lang: str
    text_a: str
    text_b: str | None
    label: int

    def texts(self) -> list[str]:
        """The texts a model reads from this example (for the leakage guard)."""
        return [self.text_a] + ([self.text_b] if self.text_b else [])


@dataclass(frozen=True)
class ChoiceExample:
    """Multiple choice: a context (premise / question / story) and its candidate answers."""

    uid: str
    lang: str
    context: str
    choices: tuple[str, ...]
    label: int

    def texts(self) -> list[str]:
        """The texts a model reads from this example (for the leakage guard)."""
        return [self.context, *self.choices]


@dataclass(frozen=True)
class SpanExample:
    """Extractive QA; ``answers`` are ``(char_start, text)`` into ``context``."""

    uid: str
    lang: str
    question: str
    context: str
    answers: tuple[tuple[int, str], ...]

    def texts(self) -> list[str]:
        """The texts a model reads from this example (for the leakage guard)."""
        return [self.question, self.context]


@dataclass(frozen=True)
class TaggingExample:
    """One tag per word; ``tags`` index into the split's label set."""

    uid: str
    lang: str
    tokens: tuple[str, ...]
    tags: tuple[int, ...]

    def texts(self) -> list[str]:
        """The texts a model reads from this example (for the leakage guard)."""
        return [" ".join(self.tokens)]


@dataclass(frozen=True)
class PairExample:
    """Contrastive training item: a query, its positive document and optionally a hard negative.

    Each side maps a language to its text. A *fixed* pair has one language per side (an MNLI
    entailment pair: ``{"en": premise}`` -> ``{"en": hypothesis}``; a user's de-en file). A
    *multi-way* item (XNLI's rows, aligned across 15 languages) has every side in every
    language, and the batch sampler decides which language each side is read in, so one item
    gives monolingual and cross-lingual pairs alike. ``identity``: the query and the document
    are the same sentence (translation items), so a pair in one language would be trivial.
    ``lang`` is the fixed pair's language (``de-en`` across two, sorted) or ``mul``.
    """

    uid: str
    lang: str
    query: Mapping[str, str]
    doc: Mapping[str, str]
    negative: Mapping[str, str] = field(default_factory=dict)
    identity: bool = False

    @property
    def multiway(self) -> bool:
        """Whether the sampler chooses the languages (every side in several languages)."""
        return self.lang == MULTIWAY

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the item's rows are in (what the training record counts as rows)."""
        return tuple(self.query) if self.multiway else (self.lang,)

    def texts(self) -> list[str]:
        """The texts a model reads from this example (for the leakage guard)."""
        sides = (self.query, self.doc, self.negative)
        return list(dict.fromkeys(text for side in sides for text in side.values()))


MULTIWAY = "mul"  # the ``lang`` of a multi-way parallel pair item (ISO 639-2 "multiple languages")


def pair_lang(query_lang: str, doc_lang: str) -> str:
    """How a pair's languages are recorded: ``en`` for a pair within one language, the two codes
    sorted and joined (``de-en``) across two. Anything but ``en`` counts as non-English."""
    return query_lang if query_lang == doc_lang else "-".join(sorted((query_lang, doc_lang)))


Example = TextExample | ChoiceExample | SpanExample | TaggingExample | PairExample


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


# --------------------------------------------------------------------------- converter input


@dataclass
class ConvertContext:
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


# A converter turns the k-th record of a file into an example (or raises BadRow).
Converter = Callable[[Record, ConvertContext, int], Example]


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One file layout for one split: where the files are, how to read and convert them.

    ``paths`` (one string or several) are relative to the data directory, ``{lang}`` is filled
    in, and all of them are read and concatenated (ANLI's three rounds). ``langs`` limits the
    languages this layout has (None: all the task's). ``keep`` selects one language's rows from
    a multi-language file (official XNLI, TyDiQA). ``sidecar`` names a labels file next to each
    path.
    """

    paths: str | tuple[str, ...]
    read: Reader
    convert: Converter
    layout: str
    labelled: bool = True
    langs: tuple[str, ...] | None = None
    keep: Callable[[Record, str], bool] | None = None
    sidecar: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.paths, str):
            object.__setattr__(self, "paths", (self.paths,))

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


# --------------------------------------------------------------------------- the task object


_SPLIT_ALIASES = {"validation": "dev", "val": "dev", "valid": "dev", "eval": "dev"}


@dataclass(frozen=True, kw_only=True)
class IntermediateTask:
    """Metadata and loader of one intermediate (fine-tuning) task."""

    name: str
    kind: HeadKind
    description: str
    reference: str
    languages: tuple[str, ...] = ENGLISH
    default_langs: tuple[str, ...] = ENGLISH  # what ``langs=None`` loads
    labels: tuple[str, ...] | None = None  # None when derived from the data (CCG) or not applicable
    num_choices: int | None = None
    metric: str = "accuracy"  # "accuracy" | "f1" (SQuAD F1) | "entity_f1"
    train_split: str = "train"
    dev_split: str = "dev"
    download: str = ""  # where to get the full data
    splits: Mapping[str, tuple[Source, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    label_aliases: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def english(self) -> bool:
        """True for English-only intermediate tasks (reports: English vs multilingual)."""
        return self.languages == ENGLISH

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
        root = resolve_data_dir(data_dir)
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
        root = resolve_data_dir(data_dir)
        split = self.canonical_split(split)
        chosen = self._resolve_langs(root, split, langs)
        policy = RowPolicy(skip=skip_bad_rows)
        groups, files = self._read(root, split, chosen)
        label_set = self._label_set(root, split, chosen, groups, labels)
        examples = self._convert(groups, label_set, policy)
        if not examples:
            raise DataError(f"{self.name} {split}: no usable rows in {', '.join(map(str, files))}")
        if max_examples is not None and max_examples < len(examples):
            keep = sorted(random.Random(seed).sample(range(len(examples)), max(0, max_examples)))
            examples = [examples[i] for i in keep]
        return LoadedSplit(self, split, examples, label_set, policy.n_skipped, files)

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

    def _read(self, root: Path, split: str, langs: list[str]) -> tuple[list[_Group], list[Path]]:
        """The rows of every language's files, and the files read (each read once)."""
        read_cache: dict[Path, list[Row]] = {}
        groups: list[_Group] = []
        for lang in langs:
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
        return groups, list(read_cache)

    def _convert(
        self, groups: list[_Group], label_set: tuple[str, ...] | None, policy: RowPolicy
    ) -> list[Example]:
        """Records -> examples in file order; bad rows go through ``policy``; uids unique."""
        examples: list[Example] = []
        seen: set[str] = set()
        for lang, src, path, rows in groups:
            ctx = ConvertContext(
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
        return examples

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


def _exists(paths: list[Path]) -> bool:
    return all(p.is_file() for p in paths)
