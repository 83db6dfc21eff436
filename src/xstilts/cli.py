"""The ``xstilts`` command line: thin wrappers that parse options, call the library, print.

User errors (:class:`xstilts.errors.XstiltsError`) print one ``error:`` line and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from xstilts import defaults
from xstilts.errors import UsageError, XstiltsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Intermediate-task training and zero-shot cross-lingual retrieval evaluation.",
)
data_app = typer.Typer(no_args_is_help=True, help="Datasets: where they are, fetching them.")
models_app = typer.Typer(no_args_is_help=True, help="Models: the builtin offline encoders.")
app.add_typer(data_app, name="data")
cache_app = typer.Typer(no_args_is_help=True, help="The on-disk embedding cache.")
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")

# Markup, emoji codes and highlighting are off: paths, sentences and error messages are printed
# as they are ("file.txt:100:" is not an emoji code, "[/x]" in a path is not a closing tag).
out = Console(soft_wrap=True, markup=False, emoji=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)
_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr, force=True
    )


class RichProgress:
    """Adapter from the library's progress hook to a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task_id: Any = None

    def start(self, total: int, description: str) -> None:
        if self.task_id is not None:
            self.progress.remove_task(self.task_id)
        self.task_id = self.progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task_id, n)


def make_progress() -> Progress:
    """A progress bar showing sentences done/total, throughput-driven ETA."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sentences", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def parse_layers(spec: str, num_hidden_states: int | None = None) -> list[int] | None:
    """``all`` -> None (every hidden state), ``last``, or a comma list of indices.

    ``last`` is -1 (resolved by the encoder) unless ``num_hidden_states`` is given.
    """
    spec = spec.strip().lower()
    if spec == "all":
        return None
    out: list[int] = []
    for item in spec.split(","):
        item = item.strip()
        try:
            if item == "last":
                out.append(num_hidden_states - 1 if num_hidden_states else -1)
            else:
                out.append(int(item))
        except ValueError:
            raise UsageError(
                f"--layer {spec!r}: expected 'all', 'last' or hidden-state indices like 8 or 8,12"
            ) from None
    return list(dict.fromkeys(out))


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.4f}"


def print_tatoeba(results: dict[str, Any]) -> None:
    """Per-layer table (when several layers) and per-language table at the chosen layer."""
    import pandas as pd

    df = pd.DataFrame(results["metrics"])
    acc = df[df.metric == "accuracy"].pivot_table(
        index=["layer", "lang"], columns="direction", values="value"
    )
    layers = sorted(df.layer.unique())
    per_layer = acc.groupby(level="layer").mean()
    layer = layers[0]
    if len(layers) > 1:
        best = int(per_layer["mean"].idxmax())
        table = Table(title="Tatoeba accuracy (%) by layer, mean over languages")
        for col in ("layer", "en->x", "x->en", "mean"):
            table.add_column(col, justify="right")
        for lay, row in per_layer.iterrows():
            mark = " *" if lay == best else ""
            table.add_row(f"{lay}{mark}", _fmt(row["en->x"]), _fmt(row["x->en"]), _fmt(row["mean"]))
        out.print(table)
        out.print(f"* best layer by mean accuracy: {best} (chosen on this test data)")
        layer = best
    table = Table(title=f"Tatoeba accuracy (%) at layer {layer}")
    for col in ("lang", "n", "en->x", "x->en", "mean"):
        table.add_column(col, justify="right")
    sub = acc.loc[layer]
    for lang in results["languages"]:
        row = sub.loc[lang]
        n = results["sizes"][lang]["x"]
        table.add_row(lang, str(n), _fmt(row["en->x"]), _fmt(row["x->en"]), _fmt(row["mean"]))
    m = sub.mean()
    table.add_row("mean", "", _fmt(m["en->x"]), _fmt(m["x->en"]), _fmt(m["mean"]), style="bold")
    out.print(table)


def print_bucc(results: dict[str, Any]) -> None:
    """One row per language, split and layer: P, R, F1 and the threshold used."""
    import pandas as pd

    df = pd.DataFrame(results["metrics"])
    wide = df.pivot_table(index=["lang", "split", "layer"], columns="metric", values="value")
    table = Table(title="BUCC 2018 (threshold tuned on the gold split, applied to test)")
    for col in ("lang", "split", "layer", "P", "R", "F1", "threshold", "pairs"):
        table.add_column(col, justify="right")
    for (lang, split, layer), row in wide.iterrows():
        table.add_row(
            lang,
            split,
            str(layer),
            _fmt(row.get("precision")),
            _fmt(row.get("recall")),
            _fmt(row.get("f1")),
            _fmt(row.get("threshold"), pct=False),
            str(int(row.get("n_predicted", 0))),
        )
    out.print(table)


def print_per_language(
    results: dict[str, Any], title: str, metrics: tuple[str, ...], n_key: str
) -> None:
    """Per-layer means (when several layers), then one row per language at the chosen layer.

    The first metric chooses the layer, as for Tatoeba (on the test data itself: say so).
    """
    import pandas as pd

    df = pd.DataFrame(results["metrics"])
    wide = df[df.metric.isin(metrics)].pivot_table(
        index=["layer", "lang"], columns="metric", values="value"
    )
    layers = sorted(df.layer.unique())
    layer = layers[0]
    if len(layers) > 1:
        per_layer = wide.groupby(level="layer").mean()
        best = int(per_layer[metrics[0]].idxmax())
        table = Table(title=f"{title}: % by layer, mean over languages")
        for col in ("layer", *metrics):
            table.add_column(col, justify="right")
        for lay, row in per_layer.iterrows():
            mark = " *" if lay == best else ""
            table.add_row(f"{lay}{mark}", *(_fmt(row[m]) for m in metrics))
        out.print(table)
        out.print(f"* best layer by mean {metrics[0]}: {best} (chosen on this test data)")
        layer = best
    table = Table(title=f"{title}: % at layer {layer}")
    for col in ("lang", "n", *metrics):
        table.add_column(col, justify="right")
    sub = wide.loc[layer]
    for lang in results["languages"]:
        n = results["sizes"].get(lang, {}).get(n_key, "")
        table.add_row(lang, str(n), *(_fmt(sub.loc[lang, m]) for m in metrics))
    table.add_row("mean", "", *(_fmt(sub[m].mean()) for m in metrics), style="bold")
    out.print(table)


def print_bucc_mteb(results: dict[str, Any]) -> None:
    """BUCC under MTEB's protocol: both dataset variants per language, split and layer."""
    import pandas as pd

    df = pd.DataFrame(results["metrics"])
    wide = df.pivot_table(
        index=["lang", "split", "protocol", "layer"], columns="metric", values="value"
    )
    table = Table(title="BUCC 2018, MTEB protocol (x->en cosine top-1)")
    for col in ("lang", "split", "MTEB task", "layer", "accuracy", "F1"):
        table.add_column(col, justify="right")
    names = {"mteb": "BUCC.v2", "mteb-v1": "BUCC"}
    for (lang, split, protocol, layer), row in wide.iterrows():
        table.add_row(
            lang, split, names[protocol], str(layer), _fmt(row["accuracy"]), _fmt(row["f1"])
        )
    out.print(table)


def print_results(results: dict[str, Any]) -> None:
    """The console table(s) that fit the task and protocol of a results document."""
    task = results["task"]
    mteb = results["settings"].get("protocol") == "mteb"
    if task == "tatoeba" and mteb:
        print_per_language(results, "Tatoeba, MTEB protocol (x->en)", ("f1", "accuracy"), "x")
    elif task == "tatoeba":
        print_tatoeba(results)
    elif task == "bucc2018":
        (print_bucc_mteb if mteb else print_bucc)(results)
    elif task == "lareqa":
        print_per_language(
            results, "LAReQA (XQuAD-R), 11-language pool", ("map@20", "map"), "questions"
        )
    else:
        split = results["metrics"][0]["split"] if results["metrics"] else "?"
        print_per_language(results, f"Mewsli-X ({split} mentions)", ("map@20",), "mentions")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help="Hub id, local dir or builtin:NAME.")],
    task: Annotated[
        str, typer.Option("--task", "-t", help="tatoeba, bucc2018, lareqa or mewsli-x.")
    ],
    langs: Annotated[
        str | None,
        typer.Option(help="Language set (xtreme, xtreme-r, all) or comma list (de,fr or deu)."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(help="xtreme, or mteb (Tatoeba/BUCC as MTEB scores them: x->en, F1)."),
    ] = "xtreme",
    layer: Annotated[
        str, typer.Option(help="Hidden-state index(es) (0 = embeddings), 'last' or 'all'.")
    ] = "all",
    pooling: Annotated[str, typer.Option(help="mean, mean-nospecial or cls.")] = "mean",
    prefix: Annotated[str, typer.Option(help="Text prefix, e.g. 'query: ' for E5.")] = "",
    query_prefix: Annotated[
        str | None, typer.Option(help="Prefix of the searching side (default: --prefix).")
    ] = None,
    doc_prefix: Annotated[
        str | None,
        typer.Option(help="Prefix of the searched side, e.g. 'passage: ' (default: --prefix)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="The most sentences per forward pass.")
    ] = defaults.BATCH_SIZE,
    max_tokens_per_batch: Annotated[
        int, typer.Option(help="The most padded tokens per forward pass (0: no bound).")
    ] = defaults.MAX_TOKENS_PER_BATCH,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the embedding cache.")
    ] = False,
    max_length: Annotated[int, typer.Option(help="Maximum tokens per sentence.")] = 512,
    dtype: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")] = "auto",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: auto).")] = None,
    search: Annotated[str, typer.Option(help="k-NN backend: auto, faiss or numpy.")] = "auto",
    k: Annotated[int, typer.Option(help="BUCC: neighbours for the margin.")] = 4,
    margin: Annotated[str, typer.Option(help="BUCC: ratio, distance or absolute.")] = "ratio",
    tune_split: Annotated[
        str | None, typer.Option(help="BUCC: split to tune the threshold on (default: dev/sample).")
    ] = None,
    max_sentences: Annotated[
        int | None,
        typer.Option(
            help="Quick subset: Tatoeba's first N pairs per language; BUCC N lines per side "
            "with every gold pair kept (easier than the full set)."
        ),
    ] = None,
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
) -> None:
    """Evaluate an encoder zero-shot on a retrieval task, for one, several or all layers."""
    from xstilts.data.registry import get_task
    from xstilts.evaluate import EvalConfig, evaluate_model
    from xstilts.io import ensure_writable, write_json_atomic
    from xstilts.paths import resolve_data_dir
    from xstilts.search import MARGINS

    spec = get_task(task)
    lang_list = spec.parse_langs(spec.default_langs if langs is None else langs)
    if margin not in MARGINS:
        raise UsageError(f"--margin {margin!r}: choose one of {', '.join(MARGINS)}")
    if search not in ("auto", "faiss", "numpy"):
        raise UsageError(f"--search {search!r}: choose auto, faiss or numpy")
    if k < 1:
        raise UsageError("--k must be >= 1")
    spec.check_options(protocol, max_sentences)
    root = resolve_data_dir(data_dir)
    if not root.is_dir():
        raise XstiltsError(
            f"data directory {root} does not exist; fetch data with `xstilts data fetch "
            f"{spec.name}` or point --data-dir / XSTILTS_DATA at it"
        )
    # outputs are checked before the work, not after minutes of encoding
    if out_path is not None:
        ensure_writable(out_path)
    for folder in (save_embeddings, save_predictions):
        if folder is not None:
            ensure_writable(folder, directory=True)
    cfg = EvalConfig(
        task=spec.name,
        langs=lang_list,
        layers=parse_layers(layer),
        pooling=pooling,
        prefix=prefix,
        query_prefix=query_prefix,
        doc_prefix=doc_prefix,
        protocol=protocol,
        batch_size=batch_size,
        max_tokens_per_batch=max_tokens_per_batch,
        max_length=max_length,
        use_cache=not no_cache,
        search_backend=search,  # type: ignore[arg-type]
        k=k,
        margin=margin,
        tune_split=tune_split,
        max_sentences=max_sentences,
        save_embeddings=save_embeddings,
        save_predictions=save_predictions,
    )
    with make_progress() as progress:
        results = evaluate_model(
            model,
            cfg,
            root,
            device=device,
            dtype=dtype,
            max_length=max_length,
            trust_remote_code=trust_remote_code,
            progress=RichProgress(progress),
        )
    print_results(results)
    t = results["timings"]
    enc = results["encoding"]
    cached = f", {enc['sentences_from_cache']} from cache" if enc["sentences_from_cache"] else ""
    err.print(
        f"{enc['sentences_encoded']} sentences encoded{cached} ({results['settings']['dtype']}, "
        f"padding {100 * enc['padding_ratio']:.0f}%); encode {t['encode_s']:.1f}s, "
        f"search {t['search_s']:.1f}s, total {t['total_s']:.1f}s"
    )
    if out_path:
        write_json_atomic(out_path, results)
        err.print(f"results written to {out_path}")


@app.command("export-mteb")
def export_mteb(
    results_json: Annotated[Path, typer.Argument(help="A results file from `xstilts evaluate`.")],
    out_dir: Annotated[Path, typer.Argument(help="Directory for the <Task>.json files.")],
    layer: Annotated[
        int | None, typer.Option(help="Hidden-state index to export (needed if several).")
    ] = None,
) -> None:
    """Write MTEB-style result files (Tatoeba.json, BUCC.v2.json, BUCC.json) from --protocol
    mteb rows."""
    from xstilts.export import write_mteb_results
    from xstilts.io import ensure_writable
    from xstilts.results import load_results

    doc = load_results(results_json)
    ensure_writable(out_dir, directory=True)
    paths = write_mteb_results(doc, out_dir, layer=layer)
    for path in paths:
        out.print(f"wrote {path}")


@data_app.command("list")
def data_list(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root (default: $XSTILTS_DATA).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One row per language.")] = False,
) -> None:
    """Show retrieval tasks, their languages, sizes, and where the files are expected."""
    from xstilts.data.registry import TASKS
    from xstilts.paths import resolve_data_dir

    root = resolve_data_dir(data_dir)
    out.print(f"data directory: {root}" + ("" if root.is_dir() else " (missing)"))
    summary = Table(title="Retrieval tasks")
    for col in ("task", "languages", "present", "MiB", "metric"):
        summary.add_column(col, justify="right" if col in ("MiB", "present") else "left")
    detail = Table(title="Per language")
    for col in ("task", "lang", "file", "lines"):
        detail.add_column(col, overflow="fold")
    where: list[str] = []
    for task in TASKS.values():
        present = size = 0
        for lang in task.languages:
            files = task.files(root, lang)
            present += bool(files) and all(p.is_file() for p in files)
            for p in files:
                exists = p.is_file()
                size += p.stat().st_size if exists else 0
                if verbose:
                    detail.add_row(
                        task.name, lang, str(p), str(_count_lines(p)) if exists else "missing"
                    )
        summary.add_row(
            task.name,
            str(len(task.languages)),
            f"{present}/{len(task.languages)}",
            f"{size / 2**20:.1f}",
            task.metric,
        )
        where.append(f"  {task.name}: {task.files(root, task.languages[0])[0].parent}")
    out.print(summary)
    out.print("files expected under:")
    for line in where:
        out.print(line, highlight=False)
    if verbose:
        out.print(detail)


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


@data_app.command("fetch")
def data_fetch(
    task: Annotated[str, typer.Argument(help="tatoeba or bucc2018.")],
    data_dir: Annotated[
        Path | None, typer.Option(help="Data root (default: $XSTILTS_DATA).")
    ] = None,
    langs: Annotated[str | None, typer.Option(help="Only these languages (comma list).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Mirror to download from instead.")] = None,
    allow_unverified: Annotated[
        bool, typer.Option(help="Accept files without a recorded checksum (prints their SHA-256).")
    ] = False,
) -> None:
    """Download a dataset from its public source, verifying checksums."""
    from xstilts.data.fetch import fetch
    from xstilts.io import ensure_writable
    from xstilts.paths import resolve_data_dir

    root = resolve_data_dir(data_dir)
    ensure_writable(root, directory=True)
    lang_list = [s.strip() for s in langs.split(",") if s.strip()] if langs is not None else None
    counts: dict[str, int] = {}

    def report(d: Any, status: str) -> None:
        key = status.split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
        if key == "unverified":
            err.print(f"{d.url}: {status}")

    with err.status(f"fetching {task} into {root} ..."):
        paths = fetch(
            task,
            root,
            base_url=base_url,
            langs=lang_list,
            allow_unverified=allow_unverified,
            on_file=report,
        )
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    out.print(f"{task}: {len(paths)} files in {root} ({summary})")


@cache_app.command("info")
def cache_info() -> None:
    """Where the embedding cache is and how much it holds."""
    from xstilts.cache import EmbeddingCache

    info = EmbeddingCache().info()
    out.print(
        f"{info.path}: {info.entries} entries, {info.files} files, {info.bytes / 2**20:.1f} MiB"
    )


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached embedding."""
    from xstilts.cache import EmbeddingCache

    info = EmbeddingCache().clear()
    out.print(f"removed {info.entries} entries ({info.bytes / 2**20:.1f} MiB) from {info.path}")


@models_app.command("list")
def models_list() -> None:
    """Builtin models (offline, converted on first use) with size, layers, languages, licence."""
    from xstilts.models.builtin import BUILTIN_MODELS

    table = Table(title="Builtin models (use as --model builtin:NAME)")
    for col in ("name", "layers", "hidden", "size (MB)", "languages"):
        table.add_column(col, overflow="fold")
    for info in BUILTIN_MODELS.values():
        table.add_row(
            info.name,
            str(info.num_layers),
            str(info.hidden_size),
            f"{info.size_mb:g}",
            info.languages,
        )
    out.print(table)
    for info in BUILTIN_MODELS.values():
        out.print(Text.assemble((info.name, "bold"), f": {info.description}"))
        out.print(f"  licence: {info.licence}", highlight=False)
        out.print(f"  source: {info.source}", highlight=False)
    out.print("Any Hugging Face encoder works too: --model xlm-roberta-large or --model ./my-model")


def _register_experiment() -> None:
    from xstilts.cli_experiment import quickstart_command, run_command

    app.command("run")(run_command)
    app.command("quickstart")(quickstart_command)


_register_experiment()


def _register_train() -> None:
    from xstilts.cli_train import train_command

    app.command("train")(train_command)


_register_train()


def _register_report() -> None:
    from xstilts.cli_report import compare_command, report_command

    app.command("report")(report_command)
    app.command("compare")(compare_command)


_register_report()


def _register_scale() -> None:
    from xstilts.cli_scale import register

    register(app)


_register_scale()


def _command_name(argv: list[str]) -> str:
    """The command (group) the user ran, for the last-resort error line."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in ("data", "models", "cache") else words[0]


def main() -> None:
    """Console entry point: user errors are one line and exit code 2; any other failure is one
    line naming the command and the exception, exit code 1 (``--debug``: the traceback)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except XstiltsError as exc:
        if _state["debug"]:
            raise
        err.print(f"error: {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a raw traceback by default
        if _state["debug"]:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        command = _command_name(sys.argv)
        err.print(
            f"error: xstilts {command}: unexpected {type(exc).__name__}"
            + (f": {first}" if first else "")
            + " (this is a bug in xstilts, or an input it does not check yet: rerun with "
            "--debug for the traceback and report it)",
            soft_wrap=True,
        )
        sys.exit(1)
