"""The one list of intermediate tasks, named groups of them, and lookup by name.

:data:`INTERMEDIATE_TASKS` is assembled from the family modules in :data:`FAMILIES`, in that
order: a new family is one module declaring ``TASKS`` plus one entry here.
"""

from __future__ import annotations

from types import ModuleType

from xstilts.errors import DataError, closest
from xstilts.intermediate import choice, classification, nli, pairs, qa, tagging, xglue
from xstilts.intermediate.pairs import PAIR_VIEWS, is_pair_file, pair_file_task
from xstilts.intermediate.schema import IntermediateTask

FAMILIES: tuple[ModuleType, ...] = (nli, classification, choice, qa, tagging, xglue, pairs)


def _collect(families: tuple[ModuleType, ...]) -> dict[str, IntermediateTask]:
    """Every family's tasks by name; two tasks with one name are a programming error."""
    tasks: dict[str, IntermediateTask] = {}
    for family in families:
        for task in family.TASKS:
            if task.name in tasks:
                raise ValueError(f"intermediate task {task.name!r} is declared twice")
            tasks[task.name] = task
    return tasks


INTERMEDIATE_TASKS: dict[str, IntermediateTask] = _collect(FAMILIES)

# Phang et al. 2020's nine English intermediate tasks.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "english-all": (
        "anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "squad", "sst2",
    ),
}  # fmt: skip

NAME_ALIASES = {
    "sst-2": "sst2", "sst": "sst2", "multinli": "mnli", "paws-x": "pawsx", "csqa": "commonsenseqa",
    "cosmos": "cosmosqa", "socialiqa": "siqa", "tydiqa-goldp": "tydiqa", "squad1.1": "squad",
    "squad-v1.1": "squad",
}  # fmt: skip


def get_intermediate_task(name: str) -> IntermediateTask:
    """Look a task up by name (case-insensitive, common spellings accepted); unknown names get
    the closest valid ones. ``pairs:PATH`` is a user file of pairs (its path kept as written)."""
    if is_pair_file(name):
        return pair_file_task(name)
    key = name.strip().lower().replace("_", "-")
    key = NAME_ALIASES.get(key, key)
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
        item = raw.strip()
        if not item:
            continue
        names = TASK_GROUPS.get(item.lower(), (item,))
        out.extend(get_intermediate_task(n) for n in names)
    if not out:
        raise DataError("no intermediate tasks given (e.g. --tasks mnli,squad or english-all)")
    return list({t.name: t for t in out}.values())


def contrastive_view(task: IntermediateTask) -> IntermediateTask:
    """The task trained with the contrastive objective: a pair task as it is, a classification
    task through its pair form (``mnli`` -> ``mnli-pairs``); others have none (an error
    listing those that do)."""
    if task.kind == "contrastive":
        return task
    if task.name not in PAIR_VIEWS:
        raise DataError(
            f"{task.name} has no contrastive form; tasks with one: "
            f"{', '.join(f'{k} ({v})' for k, v in PAIR_VIEWS.items())}, and the pair tasks"
        )
    return INTERMEDIATE_TASKS[PAIR_VIEWS[task.name]]
