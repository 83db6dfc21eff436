"""``xstilts evaluate`` and ``xstilts export-mteb``: one model on one retrieval task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xstilts.cli.console import RichProgress, err, make_progress, out, print_console_tables
from xstilts.cli.options import model_options
from xstilts.errors import XstiltsError
from xstilts.io import ensure_writable, write_json_atomic
from xstilts.paths import resolve_data_dir
from xstilts.tasks import EvalSettings, Outputs, TaskRequest, evaluate_model, get_task
from xstilts.tasks.export import write_mteb_results
from xstilts.tasks.results import load_results

# the options evaluate has always had: --layer (not --layers), -t for --task
_NAMES = {"layers": "--layer", "task": "--task -t"}


def _summary_line(results: dict[str, Any]) -> str:
    t = results["timings"]
    enc = results["encoding"]
    cached = f", {enc['sentences_from_cache']} from cache" if enc["sentences_from_cache"] else ""
    return (
        f"{enc['sentences_encoded']} sentences encoded{cached} ({results['settings']['dtype']}, "
        f"padding {100 * enc['padding_ratio']:.0f}%); encode {t['encode_s']:.1f}s, "
        f"search {t['search_s']:.1f}s, total {t['total_s']:.1f}s"
    )


@model_options(TaskRequest, param="request", names=_NAMES)
@model_options(EvalSettings, param="settings", names=_NAMES)
def evaluate_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Hub id, local dir or builtin:NAME.")],
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: auto).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root (default: $XSTILTS_DATA).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the results JSON here.")
    ] = None,
    save_embeddings: Annotated[
        Path | None, typer.Option(help="Write one .npy per language, side and layer here.")
    ] = None,
    save_predictions: Annotated[
        Path | None, typer.Option(help="BUCC: write mined test pairs above the threshold here.")
    ] = None,
    trust_remote_code: Annotated[
        bool, typer.Option(help="Allow model repositories to run their own Python code.")
    ] = False,
    *,
    settings: EvalSettings,
    request: TaskRequest,
) -> None:
    """Evaluate an encoder zero-shot on a retrieval task, for one, several or all layers."""
    task = get_task(request.task)
    root = resolve_data_dir(data_dir)
    if not root.is_dir():
        raise XstiltsError(
            f"data directory {root} does not exist; fetch data with `xstilts data fetch "
            f"{task.name}` or point --data-dir / XSTILTS_DATA at it"
        )
    # outputs are checked before the work, not after minutes of encoding
    if out_path is not None:
        ensure_writable(out_path)
    for folder in (save_embeddings, save_predictions):
        if folder is not None:
            ensure_writable(folder, directory=True)
    with make_progress() as progress:
        results = evaluate_model(
            model,
            settings,
            request,
            root,
            device=device,
            trust_remote_code=trust_remote_code,
            outputs=Outputs(save_embeddings, save_predictions),
            progress=RichProgress(progress),
        )
    print_console_tables(task.console_tables(results))
    err.print(_summary_line(results))
    if out_path:
        write_json_atomic(out_path, results)
        err.print(f"results written to {out_path}")


def export_mteb_command(
    results_json: Annotated[Path, typer.Argument(help="A results file from `xstilts evaluate`.")],
    out_dir: Annotated[Path, typer.Argument(help="Directory for the <Task>.json files.")],
    layer: Annotated[
        int | None, typer.Option(help="Hidden-state index to export (needed if several).")
    ] = None,
) -> None:
    """Write MTEB-style result files (Tatoeba.json, BUCC.v2.json, BUCC.json) from --protocol
    mteb rows."""
    doc = load_results(results_json)
    ensure_writable(out_dir, directory=True)
    for path in write_mteb_results(doc, out_dir, layer=layer):
        out.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``export-mteb``."""
    app.command("evaluate")(evaluate_command)
    app.command("export-mteb")(export_mteb_command)
