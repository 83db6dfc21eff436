"""What every command shares: the two consoles, progress bars, tables, plain log lines.

Markup, emoji codes and highlighting are off on both consoles: paths, sentences and error
messages are printed as they are (``file.txt:100:`` is not an emoji code, ``[/x]`` in a path
is not a closing tag). Tables and progress bars are drawn on stderr's width, and off a terminal
(CI logs, ``> log``) tables are not squeezed to 80 columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

from xstilts.report.build import Report
from xstilts.report.render import summary_table
from xstilts.tasks import ConsoleTable

out = Console(soft_wrap=True, markup=False, emoji=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)


class RichProgress:
    """Adapter from the library's progress hook (``start``/``advance``) to a rich bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task_id: Any = None

    def start(self, total: int, description: str) -> None:
        if self.task_id is not None:
            self.progress.remove_task(self.task_id)
        self.task_id = self.progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        if self.task_id is None:  # a task that did not announce its total: count anyway
            self.task_id = self.progress.add_task("encoding", total=None)
        self.progress.advance(self.task_id, n)


def make_progress(unit: str = "sentences") -> Progress:
    """A progress bar on stderr: done/total ``unit``, elapsed time and a throughput ETA."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit, markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def print_table(
    title: str, header: list[str], rows: list[list[str]], *, bold_last_row: bool = False
) -> None:
    """A table on stdout; cells stay on one line, headers wrap (on a terminal only)."""
    table = Table(title=Text(title))
    for i, col in enumerate(header):
        widest = max((len(row[i]) for row in rows), default=1)
        if not out.is_terminal:  # a log has room: headers on one line too
            widest = max(widest, len(col))
        table.add_column(Text(col), justify="left" if i == 0 else "right", min_width=widest)
    for j, row in enumerate(rows):
        last = bold_last_row and j == len(rows) - 1
        table.add_row(*(Text(c) for c in row), style="bold" if last else None)
    # Off a terminal (a log file, CI) rich assumes 80 columns and would squeeze the headers.
    out.print(table, width=None if out.is_terminal else 200)


def print_console_tables(tables: list[ConsoleTable]) -> None:
    """Draw the tables a task's view returns, each followed by its notes."""
    for t in tables:
        print_table(t.title, t.header, t.rows, bold_last_row=t.bold_last_row)
        for note in t.notes:
            out.print(note)


def print_report(report: Report, paths: dict[str, Path]) -> None:
    """The report's summary tables, significance legend, notes and where its files are."""
    starred = False
    for model in dict.fromkeys(r.model for r in report.results):
        table = summary_table([r for r in report.results if r.model == model])
        title = f"{report.title}: {model} at layer {report.layers[model]}"
        rows = [[c.text for c in row] for row in table.rows]
        starred |= any("*" in c for row in rows for c in row[1:])
        print_table(title, table.header, rows)
    out.print(
        (
            "* significant after Holm correction for the report's comparisons; "
            if starred
            else "no difference is significant after correction; "
        )
        + f"CIs: {100 * report.options.confidence:.0f}% paired bootstrap over sentences "
        "(t over seeds when several), uncorrected"
    )
    for note in report.notes:
        out.print(f"note: {note}")
    out.print(f"report: {paths['html'].resolve()}")
    out.print(f"markdown: {paths['markdown'].resolve()}")
