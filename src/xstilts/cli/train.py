"""``xstilts train``: intermediate-task training; every option is a :class:`TrainConfig` field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xstilts.cli.console import err, out
from xstilts.cli.options import model_options
from xstilts.errors import UsageError
from xstilts.experiment.leakage import CONTAMINATION_SHARE, check, eval_index
from xstilts.io import ensure_writable, write_json_atomic
from xstilts.paths import resolve_data_dir
from xstilts.tasks import TaskRequest
from xstilts.train.config import TrainConfig
from xstilts.train.loop import StepInfo, train


def _progress() -> Progress:
    return Progress(
        TextColumn("training", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps  loss {task.fields[loss]}  {task.fields[rate]} ex/s", markup=False),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _leakage(cfg: TrainConfig, against: str | None, allow: bool) -> None:
    """``--check-against``: the training text against every language of those retrieval tasks;
    contamination stops here unless ``--allow-overlap``; every overlap found is written to
    leakage.json."""
    if not against:
        return
    data_dir = resolve_data_dir(cfg.data_dir)
    requests = [TaskRequest(task=t.strip(), langs="all") for t in against.split(",") if t.strip()]
    overlaps = check(cfg, eval_index(requests, data_dir), data_dir, allow=allow, where="train")
    for o in overlaps:
        kind = "contamination allowed" if o.contaminating else "incidental overlap"
        err.print(f"warning: {kind}: {o.describe()}")
    if overlaps:
        write_json_atomic(Path(cfg.out) / "leakage.json", [o.to_dict() for o in overlaps])


@model_options(TrainConfig, param="cfg", names={"model": "--model -m"})
def train_command(
    check_against: Annotated[
        str | None,
        typer.Option(
            help="Retrieval tasks whose texts (every language) the training text must not "
            "contain, e.g. tatoeba,lareqa (the leakage guard)."
        ),
    ] = None,
    allow_overlap: Annotated[
        bool,
        typer.Option(
            help=f"Proceed when they overlap by at least {100 * CONTAMINATION_SHARE:.0f}% of a "
            "language's texts "
            "(contamination); every overlap is written to leakage.json."
        ),
    ] = False,
    *,
    cfg: TrainConfig,
) -> None:
    """Fine-tune an encoder on intermediate tasks; the encoder stays a plain HF model."""
    ensure_writable(cfg.out, directory=True)
    _leakage(cfg, check_against, allow_overlap)
    progress = _progress()
    bars: dict[str, object] = {}

    def on_step(info: StepInfo) -> None:
        if "train" not in bars:
            bars["train"] = progress.add_task("train", total=info.total, loss="-", rate="-")
        progress.update(
            bars["train"],  # type: ignore[arg-type]
            completed=info.step,
            loss=f"{info.loss:.4f}",
            rate=f"{info.examples_per_s:.1f}",
        )

    try:
        with progress:
            result = train(cfg, on_step=on_step, on_status=lambda m: err.print(m))
    except KeyboardInterrupt:
        err.print(f"interrupted: the last checkpoint in {cfg.out} is intact; rerun with --resume")
        raise typer.Exit(130) from None
    except RuntimeError as exc:  # out of memory: checkpoints are written atomically
        if "out of memory" in str(exc).lower():
            raise UsageError(
                f"out of memory at batch size {cfg.batch_size}: lower --batch-size (use "
                f"--grad-accum to keep the effective batch); the last checkpoint in {cfg.out} "
                "is intact"
            ) from None
        raise
    for task, metrics in result.final.items():
        out.print(f"{task}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    skipped = {t: n for t, n in result.n_skipped.items() if n}
    if skipped:
        err.print(f"skipped bad rows: {skipped}")
    out.print(
        f"{result.steps} steps; best dev at step {result.best_step}; "
        f"evaluate with: xstilts evaluate --model {cfg.out} --task tatoeba"
    )


def register(app: typer.Typer) -> None:
    """Add ``train``."""
    app.command("train")(train_command)
