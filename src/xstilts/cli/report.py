"""``xstilts report`` and ``xstilts compare``: thin wrappers over :mod:`xstilts.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.console import out, print_report, print_table
from xstilts.errors import UsageError
from xstilts.io import ensure_writable
from xstilts.report import make_report
from xstilts.report.build import compare_results
from xstilts.report.findings import delta_cell, pct


def report_command(
    spec_or_db: Annotated[
        Path, typer.Argument(help="Experiment spec (YAML) or its results.sqlite.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report files.")],
    layer: Annotated[
        int | None,
        typer.Option(help="Hidden-state index to report (default: the spec's report_layer)."),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option(help="Bootstrap replicates for the CIs (default: the spec's, 1000)."),
    ] = None,
) -> None:
    """Comparison report of an experiment: tables, CIs, plots, findings (Markdown + HTML)."""
    ensure_writable(out_dir, directory=True)
    print_report(*make_report(spec_or_db, out_dir, layer=layer, bootstrap=bootstrap))


def compare_command(
    a: Annotated[Path, typer.Argument(help="Results file A (xstilts evaluate --out).")],
    b: Annotated[Path, typer.Argument(help="Results file B, compared against A.")],
    layer: Annotated[
        int | None, typer.Option(help="Hidden-state index (default: the highest in both).")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the CIs.")] = 1000,
) -> None:
    """Per-language comparison of two evaluations: A, B, B - A, with paired bootstrap CIs."""
    if bootstrap < 100:
        raise UsageError(f"--bootstrap {bootstrap}: use at least 100 replicates")
    results, used = compare_results(a, b, layer=layer, bootstrap=bootstrap)
    for res in results:
        base, other = res.baseline, res.settings[0]
        assert base is not None
        rows = []
        for lang in res.languages:
            lr = other.per_lang[lang]
            rows.append(
                [lang, res.splits[lang], pct(base.per_lang[lang].value), pct(lr.value),
                 delta_cell(lr.delta, lr.ci, lr.significant)]
            )  # fmt: skip
        rows.append(
            ["mean", "", pct(base.score), pct(other.score),
             delta_cell(other.delta, other.ci, other.significant)]
        )  # fmt: skip
        header = ["lang", "split", f"A {base.setting}", f"B {other.setting}", "B - A [95% CI]"]
        print_table(f"{res.headline.label} at layer {used} (%)", header, rows)
        for note in res.notes:
            out.print(f"note: {note}")
    out.print(
        "* significant after Holm correction (paired bootstrap; per language: Holm over the "
        "languages); no CI where a file has no per-sentence items"
    )


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``compare``."""
    app.command("report")(report_command)
    app.command("compare")(compare_command)
