"""``xstilts train``: intermediate-task training; every option is a :class:`TrainConfig` field."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xstilts.cli.console import err, out
from xstilts.cli.options import model_options
from xstilts.errors import UsageError
from xstilts.io import ensure_writable
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


@model_options(TrainConfig, param="cfg", names={"model": "--model -m"})
def train_command(*, cfg: TrainConfig) -> None:
    """Fine-tune an encoder on intermediate tasks; the encoder stays a plain HF model."""
    ensure_writable(cfg.out, directory=True)
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
