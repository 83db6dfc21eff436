"""Terminal views of results documents, shared by the tasks: per-layer and per-language tables
as plain text (:class:`~xstilts.tasks.base.ConsoleTable`; the CLI draws them).

When several layers were evaluated the per-layer table marks the best one, and the table says
that it was chosen on the very data it shows (a view, not a held-out selection).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from xstilts.tasks.base import ConsoleTable


def fmt(v: float | None, pct: bool = True) -> str:
    """A metric for a table: percent with one decimal, or a raw value."""
    if v is None or v != v:
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.4f}"


def _per_layer_table(
    wide: pd.DataFrame, title: str, columns: tuple[str, ...], chooser: str, what: str
) -> tuple[ConsoleTable, int]:
    per_layer = wide.groupby(level="layer").mean()
    best = int(per_layer[chooser].idxmax())
    rows = [
        [f"{lay}{' *' if lay == best else ''}", *(fmt(row[c]) for c in columns)]
        for lay, row in per_layer.iterrows()
    ]
    note = f"* best layer by {what}: {best} (chosen on this test data)"
    return ConsoleTable(title, ["layer", *columns], rows, notes=[note]), best


def per_language(
    results: dict[str, Any],
    title: str,
    metrics: tuple[str, ...],
    n_key: str,
    *,
    index: str = "metric",
    chooser: str | None = None,
    chooser_label: str | None = None,
) -> list[ConsoleTable]:
    """Per-layer means (when several layers), then one row per language at the chosen layer.

    ``index="metric"`` makes one column per metric; ``index="direction"`` one column per
    direction of the first metric (Tatoeba's en->x, x->en, mean). ``chooser`` is the column
    that picks the layer (default: the first), ``chooser_label`` how the note names it.
    """
    df = pd.DataFrame(results["metrics"])
    if index == "direction":
        df = df[df.metric == metrics[0]]
        columns = ("en->x", "x->en", "mean")
    else:
        df = df[df.metric.isin(metrics)]
        columns = metrics
    wide = df.pivot_table(index=["layer", "lang"], columns=index, values="value")
    layers = sorted(df.layer.unique())
    tables: list[ConsoleTable] = []
    layer = int(layers[0])
    if len(layers) > 1:
        chooser = chooser or columns[0]
        what = chooser_label or f"mean {chooser}"
        title_layers = f"{title}: % by layer, mean over languages"
        table, layer = _per_layer_table(wide, title_layers, columns, chooser, what)
        tables.append(table)
    sub = wide.loc[layer]
    rows = []
    for lang in results["languages"]:
        n = results["sizes"].get(lang, {}).get(n_key, "")
        rows.append([lang, str(n), *(fmt(sub.loc[lang, c]) for c in columns)])
    rows.append(["mean", "", *(fmt(sub[c].mean()) for c in columns)])
    tables.append(
        ConsoleTable(f"{title}: % at layer {layer}", ["lang", "n", *columns], rows,
                     bold_last_row=True)
    )  # fmt: skip
    return tables


def split_rows(
    results: dict[str, Any],
    title: str,
    keys: tuple[str, ...],
    columns: tuple[tuple[str, str, bool], ...],
) -> list[ConsoleTable]:
    """One row per combination of ``keys`` (e.g. language, split, layer) with the given
    ``(header, metric, as percent)`` columns: BUCC's views."""
    df = pd.DataFrame(results["metrics"])
    wide = df.pivot_table(index=list(keys), columns="metric", values="value")
    rows = []
    for idx, row in wide.iterrows():
        cells = [str(v) for v in (idx if isinstance(idx, tuple) else (idx,))]
        for _, metric, pct in columns:
            value = row.get(metric)
            cells.append(str(int(value)) if metric == "n_predicted" and value == value
                         else fmt(value, pct))  # fmt: skip
        rows.append(cells)
    header = [*keys, *(h for h, _, _ in columns)]
    return [ConsoleTable(title, header, rows)]
