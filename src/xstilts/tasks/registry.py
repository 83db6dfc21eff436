"""The one list of retrieval tasks, and the checks of a request against it.

:func:`register` adds a task object (the builtin ones are registered in
:mod:`xstilts.tasks`; a user or a test registers its own the same way); :func:`get_task` finds
one by name or alias. Everything else (the CLI, the runner, reports, the MTEB export, ``data
list``/``fetch``) asks the registry and the task object, never a task name.
"""

from __future__ import annotations

from xstilts.errors import DataError, UsageError, closest
from xstilts.tasks.base import Headline, RetrievalTask
from xstilts.tasks.settings import TaskRequest

TASKS: dict[str, RetrievalTask] = {}
_ALIASES: dict[str, str] = {}


def register(task: RetrievalTask) -> RetrievalTask:
    """Add ``task`` to the registry (replacing a task of the same name); returns it."""
    TASKS[task.name] = task
    for alias in task.aliases:
        _ALIASES[alias] = task.name
    return task


def unregister(name: str) -> None:
    """Remove a task (tests that register their own clean up with this)."""
    task = TASKS.pop(name, None)
    if task is not None:
        for alias in task.aliases:
            _ALIASES.pop(alias, None)


def get_task(name: str) -> RetrievalTask:
    """Look a task up by name or alias; unknown names list the valid ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise DataError(
            f"unknown task {name!r}{closest(key, list(TASKS))}; valid tasks: {', '.join(TASKS)}"
        )
    return TASKS[key]


def check_request(request: TaskRequest) -> tuple[RetrievalTask, list[str]]:
    """The task and languages of a request, with its protocol and subset checked."""
    task = get_task(request.task)
    task.check_protocol(request.protocol)
    if request.max_sentences is not None and task.subset is None:
        names = [t.name for t in TASKS.values() if t.subset is not None]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        raise UsageError(f"--max-sentences applies to {listed} only, not {task.name}")
    task.check_max_sentences(request.max_sentences)
    spec = request.langs_spec()
    return task, task.parse_langs(task.default_langs if spec is None else spec)


def all_headlines(protocol: str | None = "xtreme") -> list[Headline]:
    """Every registered task's headline metrics (of one protocol, or all with None)."""
    return [
        h
        for task in TASKS.values()
        for h in task.headlines
        if protocol is None or h.protocol == protocol
    ]
