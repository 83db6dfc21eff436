"""Zero-shot retrieval tasks: one object per task, a registry, and the run that evaluates them.

The builtin tasks (Tatoeba, BUCC 2018, LAReQA, Mewsli-X) are registered here; a task of your
own is a :class:`RetrievalTask` subclass registered with :func:`register`, after which every
command (``xstilts evaluate``, ``run``, ``report``, ``export-mteb``, ``data list``) handles it.
"""

from xstilts.tasks.base import ConsoleTable, Headline, MtebTask, RetrievalTask
from xstilts.tasks.bucc import Bucc2018
from xstilts.tasks.context import EvalContext, Outputs, ProgressHook
from xstilts.tasks.lareqa import Lareqa
from xstilts.tasks.mewsli import MewsliX
from xstilts.tasks.registry import TASKS, all_headlines, check_request, get_task, register
from xstilts.tasks.run import evaluate, evaluate_model
from xstilts.tasks.settings import EvalSettings, TaskRequest
from xstilts.tasks.tatoeba import Tatoeba, tatoeba_metrics

for _task in (Tatoeba(), Bucc2018(), Lareqa(), MewsliX()):
    register(_task)

__all__ = [
    "TASKS",
    "ConsoleTable",
    "EvalContext",
    "EvalSettings",
    "Headline",
    "MtebTask",
    "Outputs",
    "ProgressHook",
    "RetrievalTask",
    "TaskRequest",
    "all_headlines",
    "check_request",
    "evaluate",
    "evaluate_model",
    "get_task",
    "register",
    "tatoeba_metrics",
]
