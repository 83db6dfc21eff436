"""Comparison reports: from a results store (or two results files) to tables, CIs, plots and
findings.

``build`` reads stored metrics and computes every number, ``stats`` holds the pure statistics
(paired bootstrap, t-intervals), ``findings`` writes sentences from the numbers, ``plots`` draws
PNGs and ``render`` writes Markdown, HTML and CSV. Entry points: :func:`make_report` and
:func:`xstilts.report.build.compare_results`.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.report.build import Report, build_report
from xstilts.report.render import write_report


def make_report(
    source: Path, out_dir: Path, *, layer: int | None = None, bootstrap: int | None = None
) -> tuple[Report, dict[str, Path]]:
    """Build the report of a spec or results store and write it to ``out_dir``.

    Returns ``(report, paths)``: the computed :class:`~xstilts.report.build.Report` and the
    written files by name (``html``, ``markdown``, ``results``, ``summary``, ``per_language``).
    """
    report = build_report(source, layer=layer, bootstrap=bootstrap)
    return report, write_report(report, out_dir)
