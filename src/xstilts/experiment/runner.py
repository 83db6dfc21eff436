"""``xstilts run SPEC``: expand the grid, train (reusing finished runs), evaluate, store.

Resumable at every level: a finished training run (same configuration hash) is reused, a
partial one resumes from its last checkpoint, and a finished (cell, evaluation) whose
evaluation hash matches is skipped. A cell that fails is recorded with its error and the
runner goes on with the next one; rerunning the spec retries only what is not done.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xstilts.errors import XstiltsError
from xstilts.experiment import leakage
from xstilts.experiment.grid import Cell, expand_grid
from xstilts.experiment.leakage import Overlap, eval_index
from xstilts.experiment.spec import ExperimentSpec, check_spec_models, config_hash
from xstilts.experiment.store import ResultStore
from xstilts.models.runs import RUN_FILE, read_pointer
from xstilts.paths import resolve_data_dir
from xstilts.tasks import TaskRequest, evaluate_model
from xstilts.train.config import TrainConfig
from xstilts.train.loop import METRICS_FILE, RECORD_FILE, StepInfo, train

STORE_FILE = "results.sqlite"


class RunView(Protocol):
    """What the runner reports while it works (the CLI draws it with rich)."""

    def cell_started(self, index: int, total: int, cell: Cell) -> None: ...

    def stage(self, text: str) -> None: ...

    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int) -> None: ...

    def train_step(self, info: StepInfo) -> None: ...

    def cell_finished(self, cell: Cell, status: str, error: str | None) -> None: ...


class _Quiet:
    def cell_started(self, index: int, total: int, cell: Cell) -> None: ...
    def stage(self, text: str) -> None: ...
    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int) -> None: ...
    def train_step(self, info: StepInfo) -> None: ...
    def cell_finished(self, cell: Cell, status: str, error: str | None) -> None: ...


@dataclass
class RunSummary:
    """What a run did."""

    store: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def eval_key(task: TaskRequest) -> str:
    """Identity of one evaluation inside a cell: task and protocol."""
    return f"{task.task}/{task.protocol}"


def eval_hash(spec: ExperimentSpec, task: TaskRequest) -> str:
    """Hash of everything that changes one evaluation's numbers.

    Batching and the cache switch are left out, as in the embedding store identity: they
    change speed, not the numbers.
    """
    ev = spec.evaluation.model_dump(
        mode="json",
        exclude={"tasks", "report_layer", "batch_size", "max_tokens_per_batch", "cache"},
    )
    # exclude_none: a new optional task key leaves the hashes of existing specs unchanged
    task_key = task.model_dump(mode="json", exclude_none=True)
    return config_hash({"task": task_key, "evaluation": ev})[:20]


def ensure_trained(cfg: TrainConfig, view: RunView) -> Path:
    """A finished run for ``cfg``: reused when its hash matches, else trained or resumed."""
    run_dir = Path(cfg.out)
    run_file = run_dir / RUN_FILE
    if (run_dir / METRICS_FILE).is_file() and run_file.is_file():
        prev = json.loads(run_file.read_text(encoding="utf-8"))
        if prev.get("weights_hash") == cfg.weights_hash():
            view.stage(f"reusing finished training run {run_dir.name}")
            return run_dir
    resume = read_pointer(run_dir, "last") is not None
    view.stage("training (resuming)" if resume else "training")
    train(cfg.model_copy(update={"resume": resume}), on_step=view.train_step, on_status=view.stage)
    return run_dir


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, XstiltsError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}".splitlines()[0]


Plan = tuple[TaskRequest, str, str]  # (task, eval key, eval hash)


@dataclass
class _Run:
    """What every cell of one run shares."""

    spec: ExperimentSpec
    store: ResultStore
    view: RunView
    data_dir: Path
    plans: list[Plan]
    trust_remote_code: bool
    after_eval: Callable[[Cell, str], None] | None


def _register(store: ResultStore, spec: ExperimentSpec, cells: list[Cell]) -> None:
    """One row per cell in the store (status kept for cells seen before)."""
    for cell in cells:
        store.upsert_cell(
            cell.key,
            spec=spec.name,
            model=cell.model,
            setting=cell.setting.name,
            grp=cell.group,
            seed=cell.seed,
            tasks=json.dumps(cell.setting.tasks),
            train_hash=cell.train.weights_hash() if cell.train else None,
            run_dir=str(cell.train.out) if cell.train else None,
            status=store.cell_status(cell.key) or "pending",
            group_source=cell.group_source,
        )
        record = store.cell_record(cell.key)
        if record is None and cell.plan is not None:
            store.upsert_cell(cell.key, train_record=json.dumps(cell.plan))
        elif record is not None and not record.get("planned") and cell.group_source == "data":
            store.upsert_cell(cell.key, grp=record["group"])  # the exact record decides


def _store_record(store: ResultStore, cell: Cell, run_dir: Path) -> None:
    """The finished run's exact training record, and the group it decides (unless the spec
    overrides the group)."""
    path = run_dir / RECORD_FILE
    if not path.is_file():  # a run trained before records existed: keep the plan
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    group = cell.group if cell.group_source == "override" else record["group"]
    store.upsert_cell(cell.key, train_record=json.dumps(record), grp=group)


def _run_cell(run: _Run, cell: Cell, todo: list[Plan]) -> None:
    """Train (or reuse) the cell's model, then run and store its missing evaluations."""
    store, view = run.store, run.view
    model, train_metrics = cell.model, None
    if cell.train is not None:
        store.upsert_cell(cell.key, status="training", error=None)
        run_dir = ensure_trained(cell.train, view)
        model = str(run_dir)
        train_metrics = (run_dir / METRICS_FILE).read_text(encoding="utf-8")
        _store_record(store, cell, run_dir)
    store.upsert_cell(cell.key, status="evaluating", train_metrics=train_metrics)
    for task, key, h in todo:
        view.stage(f"evaluating {key}")
        results = evaluate_model(
            model,
            run.spec.evaluation.settings(),
            task,
            run.data_dir,
            progress=view,
            trust_remote_code=run.trust_remote_code,
        )
        summary = {"timings": results["timings"], "encoding": results["encoding"]}
        store.write_eval(cell.key, key, h, results["metrics"], results.get("items", []), summary)
        if run.after_eval is not None:
            run.after_eval(cell, key)
    store.upsert_cell(cell.key, status="done", error=None)


def check_leakage(
    spec: ExperimentSpec, cells: list[Cell], *, allow: bool
) -> dict[str, list[Overlap]]:
    """Every trained cell's training text against every evaluation text of the spec
    (:mod:`xstilts.experiment.leakage`); an overlap is an error unless ``allow``."""
    data_dir = resolve_data_dir(spec.data_dir)
    trained = [c for c in cells if c.train is not None]
    if not trained:
        return {}
    index = eval_index(spec.evaluation.tasks, data_dir)
    return {
        c.key: leakage.check(c.train, index, data_dir, allow=allow, where=f"setting {c.label}")
        for c in trained
        if c.train is not None
    }


def pending_evaluations(spec: ExperimentSpec, cells: list[Cell]) -> dict[str, list[str]]:
    """Per cell key, the evaluations (:func:`eval_key`) not yet in the results store: what a
    run of ``spec`` would still do (every one when there is no store yet; nothing is
    created)."""
    assert spec.output is not None
    plans = [(eval_key(t), eval_hash(spec, t)) for t in spec.evaluation.tasks]
    path = spec.output / STORE_FILE
    if not path.is_file():
        return {c.key: [k for k, _ in plans] for c in cells}
    store = ResultStore(path)
    try:
        return {c.key: [k for k, h in plans if not store.eval_done(c.key, k, h)] for c in cells}
    finally:
        store.close()


def run_experiment(
    spec: ExperimentSpec,
    *,
    view: RunView | None = None,
    after_eval: Callable[[Cell, str], None] | None = None,
    trust_remote_code: bool = False,
    allow_overlap: bool = False,
) -> RunSummary:
    """Run every cell of ``spec`` that is not finished; see the module docstring.

    ``trust_remote_code`` is the command line's consent; a setting's training block asking
    for remote code without it is refused before anything runs. Training text that overlaps
    evaluation text stops the run before anything runs, unless ``allow_overlap`` (then the
    overlaps are stored with the cells and shown by the report).
    """
    check_spec_models(spec, trust_remote_code=trust_remote_code)
    assert spec.output is not None
    cells = expand_grid(spec)
    overlaps = check_leakage(spec, cells, allow=allow_overlap)
    t0 = time.perf_counter()
    store = ResultStore(spec.output / STORE_FILE)
    summary = RunSummary(store.path)
    run = _Run(
        spec, store, view or _Quiet(), resolve_data_dir(spec.data_dir),
        [(t, eval_key(t), eval_hash(spec, t)) for t in spec.evaluation.tasks],
        trust_remote_code, after_eval,
    )  # fmt: skip
    try:
        store.set_meta("spec", spec.model_dump(mode="json"))
        _register(store, spec, cells)
        for key, found in overlaps.items():
            store.upsert_cell(key, leakage=json.dumps([o.to_dict() for o in found]))
        for index, cell in enumerate(cells):
            todo = [p for p in run.plans if not store.eval_done(cell.key, p[1], p[2])]
            if not todo:
                summary.skipped.append(cell.label)
                store.upsert_cell(cell.key, status="done", error=None)
                continue
            run.view.cell_started(index, len(cells), cell)
            try:
                _run_cell(run, cell, todo)
                summary.done.append(cell.label)
                run.view.cell_finished(cell, "done", None)
            except KeyboardInterrupt:
                store.upsert_cell(cell.key, status="interrupted")
                raise
            except Exception as exc:  # one cell's failure must not stop the others
                line = _error_line(exc)
                store.upsert_cell(cell.key, status="failed", error=line)
                summary.failed[cell.label] = line
                run.view.cell_finished(cell, "failed", line)
    finally:
        summary.seconds = time.perf_counter() - t0
        store.close()
    return summary


def _rows_text(plan: dict[str, Any] | None) -> str:
    """Training rows per language of a plan, e.g. ``en 400; de 91, fr 74`` (task by task)."""
    if plan is None:
        return "-"
    parts = [
        f"{name}: " + ", ".join(f"{lang} {n}" for lang, n in part["rows"].items())
        for name, part in plan["tasks"].items()
    ]
    if plan.get("mlm"):
        parts.append("mlm: " + ", ".join(f"{lang} {n}" for lang, n in plan["mlm"]["rows"].items()))
    return "; ".join(parts)


def describe(spec: ExperimentSpec, cells: list[Cell] | None = None) -> list[dict[str, Any]]:
    """The expanded grid as rows (for ``xstilts run --dry-run``): each cell's group (from its
    training rows, or the spec's override) and the rows per language it will train on.
    ``cells``: the grid when the caller has expanded it already (expanding reads every
    setting's training rows)."""
    return [
        {
            "cell": c.key,
            "model": c.model,
            "setting": c.setting.name,
            "group": c.group + (" (override)" if c.group_source == "override" else ""),
            "seed": c.seed,
            "tasks": ",".join(c.setting.tasks) or "-",
            "training rows by language": _rows_text(c.plan),
            "run": os.path.relpath(c.train.out.resolve()) if c.train else "-",
        }
        for c in (expand_grid(spec) if cells is None else cells)
    ]
