"""File layouts and label conventions that several task families share.

GLUE's JSON subsets (MNLI, QQP), XTREME's preprocessed copies (XNLI, PAWS-X, XCOPA), the XGLUE
tarball's folders (read by XNLI, PAWS-X, MLQA, the tagging tasks and XGLUE's own classification
tasks) and GLUE-style ``0``/``1`` labels are declared once here; everything particular to one
family stays in its module.
"""

from __future__ import annotations

from typing import Any

from xstilts.intermediate.converters import pair
from xstilts.intermediate.formats import Reader, read_json_records
from xstilts.intermediate.schema import Converter, Source

GLUE = "https://gluebenchmark.com/tasks"
XGLUE = "https://microsoft.github.io/XGLUE/ (xglue_full_dataset.tar.gz)"


def binary_aliases(labels: tuple[str, str]) -> dict[str, str]:
    """GLUE-style ``0``/``1`` labels -> names."""
    return {"0": labels[0], "1": labels[1]}


def glue_json(split: str, task: str) -> Source:
    """The GLUE JSON subset of a task (``{task}/glue_pretrain_{split}.json``)."""
    return Source(
        f"{task}/glue_pretrain_{split}.json",
        read_json_records,
        pair("text_a", "text_b", "label", "idx"),
        "GLUE JSON subset",
    )


def xtreme(
    path: str,
    read: Reader,
    convert: Converter,
    *,
    hidden: bool = False,
    layout: str = "XTREME",
    **kw: Any,
) -> Source:
    """A file of XTREME's (or XTREME-R's) preprocessed copies; ``hidden``: its labels were
    removed (their test splits), so it loads unlabelled."""
    if hidden:
        layout, kw = f"{layout} (labels hidden)", {**kw, "labelled": False}
    return Source(path, read, convert, layout, **kw)


def xtreme_splits(
    task: str, read: Reader, convert: Converter, **others: tuple[Source, ...]
) -> dict[str, tuple[Source, ...]]:
    """Train/dev/test of a task XTREME preprocessed (``{task}/{split}-{lang}.tsv``): its copy is
    read first for train and dev, last for test (labels hidden there, so an official labelled
    copy wins). ``others``: each split's other layouts, in order of preference."""

    def copy(split: str, **kw: Any) -> Source:
        return xtreme(f"{task}/{split}-{{lang}}.tsv", read, convert, **kw)

    return {
        "train": (copy("train"), *others["train"]),
        "dev": (copy("dev"), *others["dev"]),
        "test": (*others["test"], copy("test", hidden=True)),
    }


def xglue(rel: str, read: Reader, convert: Converter, **kw: Any) -> tuple[Source, ...]:
    """XGLUE files under ``xglue/`` (the tarball's folder renamed) or ``xglue_full_dataset/``."""
    return tuple(
        Source(f"{root}/{rel}", read, convert, "XGLUE", **kw)
        for root in ("xglue", "xglue_full_dataset")
    )
