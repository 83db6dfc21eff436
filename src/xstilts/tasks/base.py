"""What a retrieval task is: one object that carries everything about it.

A task (a subclass of :class:`RetrievalTask`, one module each: :mod:`.tatoeba`, :mod:`.bucc`,
:mod:`.lareqa`, :mod:`.mewsli`) declares its metadata (languages, metric, reference,
protocols, what a ``--max-sentences`` subset means), where its files are and how to download
them, how to evaluate it (:meth:`RetrievalTask.evaluate`, which encodes through
:class:`~xstilts.tasks.context.EvalContext`), its headline metrics for reports
(:class:`Headline`), its console tables (:class:`ConsoleTable`) and its MTEB export mapping
(:class:`MtebTask`). The registry (:mod:`.registry`) is the only list of tasks: nothing outside
a task's module names it, so adding a task is one module and one registration (MTEB's
``AbsTask``, lm-evaluation-harness's task registry).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from xstilts.errors import DataError, UsageError, closest
from xstilts.metrics import Statistic

if TYPE_CHECKING:
    from xstilts.data.fetch import Download
    from xstilts.tasks.context import EvalContext
    from xstilts.tasks.settings import EvalSettings

Rows = list[dict[str, Any]]
# per-sentence item kind holding each item's group (a LAReQA article, a Mewsli-X document):
# held-out selection splits keep a group's items together
GROUP_KIND = "group"


@dataclass(frozen=True)
class Headline:
    """One headline metric of a task: which stored rows it reads, how it is labelled, and
    which per-sentence items reproduce it (for paired bootstrap intervals in reports)."""

    task: str
    metric: str
    direction: str | None
    label: str
    protocol: str = "xtreme"
    kinds: tuple[str, ...] = ("correct",)
    statistic: Statistic = "mean"  # the mean of the items, or P/R/F1 of their summed counts

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``tatoeba en->x`` or ``bucc2018 mteb f1``."""
        if self.protocol != "xtreme":
            return f"{self.task} {self.protocol} {self.metric}"
        return f"{self.task} {self.direction or self.metric}"


@dataclass(frozen=True)
class ConsoleTable:
    """A table for the terminal, as plain text cells (the CLI draws it)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    bold_last_row: bool = False


@dataclass(frozen=True)
class SearchWork:
    """One search an evaluation runs for every evaluated layer: ``queries`` rows against
    ``corpus`` rows through ``run`` (the task's own search function, called with L2-normalised
    ``(queries, corpus)`` arrays). Run-time estimates (:mod:`xstilts.experiment.estimate`) time
    ``run`` here on random vectors of these sizes, on a sample of the queries when there are
    many (the cost is linear in the queries: each is searched on its own); ``label`` names the
    kind of search, so equal searches are timed once."""

    queries: int
    corpus: int
    run: Callable[[np.ndarray, np.ndarray], object]
    label: str


def knn_search(queries: int, corpus: int, k: int, backend: str) -> SearchWork:
    """A top-``k`` exact search through :func:`xstilts.retrieval.knn.knn` (Tatoeba, BUCC)."""
    from xstilts.retrieval.knn import knn

    return SearchWork(queries, corpus, partial(knn, k=k, backend=backend), f"knn k={k} {backend}")


def _rank(
    queries: np.ndarray, corpus: np.ndarray, *, k: int, width: int, full: bool, backend: str
) -> object:
    from xstilts.retrieval.ranking import average_precisions

    relevant = [np.arange(min(width, len(corpus)))] * len(queries)
    return average_precisions(queries, corpus, relevant, k=k, full=full, backend=backend)


def ranking_search(
    queries: int, corpus: int, k: int, *, relevant: int, full: bool, backend: str
) -> SearchWork:
    """Average precision of every query's ranking (:func:`~xstilts.retrieval.ranking.
    average_precisions`: top ``k``, or the full ranking, LAReQA's mAP); ``relevant``: the most
    relevant candidates a query has (what the per-query relevance check compares against)."""
    run = partial(_rank, k=k, width=relevant, full=full, backend=backend)
    label = f"ranking k={k} full={full} relevant={relevant} {backend}"
    return SearchWork(queries, corpus, run, label)


@dataclass(frozen=True)
class MtebTask:
    """Which MTEB task a protocol's rows correspond to (name and dataset revision)."""

    name: str
    revision: str


def fixed_langs(label: str, valid: Sequence[str]) -> Callable[[str], list[str]]:
    """A language parser for a task with a fixed language set (``all``/``xtreme`` = all)."""

    def parse(spec: str) -> list[str]:
        items = [s.strip().lower() for s in spec.split(",") if s.strip()]
        if not items:
            raise DataError(f"no {label} languages given; valid: {', '.join(valid)} (or 'all')")
        if items in (["all"], ["xtreme"], ["xtreme-r"]):
            return list(valid)
        bad = [s for s in items if s not in valid]
        if bad:
            raise DataError(
                f"unknown {label} language {bad[0]!r}{closest(bad[0], list(valid))}; "
                f"valid: {', '.join(valid)} (or 'all')"
            )
        return list(dict.fromkeys(items))

    return parse


class RetrievalTask(ABC):
    """One zero-shot retrieval task (see the module docstring). Subclasses set the class
    attributes and implement :meth:`evaluate`, :meth:`files` and :meth:`parse_langs`."""

    name: ClassVar[str]
    description: ClassVar[str]
    languages: ClassVar[tuple[str, ...]]
    default_langs: ClassVar[str] = "all"
    metric: ClassVar[str]
    reference: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    protocols: ClassVar[tuple[str, ...]] = ("xtreme",)  # --protocol values; first = default
    # what --max-sentences N keeps, for reports ("{n}" is replaced); None: no subset defined
    subset: ClassVar[str | None] = None
    headlines: ClassVar[tuple[Headline, ...]] = ()
    # splits whose numbers come with a threshold tuned on them (reports call them optimistic)
    tuning_splits: ClassVar[tuple[str, ...]] = ()
    mteb_tasks: ClassVar[dict[str, MtebTask]] = {}  # results ``protocol`` value -> MTEB task
    fetchable: ClassVar[bool] = False  # ``xstilts data fetch`` can download it (downloads())

    # ------------------------------------------------------------------ data

    @abstractmethod
    def parse_langs(self, spec: str) -> list[str]:
        """Expand a language spec (a set name or a comma list) to result codes."""

    @abstractmethod
    def files(self, data_dir: Path, lang: str) -> list[Path]:
        """The files one language needs under ``data_dir`` (for ``xstilts data list``)."""

    @abstractmethod
    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        """Every text an evaluation of ``langs`` (on the quick subset ``max_sentences``, if
        given) embeds: queries, candidates, both sides of a bitext. The leakage guard checks
        training text against the full sets, so every task must list them."""

    def searches(
        self,
        data_dir: Path,
        langs: list[str],
        settings: EvalSettings,
        protocol: str = "xtreme",
        max_sentences: int | None = None,
    ) -> list[SearchWork] | None:
        """The searches one layer of an evaluation of ``langs`` runs (for run-time estimates:
        with many layers or large sets, search can take as long as encoding). None: not
        declared (a plug-in task); estimates then leave its search out and say so."""
        return None

    def downloads(self, base_url: str | None, langs: list[str] | None) -> list[Download]:
        """The files ``xstilts data fetch`` downloads for this task (with their checksums)."""
        raise DataError(f"{self.name} cannot be fetched automatically")

    # ------------------------------------------------------------------ evaluation

    @abstractmethod
    def evaluate(self, ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
        """Evaluate ``ctx``'s languages: ``(tidy metric rows, sizes)``."""

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        """The terminal view of a results document of this task."""
        return []

    def mteb_subset(self, lang: str) -> tuple[str, list[str]]:
        """MTEB's ``hf_subset`` and ``languages`` for one language (MTEB export)."""
        raise DataError(f"{self.name} has no MTEB export")

    # ------------------------------------------------------------------ checks

    def check_protocol(self, protocol: str) -> None:
        """Raise a one-line usage error unless ``protocol`` is defined for this task."""
        if protocol not in self.protocols:
            raise UsageError(
                f"--protocol {protocol!r} does not apply to {self.name} "
                f"(choose {' or '.join(self.protocols)})"
            )

    def check_options(self, protocol: str, max_sentences: int | None) -> None:
        """Raise a one-line usage error unless the protocol and subset apply to this task."""
        self.check_protocol(protocol)
        self.check_max_sentences(max_sentences)

    def describe_subset(self, n: int) -> str:
        """What ``--max-sentences n`` evaluates, in words (for reports)."""
        if self.subset is None:
            raise UsageError(f"--max-sentences does not apply to {self.name}")
        return self.subset.format(n=n)

    def check_max_sentences(self, n: int | None) -> None:
        """Raise a one-line usage error unless ``--max-sentences n`` is valid for this task
        (the registry's :func:`~xstilts.tasks.registry.check_request` names the tasks it
        applies to)."""
        if n is None:
            return
        if n < 1:
            raise UsageError(f"--max-sentences must be >= 1, got {n}")
        if self.subset is None:
            raise UsageError(f"--max-sentences does not apply to {self.name}")
