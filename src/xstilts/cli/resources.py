"""``xstilts data``, ``models`` and ``cache``: what data, models and cached embeddings there are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from xstilts.cli.console import err, out, print_table
from xstilts.data.fetch import fetch
from xstilts.embedding.store import EmbeddingCache
from xstilts.errors import DataError
from xstilts.io import ensure_writable
from xstilts.models.builtin import BUILTIN_MODELS
from xstilts.paths import resolve_data_dir
from xstilts.tasks import TASKS, get_task

data_app = typer.Typer(no_args_is_help=True, help="Datasets: where they are, fetching them.")
models_app = typer.Typer(no_args_is_help=True, help="Models: the builtin offline encoders.")
cache_app = typer.Typer(no_args_is_help=True, help="The on-disk embedding cache.")

DataDirOpt = Annotated[Path | None, typer.Option(help="Data root (default: $XSTILTS_DATA).")]


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


@data_app.command("list")
def data_list(
    data_dir: DataDirOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One row per language.")] = False,
) -> None:
    """Show retrieval tasks, their languages, sizes, and where the files are expected."""
    root = resolve_data_dir(data_dir)
    out.print(f"data directory: {root}" + ("" if root.is_dir() else " (missing)"))
    summary, detail, where = [], [], []
    for task in TASKS.values():
        present = size = 0
        for lang in task.languages:
            files = task.files(root, lang)
            present += bool(files) and all(p.is_file() for p in files)
            for p in files:
                exists = p.is_file()
                size += p.stat().st_size if exists else 0
                lines = str(_count_lines(p)) if exists and verbose else "missing"
                detail.append([task.name, lang, str(p), lines])
        n = len(task.languages)
        summary.append([task.name, str(n), f"{present}/{n}", f"{size / 2**20:.1f}", task.metric])
        where.append(f"  {task.name}: {task.files(root, task.languages[0])[0].parent}")
    print_table("Retrieval tasks", ["task", "languages", "present", "MiB", "metric"], summary)
    out.print("files expected under:")
    for line in where:
        out.print(line)
    if verbose:
        print_table("Per language", ["task", "lang", "file", "lines"], detail)


@data_app.command("fetch")
def data_fetch(
    task: Annotated[str, typer.Argument(help="A task with public downloads (tatoeba, bucc2018).")],
    data_dir: DataDirOpt = None,
    langs: Annotated[str | None, typer.Option(help="Only these languages (comma list).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Mirror to download from instead.")] = None,
    allow_unverified: Annotated[
        bool, typer.Option(help="Accept files without a recorded checksum (prints their SHA-256).")
    ] = False,
) -> None:
    """Download a dataset from its public source, verifying checksums."""
    root = resolve_data_dir(data_dir)
    ensure_writable(root, directory=True)
    lang_list = [s.strip() for s in langs.split(",") if s.strip()] if langs is not None else None
    found = get_task(task)
    if not found.fetchable:
        names = ", ".join(t.name for t in TASKS.values() if t.fetchable)
        raise DataError(f"cannot fetch {found.name} automatically; fetchable: {names}")
    downloads = found.downloads(base_url, lang_list)
    counts: dict[str, int] = {}

    def report(d: Any, status: str) -> None:
        key = status.split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
        if key == "unverified":
            err.print(f"{d.url}: {status}")

    with err.status(f"fetching {task} into {root} ..."):
        paths = fetch(downloads, root, allow_unverified=allow_unverified, on_file=report)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    out.print(f"{task}: {len(paths)} files in {root} ({summary})")


@cache_app.command("info")
def cache_info() -> None:
    """Where the embedding cache is and how much it holds."""
    info = EmbeddingCache().info()
    out.print(
        f"{info.path}: {info.entries} entries, {info.files} files, {info.bytes / 2**20:.1f} MiB"
    )


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached embedding."""
    info = EmbeddingCache().clear()
    out.print(f"removed {info.entries} entries ({info.bytes / 2**20:.1f} MiB) from {info.path}")


@models_app.command("list")
def models_list() -> None:
    """Builtin models (offline, converted on first use) with size, layers, languages, licence."""
    rows = [
        [i.name, str(i.num_layers), str(i.hidden_size), f"{i.size_mb:g}", i.languages]
        for i in BUILTIN_MODELS.values()
    ]
    header = ["name", "layers", "hidden", "size (MB)", "languages"]
    print_table("Builtin models (use as --model builtin:NAME)", header, rows)
    for info in BUILTIN_MODELS.values():
        out.print(Text.assemble((info.name, "bold"), f": {info.description}"))
        out.print(f"  licence: {info.licence}")
        out.print(f"  source: {info.source}")
    out.print("Any Hugging Face encoder works too: --model xlm-roberta-large or --model ./my-model")


def register(app: typer.Typer) -> None:
    """Add the ``data``, ``models`` and ``cache`` command groups."""
    app.add_typer(data_app, name="data")
    app.add_typer(models_app, name="models")
    app.add_typer(cache_app, name="cache")
