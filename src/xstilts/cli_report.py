"""``xstilts report`` and ``xstilts compare``: thin wrappers over :mod:`xstilts.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from xstilts.cli import out

    table = Table(title=Text(title))  # Text: "[+1.0, +3.2]" and names are never markup
    for i, col in enumerate(header):
        widest = max((len(row[i]) for row in rows), default=1)  # cells on one line, headers wrap
        if not out.is_terminal:  # a log has room: headers on one line too
            widest = max(widest, len(col))
        table.add_column(Text(col), justify="left" if i == 0 else "right", min_width=widest)
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    # Off a terminal (a log file, CI) rich assumes 80 columns and would squeeze the headers.
    out.print(table, width=None if out.is_terminal else 200)


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
    from xstilts.cli import out
    from xstilts.io import ensure_writable
    from xstilts.report import make_report
    from xstilts.report.render import summary_table

    ensure_writable(out_dir, directory=True)
    report, paths = make_report(spec_or_db, out_dir, layer=layer, bootstrap=bootstrap)
    starred = False
    for model in dict.fromkeys(r.model for r in report.results):
        table = summary_table([r for r in report.results if r.model == model])
        title = f"{report.title}: {model} at layer {report.layers[model]}"
        rows = [[c.text for c in row] for row in table.rows]
        starred |= any("*" in c for row in rows for c in row[1:])
        _print_table(title, table.header, rows)
    out.print(
        ("* every available CI excludes 0; " if starred else "no difference is significant; ")
        + f"CIs: {100 * report.options.confidence:.0f}% paired bootstrap over sentences "
        "(t over seeds when several)",
        markup=False,
        highlight=False,
    )
    for note in report.notes:
        out.print(f"note: {note}")
    out.print(f"report: {paths['html'].resolve()}")
    out.print(f"markdown: {paths['markdown'].resolve()}")


def compare_command(
    a: Annotated[Path, typer.Argument(help="Results file A (xstilts evaluate --out).")],
    b: Annotated[Path, typer.Argument(help="Results file B, compared against A.")],
    layer: Annotated[
        int | None, typer.Option(help="Hidden-state index (default: the highest in both).")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the CIs.")] = 1000,
) -> None:
    """Per-language comparison of two evaluations: A, B, B - A, with paired bootstrap CIs."""
    from xstilts.cli import out
    from xstilts.errors import UsageError
    from xstilts.report.build import compare_results
    from xstilts.report.findings import delta_cell, pct

    if bootstrap < 100:
        raise UsageError(f"--bootstrap {bootstrap}: use at least 100 replicates")
    results, used = compare_results(a, b, layer=layer, bootstrap=bootstrap)
    for res in results:
        base, other = res.baseline, res.settings[0]
        assert base is not None
        rows = []
        for lang in res.languages:
            lr = other.per_lang[lang]
            sig = lr.ci.significant if lr.ci is not None else None
            rows.append(
                [
                    lang,
                    res.splits[lang],
                    pct(base.per_lang[lang].value),
                    pct(lr.value),
                    delta_cell(lr.delta, lr.ci, sig),
                ]
            )
        rows.append(
            [
                "mean",
                "",
                pct(base.score),
                pct(other.score),
                delta_cell(other.delta, other.ci, other.significant),
            ]
        )
        header = ["lang", "split", f"A {base.setting}", f"B {other.setting}", "B - A [95% CI]"]
        _print_table(f"{res.headline.label} at layer {used} (%)", header, rows)
        for note in res.notes:
            out.print(f"note: {note}", markup=False)
    out.print("* the paired bootstrap CI excludes 0; no CI where a file has no per-sentence items")
