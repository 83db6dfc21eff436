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
from xstilts.data.tatoeba import tatoeba_paths
from xstilts.errors import DataError, closest


def _parse_bucc_langs(spec: str) -> list[str]:
    items = [s.strip().lower() for s in spec.split(",") if s.strip()]
    if items in (["all"], ["xtreme"]):
        return list(BUCC_LANGS)
    bad = [s for s in items if s not in BUCC_LANGS]
    if bad or not items:
        raise DataError(
            f"unknown BUCC 2018 language {bad[0] if bad else spec!r}; "
            f"valid: {', '.join(BUCC_LANGS)} (or 'all')"
        )
    return list(dict.fromkeys(items))


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
        ),
        RetrievalTask(
            name="bucc2018",
            description="BUCC 2018 bitext mining, margin-based, F1 with a tuned threshold",
            languages=BUCC_LANGS,
            default_langs="all",
            metric="f1",
            reference="Zweigenbaum et al. 2018; Artetxe & Schwenk 2019; XTREME",
            parse_langs=_parse_bucc_langs,
            files=_bucc_files,
        ),
    )
}


def get_task(name: str) -> RetrievalTask:
    """Look a task up by name; unknown names list the valid ones."""
    key = name.strip().lower()
    if key in ("bucc", "bucc18"):
        key = "bucc2018"
    if key not in TASKS:
        raise DataError(
            f"unknown task {name!r}{closest(key, list(TASKS))}; valid tasks: {', '.join(TASKS)}"
        )
    return TASKS[key]
