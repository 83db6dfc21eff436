"""``xstilts run`` and ``xstilts quickstart``: an experiment spec from grid to report."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xstilts.cli.console import err, out, print_report, print_table
from xstilts.experiment.estimate import estimate_cells, machine_id
from xstilts.experiment.grid import Cell, expand_grid
from xstilts.experiment.leakage import CONTAMINATION_SHARE
from xstilts.experiment.runner import (
    check_leakage,
    describe,
    pending_evaluations,
    run_experiment,
)
from xstilts.experiment.spec import ExperimentSpec, check_spec_models, load_spec
from xstilts.io import ensure_writable
from xstilts.report import make_report
from xstilts.train.loop import StepInfo

QUICKSTART = "quickstart.yaml"  # shipped with the package (xstilts/configs/)


class LiveView:
    """The runner's live display: cells done/left with ETA, the current stage, its progress."""

    def __init__(self, total_cells: int, *, plain: bool = False) -> None:
        # plain: stderr is not a terminal (CI logs, `> log`), where a live display shows
        # nothing until the end; print one line per cell start/end instead.
        self.plain = plain
        self.total_cells = total_cells
        self.t0 = time.perf_counter()
        self.cells = Progress(
            TextColumn("cells", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.cells_task = self.cells.add_task("cells", total=total_cells, status="")
        self.inner = Progress(
            TextColumn("  {task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}", markup=False),
            TimeRemainingColumn(),
        )
        self.inner_task = None
        self.current = ""
        self.failed = 0

    def renderable(self) -> Group:
        return Group(self.cells, self.inner)

    def cell_started(self, index: int, total: int, cell: Cell) -> None:
        self.current = cell.label
        self.cells.update(self.cells_task, status=f"now: {cell.label}")
        self._log(f"cell {index + 1}/{total}: {cell.label}")

    def _log(self, text: str) -> None:
        if self.plain:
            err.print(f"[{time.perf_counter() - self.t0:6.0f}s] {text}")

    def stage(self, text: str) -> None:
        self._reset(f"{self.current}: {text}", None)
        self._log(f"  {text}")

    def _reset(self, description: str, total: int | None) -> None:
        if self.inner_task is not None:
            self.inner.remove_task(self.inner_task)
        self.inner_task = self.inner.add_task(description, total=total, extra="")

    def start(self, total: int, description: str) -> None:
        self._reset(f"{self.current}: {description}", total)

    def advance(self, n: int) -> None:
        if self.inner_task is not None:
            self.inner.advance(self.inner_task, n)

    def train_step(self, info: StepInfo) -> None:
        if self.inner_task is None or self.inner.tasks[-1].total != info.total:
            self._reset(f"{self.current}: training steps", info.total)
        self.inner.update(
            self.inner_task,
            completed=info.step,
            extra=f"loss {info.loss:.3f}, {info.examples_per_s:.1f} ex/s",
        )

    def cell_finished(self, cell: Cell, status: str, error: str | None) -> None:
        self.cells.advance(self.cells_task)
        self._log(f"{cell.label}: {status}")
        if status == "failed":
            self.failed += 1
            err.print(f"cell failed: {cell.label}: {error}")


def run_spec(
    spec: ExperimentSpec, *, report: bool, out_dir: Path | None = None,
    trust_remote_code: bool = False, allow_overlap: bool = False,
) -> Path | None:  # fmt: skip
    """Run a spec with the live view; write the report (returns its folder).

    The whole spec is checked (its models' layers, remote code, where results and the report
    go) before any training or evaluation starts.
    """
    check_spec_models(spec, trust_remote_code=trust_remote_code)
    assert spec.output is not None
    ensure_writable(spec.output, directory=True)
    target = out_dir or spec.output / "report"
    if report:
        ensure_writable(target, directory=True)
    cells = expand_grid(spec)
    view = LiveView(len(cells), plain=not err.is_terminal)
    t0 = time.perf_counter()
    with Live(view.renderable(), console=err, refresh_per_second=4, transient=True):
        summary = run_experiment(
            spec, view=view, trust_remote_code=trust_remote_code, allow_overlap=allow_overlap
        )
    err.print(
        f"{len(summary.done)} cells run, {len(summary.skipped)} already done, "
        f"{len(summary.failed)} failed in {time.perf_counter() - t0:.0f}s; "
        f"store: {summary.store.resolve()}"
    )
    for label, error in summary.failed.items():
        err.print(f"  failed: {label}: {error}")
    if not report:
        return None
    print_report(*make_report(spec.output / "results.sqlite", target))
    return target


def _dry_run(
    spec: ExperimentSpec, trust_remote_code: bool, allow_overlap: bool, estimate: bool = True
) -> None:
    """Every check a run makes before working (models, groups, leakage), the grid, and how
    long the run would take here (``estimate``)."""
    layers = check_spec_models(spec, trust_remote_code=trust_remote_code)
    cells = expand_grid(spec)  # reads every setting's training rows: once
    rows = describe(spec, cells)
    header = list(rows[0])
    print_table(f"{len(rows)} cells", header, [[str(r[c]) for c in header] for r in rows])
    for model, evaluated in layers.items():
        out.print(f"{model}: hidden states evaluated {', '.join(map(str, evaluated))}")
    overlaps = check_leakage(spec, cells, allow=allow_overlap)
    found = {o.describe(): o.contaminating for found in overlaps.values() for o in found}
    out.print(
        "leakage guard: no training text overlaps the evaluation texts"
        if not found
        else "leakage guard (recorded and reported; contamination allowed with "
        "--allow-overlap):\n  "
        + "\n  ".join(f"{d}{' CONTAMINATION' if bad else ''}" for d, bad in sorted(found.items()))
    )
    if estimate:
        _print_estimate(spec, cells, trust_remote_code)


def _minutes(seconds: float) -> str:
    return "-" if seconds <= 0 else f"{seconds / 60:.1f}"


def _print_estimate(spec: ExperimentSpec, cells: list[Cell], trust_remote_code: bool) -> None:
    """Each cell's predicted training and evaluation time on this machine, and the total
    (:mod:`xstilts.experiment.estimate`)."""
    estimates = estimate_cells(
        spec,
        cells,
        pending_evaluations(spec, cells),
        trust_remote_code=trust_remote_code,
        status=err.print,
    )
    rows = [
        [e.label, _minutes(e.train_s), _minutes(e.eval_s), _minutes(e.search_s), e.note]
        for e in estimates
    ]
    total_train = sum(e.train_s for e in estimates)
    total_eval = sum(e.eval_s for e in estimates)
    total_search = sum(e.search_s for e in estimates)
    rows.append(["total", _minutes(total_train), _minutes(total_eval), _minutes(total_search), ""])
    print_table(
        f"estimate on this machine ({machine_id()}): {(total_train + total_eval) / 60:.0f} min",
        ["cell", "training min", "evaluation min", "of which search", "work"],
        rows,
        bold_last_row=True,
    )
    out.print(
        "estimate from a cached calibration of each model's training and encoding tokens/s "
        "here, and each evaluation's searches timed now on random vectors; threshold tuning, "
        "scoring, the bootstrap and the report are not counted"
    )


RemoteOpt = Annotated[
    bool,
    typer.Option(help="Allow model repositories to run their own code (the spec must ask too)."),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(help="Check the spec, show the grid and how long it would take; run nothing."),
]
EstimateOpt = Annotated[
    bool,
    typer.Option(
        help="With --dry-run: estimate each cell's time here (a calibration of a few seconds "
        "per model and machine, cached)."
    ),
]
OverlapOpt = Annotated[
    bool,
    typer.Option(
        help="Proceed when training text contaminates evaluation text (at least "
        f"{100 * CONTAMINATION_SHARE:.0f}% of one "
        "language's texts); every overlap is recorded and reported."
    ),
]


def run_command(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    dry_run: DryRunOpt = False,
    estimate: EstimateOpt = True,
    report: Annotated[bool, typer.Option(help="Write the report when done.")] = True,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: <output>/report).")
    ] = None,
    trust_remote_code: RemoteOpt = False,
    allow_overlap: OverlapOpt = False,
    output: Annotated[
        Path | None,
        typer.Option(help="Where runs, results and the report go (default: the spec's output)."),
    ] = None,
) -> None:
    """Run an experiment: train each setting (reusing finished runs), evaluate, store, report."""
    loaded = load_spec(spec)
    if output is not None:  # a packaged spec's own output would point into the package
        loaded.output = output.resolve()
    if dry_run:
        _dry_run(loaded, trust_remote_code, allow_overlap, estimate)
        return
    run_spec(
        loaded, report=report, out_dir=out_dir, trust_remote_code=trust_remote_code,
        allow_overlap=allow_overlap,
    )  # fmt: skip


def quickstart_command(
    output: Annotated[Path, typer.Option(help="Where runs, results and the report go.")] = Path(
        "runs/quickstart"
    ),
    dry_run: DryRunOpt = False,
    estimate: EstimateOpt = True,
) -> None:
    """The main job on the builtin model: baseline vs English vs multilingual intermediate
    training (the packaged configs/quickstart.yaml), evaluated on Tatoeba and BUCC, with a
    report."""
    with resources.as_file(resources.files("xstilts.configs") / QUICKSTART) as path:
        spec = load_spec(path)
    spec.output = output.resolve()
    if dry_run:
        _dry_run(spec, False, False, estimate)
        return
    run_spec(spec, report=True)


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``quickstart``."""
    app.command("run")(run_command)
    app.command("quickstart")(quickstart_command)
