"""Pair tasks for the contrastive objective: English pairs, multi-way parallel items, user files.

Every task here has head kind ``contrastive``: its examples are
:class:`~xstilts.intermediate.schema.PairExample` (a query, its positive document, optionally
a hard negative) and the model learns to embed the query next to its document.

* English pairs from labelled classification data, read through the classification task's
  own layouts (so its files, bad-row errors and skipping are the same): ``mnli-pairs`` and
  ``anli-pairs`` (entailment pairs; the contradiction of the same premise, when the data has
  one, is the hard negative, as in supervised SimCSE), ``qqp-pairs`` (duplicate questions; a
  non-duplicate of the same question as the hard negative).
* Multi-way parallel items: XNLI's rows are one set of items in 15 languages (PAWS-X's in 7),
  aligned row for row. ``xnli-parallel`` turns each entailment row into an item whose premise,
  hypothesis and contradiction exist in every language; the batch sampler picks the
  languages, so an item read as (premise in de, hypothesis in sw) is a cross-lingual pair and
  (premise in de, hypothesis in de) a monolingual one, of the same relation. Neither is
  trivial: a query is never paired with its own translation. ``pawsx-parallel`` does the same
  with paraphrase rows. Their ``train`` split is the translate-train data (XNLI-MT, PAWS-X
  ``translated_train``): translate-train pairs are these tasks on that split.
* Translation items: ``xnli-translations`` / ``pawsx-translations`` pair a sentence with its
  own translation (LaBSE-style translation ranking). A "pair" in one language would be the
  sentence and itself, so these items only make cross-lingual pairs.
* ``pairs:PATH`` (or ``pairs:LANG:PATH``, ``pairs:SRC-TGT:PATH``): a user file of
  ``query<TAB>document[<TAB>hard negative]`` lines; the languages say what the training
  record counts (``und`` when not given).

Rows of a multi-way set are aligned by their ids when the files have them (official XNLI
``pairID``, PAWS-X ``id``), else by position, which needs the same number of rows and the
same file layout in every language; anything else is an error naming the counts.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import DataError
from xstilts.intermediate.classification import PAWSX, QQP
from xstilts.intermediate.formats import BadRow, Record, tsv_reader
from xstilts.intermediate.nli import MNLI, XNLI
from xstilts.intermediate.nli import TASKS as NLI_TASKS
from xstilts.intermediate.schema import (
    MULTIWAY,
    ConvertContext,
    IntermediateTask,
    LoadedSplit,
    PairExample,
    Source,
    TextExample,
    pair_lang,
)
from xstilts.paths import resolve_data_dir

log = logging.getLogger(__name__)

UNDETERMINED = "und"
FILE_PREFIX = "pairs:"
_LANG = r"[a-z]{2,3}"
_FILE_SPEC = re.compile(rf"^({_LANG})(?:-({_LANG}))?:(.+)$")


@dataclass(frozen=True, kw_only=True)
class PairTask(IntermediateTask):
    """Pairs derived from a labelled classification task (``base``), read with its layouts.

    ``positive``: the label whose rows are pairs (text_a -> text_b); ``negative``: the label
    whose text_b, for the same text_a, is the hard negative. ``multiway``: the base's languages
    are aligned translations of one set of rows (one item per row, every language).
    ``translations``: items are sentences paired with their own translations.
    """

    base: IntermediateTask
    positive: str = ""
    negative: str | None = None
    multiway: bool = False
    translations: bool = False

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
        """The base task's rows of every language, aligned into items (see the module)."""
        root = resolve_data_dir(data_dir)
        split = self.canonical_split(split)
        chosen = self._resolve_langs(root, split, langs)
        per_lang = {
            lang: self.base.load(root, split, [lang], skip_bad_rows=skip_bad_rows)
            for lang in chosen
        }
        files = [f for loaded in per_lang.values() for f in loaded.files]
        rows = self._aligned(root, split, per_lang)
        names = next(iter(per_lang.values())).labels or ()
        items = self._translations(rows) if self.translations else self._pairs(rows, names)
        if not items:
            raise DataError(f"{self.name} {split}: no {self.positive} rows in {files[0]}")
        if max_examples is not None and max_examples < len(items):
            keep = sorted(random.Random(seed).sample(range(len(items)), max(0, max_examples)))
            items = [items[i] for i in keep]
        skipped = sum(loaded.n_skipped for loaded in per_lang.values())
        return LoadedSplit(self, split, items, None, skipped, files)

    def _aligned(
        self, root: Path, split: str, per_lang: dict[str, LoadedSplit]
    ) -> list[dict[str, TextExample]]:
        """Rows as ``{lang: example}``, one per row present in every language."""
        langs = list(per_lang)
        if len(langs) == 1:
            return [{langs[0]: ex} for ex in per_lang[langs[0]].examples]
        layouts = {lang: self.base._source(root, split, lang).layout for lang in langs}
        if len(set(layouts.values())) > 1:
            shown = ", ".join(f"{k}: {v}" for k, v in layouts.items())
            raise DataError(
                f"{self.name} {split}: languages come from different file layouts ({shown}); "
                "rows are aligned only within one layout"
            )
        keyed = {lang: {_native(ex): ex for ex in s.examples} for lang, s in per_lang.items()}
        shared = set.intersection(*(set(k) for k in keyed.values()))
        counts = {lang: len(s.examples) for lang, s in per_lang.items()}
        if shared:
            order = [k for k in keyed[langs[0]] if k in shared]
            if len(order) < max(counts.values()):
                log.warning(
                    "%s %s: %d rows are in every language of %s",
                    self.name,
                    split,
                    len(order),
                    counts,
                )
            return [{lang: keyed[lang][k] for lang in langs} for k in order]
        if len(set(counts.values())) > 1:
            raise DataError(
                f"{self.name} {split}: rows cannot be aligned across languages: "
                f"{', '.join(f'{k} {v}' for k, v in counts.items())} rows and no shared ids"
            )
        columns = [s.examples for s in per_lang.values()]
        return [dict(zip(langs, row, strict=True)) for row in zip(*columns, strict=True)]

    def _pairs(
        self, rows: list[dict[str, TextExample]], names: tuple[str, ...]
    ) -> list[PairExample]:
        """One item per ``positive`` row; the ``negative`` row of the same text_a gives the hard
        negative. A row counts only when every language has the same label (a translation can
        change a PAWS-X label: 32 of its 2,000 dev rows); rows are grouped by their English
        text_a (else the first language's)."""
        label = {name: i for i, name in enumerate(names)}
        pos, neg = label.get(self.positive), label.get(self.negative or "")
        negatives: dict[str, dict[str, str]] = {}
        for row in rows:
            ref = _reference(row)
            if neg is not None and _agreed(row) == neg:
                negatives.setdefault(
                    ref.text_a, {lang: ex.text_b or "" for lang, ex in row.items()}
                )
        items = []
        for row in rows:
            ref = _reference(row)
            if _agreed(row) != pos or ref.text_b is None:
                continue
            items.append(
                PairExample(
                    uid=ref.uid if not self.multiway else f"{MULTIWAY}:{_native(ref)}",
                    lang=MULTIWAY if self.multiway else ref.lang,
                    query={lang: r.text_a for lang, r in row.items()},
                    doc={lang: r.text_b or "" for lang, r in row.items()},
                    negative=negatives.get(ref.text_a, {}),
                )
            )
        return items

    def _translations(self, rows: list[dict[str, TextExample]]) -> list[PairExample]:
        """Every distinct sentence (by its English, else first-language, text) as an item
        paired with its translations."""
        seen: dict[str, PairExample] = {}
        for row in rows:
            ref = _reference(row)
            for side in ("text_a", "text_b"):
                text = getattr(ref, side)
                if text is None or text in seen:
                    continue
                versions = {lang: getattr(ex, side) or "" for lang, ex in row.items()}
                uid = f"{MULTIWAY}:{_native(ref)}:{side[-1]}"
                seen[text] = PairExample(uid, MULTIWAY, versions, versions, identity=True)
        return list(seen.values())


def _reference(row: dict[str, TextExample]) -> TextExample:
    """The row's English version, else its first language's."""
    return row.get("en") or next(iter(row.values()))


def _agreed(row: dict[str, TextExample]) -> int | None:
    """The row's label when every language has it, else None."""
    labels = {ex.label for ex in row.values()}
    return labels.pop() if len(labels) == 1 else None


def _native(ex: TextExample) -> str:
    """A row's id without its language (``de:123`` -> ``123``). A row without an id has a
    positional one naming its file (``de:dev-de:5``), never shared across languages."""
    return ex.uid.split(":", 1)[1]


def _derived(
    name: str, base: IntermediateTask, description: str, *, splits: dict | None = None, **kw
) -> PairTask:
    return PairTask(
        name=name,
        kind="contrastive",
        description=description,
        reference=base.reference,
        languages=base.languages,
        default_langs=base.default_langs,
        download=base.download,
        metric="accuracy",
        base=base,
        splits=splits or {s: base.splits[s] for s in ("train", "dev") if s in base.splits},
        **kw,
    )


def _only(task: IntermediateTask, split: str, layouts: tuple[str, ...]) -> tuple[Source, ...]:
    return tuple(s for s in task.splits[split] if s.layout in layouts)


_ANLI = next(t for t in NLI_TASKS if t.name == "anli")
_XNLI_SPLITS = {"train": _only(XNLI, "train", ("XNLI-MT 1.0",)), "dev": XNLI.splits["dev"]}
_NLI = {"positive": "entailment", "negative": "contradiction"}
_PAWS = {"positive": "paraphrase", "negative": "not_paraphrase"}

TASKS = (
    _derived("mnli-pairs", MNLI, "MNLI entailment pairs (premise -> hypothesis); the "
             "contradiction of the same premise as hard negative", **_NLI),
    _derived("anli-pairs", _ANLI, "ANLI rounds 1-3 entailment pairs; contradiction of the same "
             "premise as hard negative", **_NLI),
    _derived("qqp-pairs", QQP, "QQP duplicate questions; a non-duplicate of the same question "
             "as hard negative", positive="duplicate", negative="not_duplicate"),
    _derived("xnli-parallel", XNLI, "XNLI entailment items in 15 aligned languages: premise in "
             "one language -> hypothesis in the same or another, contradiction as hard "
             "negative; train = XNLI-MT (translate-train)", splits=_XNLI_SPLITS, multiway=True,
             **_NLI),
    _derived("pawsx-parallel", PAWSX, "PAWS-X paraphrase items in 7 aligned languages; train = "
             "translate-train", multiway=True, **_PAWS),
    _derived("xnli-translations", XNLI, "XNLI sentences paired with their translations "
             "(cross-lingual only); train = XNLI-MT", splits=_XNLI_SPLITS, multiway=True,
             translations=True, positive="entailment"),
    _derived("pawsx-translations", PAWSX, "PAWS-X sentences paired with their translations "
             "(cross-lingual only)", multiway=True, translations=True, positive="paraphrase"),
)  # fmt: skip

# The contrastive form of a classification task (``objective: contrastive`` for that task).
PAIR_VIEWS = {
    "mnli": "mnli-pairs",
    "anli": "anli-pairs",
    "qqp": "qqp-pairs",
    "xnli": "xnli-parallel",
    "pawsx": "pawsx-parallel",
}


# --------------------------------------------------------------------------- user files


def _file_pair(
    query_lang: str, doc_lang: str
) -> Callable[[Record, ConvertContext, int], PairExample]:
    """Converter of ``query<TAB>document[<TAB>hard negative]`` rows."""

    def convert(rec: Record, ctx: ConvertContext, k: int) -> PairExample:
        if rec.get("doc") is None:
            raise BadRow("expected query<TAB>document[<TAB>hard negative], found 1 field")
        for column, what in (
            ("query", "query"),
            ("doc", "document"),
            ("negative", "hard negative"),
        ):
            value = rec.get(column)
            if value is not None and not value.strip():
                raise BadRow(f"empty {what}")
        neg = rec.get("negative")
        return PairExample(
            uid=ctx.uid(None, k),
            lang=pair_lang(query_lang, doc_lang),
            query={query_lang: rec["query"]},
            doc={doc_lang: rec["doc"]},
            negative={doc_lang: neg} if neg is not None else {},
        )

    return convert


def is_pair_file(name: str) -> bool:
    """Whether a task name is a user pairs file (``pairs:...``)."""
    return name.strip().lower().startswith(FILE_PREFIX)


def pair_file_task(name: str) -> IntermediateTask:
    """The task of ``pairs:PATH`` / ``pairs:LANG:PATH`` / ``pairs:SRC-TGT:PATH``: the file is
    its ``train`` split (dev: 10% held out); a relative path is relative to the working
    directory. The name is kept as written (it is what the run records)."""
    rest = name.strip()[len(FILE_PREFIX) :]
    match = _FILE_SPEC.match(rest)
    if match and not Path(rest).exists():
        src, tgt, path = match.group(1), match.group(2) or match.group(1), match.group(3)
    else:
        src = tgt = UNDETERMINED
        path = rest
    if not path.strip():
        raise DataError(f"{name!r}: give a file, e.g. pairs:de-en:data/pairs.tsv")
    label = pair_lang(src, tgt)
    return IntermediateTask(
        name=name.strip(),
        kind="contrastive",
        description=f"user pairs ({label}) from {path}",
        reference="user file",
        languages=(label,),
        default_langs=(label,),
        splits={
            "train": (
                Source(
                    str(Path(path).expanduser().absolute()),
                    tsv_reader(("query", "doc", "negative")),
                    _file_pair(src, tgt),
                    "query<TAB>document[<TAB>hard negative]",
                ),
            )
        },
    )
