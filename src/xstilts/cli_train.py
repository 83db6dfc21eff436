"""``xstilts train``: intermediate-task training from the command line (thin wrapper)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xstilts.errors import UsageError


def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Hub id, local dir or builtin:NAME.")],
    tasks: Annotated[str, typer.Option(help="Comma list, e.g. mnli or mnli,squad or english-all.")],
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, logs, metrics).")],
    langs: Annotated[
        str | None, typer.Option(help="Languages of multilingual tasks (translate-train).")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the task data.")] = 3.0,
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (overrides epochs).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per step and process.")] = 32,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, linear schedule).")] = 2e-5,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps spent warming up.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for heads, data order, dropout.")] = 0,
    sampling: Annotated[
        str, typer.Option(help="Multi-task: proportional, uniform or temperature:T.")
    ] = "proportional",
    max_examples: Annotated[
        int | None, typer.Option(help="Training examples per task (small runs).")
    ] = None,
    max_length: Annotated[
        int, typer.Option(help="Tokens per example (QA: --span-max-length).")
    ] = 128,
    train_split: Annotated[
        str | None,
        typer.Option(help="Train on this split instead (dev, or per task: xnli:dev,mnli:train)."),
    ] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between dev evaluations.")] = None,
    save_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 500,
    mixed_precision: Annotated[str, typer.Option(help="auto, no, bf16 or fp16.")] = "auto",
    mlm_aux: Annotated[
        bool, typer.Option(help="Add a masked-LM loss on multilingual text (Phang et al.).")
    ] = False,
    mlm_data: Annotated[
        str, typer.Option(help="MLM text: 'xnli' or text files (comma list).")
    ] = "xnli",
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Skip and count malformed rows instead of stopping.")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root (default: $XSTILTS_DATA).")
    ] = None,
) -> None:
    """Fine-tune an encoder on intermediate tasks; the encoder stays a plain HF model."""
    from xstilts.cli import err
    from xstilts.cli import out as console
    from xstilts.io import ensure_writable
    from xstilts.train.config import TrainConfig
    from xstilts.train.loop import StepInfo, train

    split: str | dict[str, str] | None = train_split
    if train_split and ":" in train_split:
        split = dict(item.split(":", 1) for item in train_split.split(",") if item.strip())
    try:
        cfg = TrainConfig(
            model=model, tasks=tasks, langs=langs, out=out, epochs=epochs, max_steps=max_steps,
            batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_ratio=warmup_ratio,
            seed=seed, sampling=sampling, max_examples=max_examples, max_length=max_length,
            train_split=split, eval_every=eval_every, save_every=save_every,
            mixed_precision=mixed_precision, mlm_aux=mlm_aux, mlm_data=mlm_data,
            skip_bad_rows=skip_bad_rows, resume=resume, data_dir=data_dir,
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"--{field.replace('_', '-')}: {msg}") from None
    ensure_writable(out, directory=True)

    progress = Progress(
        TextColumn("training", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps  loss {task.fields[loss]}  {task.fields[rate]} ex/s", markup=False),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    bar = None

    def on_step(info: StepInfo) -> None:
        nonlocal bar
        if bar is None:
            bar = progress.add_task("train", total=info.total, loss="-", rate="-")
        progress.update(
            bar, completed=info.step, loss=f"{info.loss:.4f}", rate=f"{info.examples_per_s:.1f}"
        )

    try:
        with progress:
            result = train(cfg, on_step=on_step, on_status=lambda m: err.print(m))
    except KeyboardInterrupt:
        err.print(f"interrupted: the last checkpoint in {out} is intact; continue with --resume")
        raise typer.Exit(130) from None
    except RuntimeError as exc:  # out of memory: checkpoints are written atomically
        if "out of memory" in str(exc).lower():
            raise UsageError(
                f"out of memory at batch size {batch_size}: lower --batch-size (use --grad-accum "
                f"to keep the effective batch); the last checkpoint in {out} is intact"
            ) from None
        raise
    for task, metrics in result.final.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        console.print(f"{task}: {shown}")
    skipped = {t: n for t, n in result.n_skipped.items() if n}
    if skipped:
        err.print(f"skipped bad rows: {skipped}")
    console.print(
        f"{result.steps} steps; best dev at step {result.best_step}; "
        f"evaluate with: xstilts evaluate --model {out} --task tatoeba"
    )
