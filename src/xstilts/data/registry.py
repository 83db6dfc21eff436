"""Retrieval task registry: each task is data + metadata, as in MTEB.

Adding a task means adding one :class:`RetrievalTask` here and an evaluator in
:mod:`xstilts.evaluate`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.bucc import BUCC_LANGS, find_splits
from xstilts.data.languages import ALL_TATOEBA, parse_tatoeba_langs, to_laser
from xstilts.data.lareqa import LAREQA_LANGS, lareqa_path
from xstilts.data.mewsli import ENTITY_FILE, MEWSLI_LANGS, mentions_file, mewsli_dir
from xstilts.data.tatoeba import tatoeba_paths
from xstilts.errors import DataError, UsageError, closest


def _fixed_langs(label: str, valid: tuple[str, ...]) -> Callable[[str], list[str]]:
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
                f"unknown {label} language {bad[0]!r}{closest(bad[0], valid)}; "
                f"valid: {', '.join(valid)} (or 'all')"
            )
        return list(dict.fromkeys(items))

    return parse


def _tatoeba_files(data_dir: Path, lang: str) -> list[Path]:
    laser = to_laser(lang) or lang
    base = data_dir / "tatoeba"
    return list(tatoeba_paths(base, laser))


def _bucc_files(data_dir: Path, lang: str) -> list[Path]:
    found = find_splits(data_dir, lang)
    if not found:
        d = data_dir / "bucc2018"
        return [d / f"{lang}-en.dev.{lang}", d / f"{lang}-en.dev.en", d / f"{lang}-en.dev.gold"]
    return [p for triple in found.values() for p in triple if p is not None]


def _lareqa_files(data_dir: Path, lang: str) -> list[Path]:
    return [lareqa_path(data_dir, lang)]


def _mewsli_files(data_dir: Path, lang: str) -> list[Path]:
    return [mentions_file(data_dir)[1], mewsli_dir(data_dir) / ENTITY_FILE]


@dataclass(frozen=True)
class RetrievalTask:
    """Metadata of one zero-shot retrieval task."""

    name: str
    description: str
    languages: tuple[str, ...]
    default_langs: str
    metric: str
    reference: str
    parse_langs: Callable[[str], list[str]]
    files: Callable[[Path, str], list[Path]]  # files expected for one language
    protocols: tuple[str, ...] = ("xtreme",)  # --protocol values; the first is the default
    # what --max-sentences N keeps, for reports ("{n}" is replaced); None: no subset defined
    subset: str | None = None

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
        """Raise a one-line usage error unless ``--max-sentences n`` is valid for this task."""
        if n is None:
            return
        if n < 1:
            raise UsageError(f"--max-sentences must be >= 1, got {n}")
        if self.subset is None:
            names = [t.name for t in TASKS.values() if t.subset is not None]
            raise UsageError(
                f"--max-sentences applies to {' and '.join(names)} only, not {self.name}"
            )


TASKS: dict[str, RetrievalTask] = {
    t.name: t
    for t in (
        RetrievalTask(
            name="tatoeba",
            description="Tatoeba bitext retrieval (LASER v1 test sets), accuracy@1, 112 languages",
            languages=ALL_TATOEBA,
            default_langs="xtreme",
            metric="accuracy",
            reference="Artetxe & Schwenk 2019; XTREME (Hu et al. 2020)",
            parse_langs=parse_tatoeba_langs,
            files=_tatoeba_files,
            protocols=("xtreme", "mteb"),
            subset="the first {n} pairs per language",
        ),
        RetrievalTask(
            name="bucc2018",
            description="BUCC 2018 bitext mining, margin-based, F1 with a tuned threshold",
            languages=BUCC_LANGS,
            default_langs="all",
            metric="f1",
            reference="Zweigenbaum et al. 2018; Artetxe & Schwenk 2019; XTREME",
            parse_langs=_fixed_langs("BUCC 2018", BUCC_LANGS),
            files=_bucc_files,
            protocols=("xtreme", "mteb"),
            subset="every gold pair and {n} lines per side (an easier task than the full split)",
        ),
        RetrievalTask(
            name="lareqa",
            description="LAReQA on XQuAD-R: questions retrieve answer sentences from an "
            "11-language pool, mAP@20 (XTREME-R) and mAP",
            languages=LAREQA_LANGS,
            default_langs="all",
            metric="map@20",
            reference="Roy et al. 2020 (LAReQA); XTREME-R (Ruder et al. 2021)",
            parse_langs=_fixed_langs("LAReQA", LAREQA_LANGS),
            files=_lareqa_files,
        ),
        RetrievalTask(
            name="mewsli-x",
            description="Mewsli-X: entity mentions retrieve their entity's description, mAP@20",
            languages=MEWSLI_LANGS,
            default_langs="all",
            metric="map@20",
            reference="Botha et al. 2020 (Mewsli); XTREME-R (Ruder et al. 2021)",
            parse_langs=_fixed_langs("Mewsli-X", MEWSLI_LANGS),
            files=_mewsli_files,
        ),
    )
}


def get_task(name: str) -> RetrievalTask:
    """Look a task up by name; unknown names list the valid ones."""
    key = name.strip().lower()
    key = {
        "bucc": "bucc2018",
        "bucc18": "bucc2018",
        "mewsli": "mewsli-x",
        "mewslix": "mewsli-x",
    }.get(key, key)
    if key not in TASKS:
        raise DataError(
            f"unknown task {name!r}{closest(key, list(TASKS))}; valid tasks: {', '.join(TASKS)}"
        )
    return TASKS[key]
