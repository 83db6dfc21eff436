"""Intermediate (fine-tuning) tasks: what they are, where their files are, how they load.

Modules, from the bottom up:

* :mod:`~xstilts.intermediate.formats`: one record reader per file format;
* :mod:`~xstilts.intermediate.schema`: example types, :class:`Source` layouts,
  :class:`IntermediateTask` (metadata with the common case as defaults, and the loader);
* :mod:`~xstilts.intermediate.converters`: record -> example, one per example shape;
* :mod:`~xstilts.intermediate.layouts`: layouts several families share (GLUE JSON, XGLUE);
* the catalogue, one module per family, each declaring ``TASKS``:
  :mod:`~xstilts.intermediate.nli`, :mod:`~xstilts.intermediate.classification`,
  :mod:`~xstilts.intermediate.choice`, :mod:`~xstilts.intermediate.qa`,
  :mod:`~xstilts.intermediate.tagging`, :mod:`~xstilts.intermediate.xglue`,
  :mod:`~xstilts.intermediate.pairs` (pair tasks for the contrastive objective);
* :mod:`~xstilts.intermediate.registry`: the one task list, groups, name lookup.

This package depends only on :mod:`xstilts.errors`, :mod:`xstilts.io` and :mod:`xstilts.paths`.
"""

from xstilts.intermediate.nli import NLI_LABELS
from xstilts.intermediate.registry import (
    FAMILIES,
    INTERMEDIATE_TASKS,
    TASK_GROUPS,
    contrastive_view,
    get_intermediate_task,
    parse_task_list,
)
from xstilts.intermediate.schema import (
    UNK_TAG,
    UNLABELLED,
    ChoiceExample,
    Example,
    HeadKind,
    IntermediateTask,
    LoadedSplit,
    PairExample,
    Source,
    SpanExample,
    TaggingExample,
    TextExample,
)

__all__ = [
    "FAMILIES",
    "INTERMEDIATE_TASKS",
    "NLI_LABELS",
    "TASK_GROUPS",
    "UNK_TAG",
    "UNLABELLED",
    "ChoiceExample",
    "Example",
    "HeadKind",
    "IntermediateTask",
    "LoadedSplit",
    "PairExample",
    "Source",
    "SpanExample",
    "TaggingExample",
    "TextExample",
    "contrastive_view",
    "get_intermediate_task",
    "parse_task_list",
]
