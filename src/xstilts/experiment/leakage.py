"""The leakage guard: training text must not be evaluation text, unless the user says so.

A "gain" measured on sentences the model was trained on is not zero-shot. Before anything is
trained, every text a training run reads (its task rows and its auxiliary MLM text, and each
sentence inside a long field such as a QA paragraph) is normalised and hashed, and the hashes
are looked up in the set of every text the spec's evaluations embed (queries, candidates, both
sides of a bitext; :meth:`xstilts.tasks.RetrievalTask.texts`). An overlap stops the run with one
line naming the training source, the evaluation task and the number of overlapping texts;
``--allow-overlap`` proceeds and records the overlap for the report.

What stops a run: an overlap that covers at least :data:`CONTAMINATION_SHARE` of the texts one
evaluation language embeds. Smaller overlaps are recorded, printed and reported, but do not
stop anything. Measured over the offline data (``benchmarks/bench_leakage.py``, see
docs/benchmarks.md): 9k MNLI rows share 24 everyday English sentences with Tatoeba's 112
languages ("are you a teacher?", "better late than never."), 9k QQP rows 28, HellaSwag 12; the
largest share of one language is 0.75 % (two sentences of a 100-pair language), and full-size
training sets will find more of them. A hard stop on any shared sentence would refuse every
MNLI-vs-Tatoeba study and teach users to pass ``--allow-overlap`` by reflex. Training on an
evaluation file (MLM on a Tatoeba side: 100 %) or on its source (XQuAD for LAReQA: 79 % of a
language's texts) is far above the threshold.

Normalisation: Unicode NFKC, case-folded, whitespace collapsed. Texts of fewer than
:data:`MIN_WORDS` words and :data:`MIN_CHARS` characters (greetings, "Yes.", "Thank you.") are
left out: they occur in any corpus, and their "overlap" says nothing about contamination. The
cost is sets of 8-byte hashes: seconds for the whole offline data.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xstilts.errors import UsageError
from xstilts.tasks import TaskRequest, check_request
from xstilts.train.config import TrainConfig
from xstilts.train.data import select_examples, training_tasks
from xstilts.train.objectives import mlm_texts

MIN_WORDS = 4
CONTAMINATION_SHARE = 0.05  # of one evaluation language's texts: above it the run stops
MIN_CHARS = 16  # scripts without spaces (Chinese, Japanese, Thai): characters instead of words
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _substantial(norm: str) -> bool:
    return len(norm.split()) >= MIN_WORDS or len(norm) >= MIN_CHARS


def text_key(norm: str) -> int:
    """An 8-byte hash of a normalised text."""
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "big")


def units(text: str) -> Iterator[str]:
    """The normalised text and, for a long one, each of its sentences (a paragraph that holds
    an evaluation sentence is caught too), substantial ones only."""
    norm = normalize_text(text)
    if _substantial(norm):
        yield norm
    parts = _SENTENCE_END.split(norm)
    if len(parts) > 1:
        yield from (p for p in parts if _substantial(p))


@dataclass
class EvalIndex:
    """Hashes of every text each evaluation language embeds (keyed ``(task, lang)``), and one
    readable example per hash."""

    keys: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    shown: dict[int, str] = field(default_factory=dict)

    def add(self, task: str, lang: str, texts: Iterable[str]) -> None:
        bucket = self.keys.setdefault((task, lang), set())
        for text in texts:
            for unit in units(text):
                k = text_key(unit)
                bucket.add(k)
                self.shown.setdefault(k, unit)


def eval_index(requests: list[TaskRequest], data_dir: Path) -> EvalIndex:
    """The evaluation texts of every requested task and language."""
    index = EvalIndex()
    for request in requests:
        task, langs = check_request(request)
        for lang in langs:
            index.add(task.name, lang, task.texts(data_dir, [lang]))
    return index


@dataclass(frozen=True)
class Overlap:
    """Training texts of one source found among one evaluation's texts."""

    source: str  # an intermediate task, or "mlm"
    evaluation: str
    n: int  # distinct overlapping texts, all languages of the evaluation
    examples: tuple[str, ...]
    share: float = 0.0  # the largest share of one language's texts that overlaps
    lang: str = ""  # that language

    @property
    def contaminating(self) -> bool:
        """At or above :data:`CONTAMINATION_SHARE`: the run stops unless allowed."""
        return self.share >= CONTAMINATION_SHARE

    def describe(self) -> str:
        shown = "; ".join(repr(e[:60]) for e in self.examples[:2])
        return (
            f"training {self.source} x evaluation {self.evaluation}: {self.n} texts, "
            f"{100 * self.share:.1f}% of {self.lang}'s ({shown})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_sources(cfg: TrainConfig, data_dir: Path) -> Iterator[tuple[str, Iterable[str]]]:
    """``(source, texts)`` of everything a run of ``cfg`` reads: each task's training rows (the
    rows it will select, in the form its objective trains: a pair task's items in every
    language, hard negatives included) and the auxiliary MLM text."""
    for task in training_tasks(cfg):
        examples = select_examples(task, cfg, data_dir)
        yield task.name, (t for ex in examples for t in ex.texts())
    if cfg.mlm_aux:
        yield "mlm", (text for text, _ in mlm_texts(cfg.mlm_data, data_dir))


def find_overlaps(cfg: TrainConfig, index: EvalIndex, data_dir: Path) -> list[Overlap]:
    """Every (training source, evaluation) pair that shares substantial texts."""
    found = []
    tasks = sorted({task for task, _ in index.keys})
    for source, texts in training_sources(cfg, data_dir):
        keys = {text_key(u) for text in texts for u in units(text)}
        for evaluation in tasks:
            common: set[int] = set()
            worst = (0.0, "")
            for (task, lang), eval_keys in index.keys.items():
                if task != evaluation or not eval_keys:
                    continue
                hit = keys & eval_keys
                common |= hit
                worst = max(worst, (len(hit) / len(eval_keys), lang))
            if common:
                shown = tuple(sorted(index.shown[k] for k in common)[:3])
                found.append(Overlap(source, evaluation, len(common), shown, *worst))
    return found


def check(
    cfg: TrainConfig, index: EvalIndex, data_dir: Path, *, allow: bool, where: str
) -> list[Overlap]:
    """The overlaps of one run, returned to be recorded and reported; a contaminating one
    (:attr:`Overlap.contaminating`) is an error unless ``allow``."""
    overlaps = find_overlaps(cfg, index, data_dir)
    stopping = [o for o in overlaps if o.contaminating]
    if stopping and not allow:
        first = max(stopping, key=lambda o: o.share)
        more = f" (and {len(stopping) - 1} more pairs)" if len(stopping) > 1 else ""
        raise UsageError(
            f"{where}: training text overlaps evaluation text: {first.describe()}{more}; "
            f"at or above {100 * CONTAMINATION_SHARE:.0f}% of a language's texts is "
            "contamination: remove it, or pass --allow-overlap to proceed (the overlap is "
            "recorded and reported)"
        )
    return overlaps
