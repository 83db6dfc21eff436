"""The report's figures as PNG files: delta heatmap, per-layer curves, language-group bars.

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg renderer, no pyplot
state, no display needed), so reports render the same on a headless server and in tests.
Values come in as fractions and are drawn in percentage points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.io import atomic_path

_DPI = 100


def _figure(
    width: float,
    height: float,
    *,
    left: float = 0.8,
    bottom: float = 0.6,
    right: float = 0.2,
    top: float = 0.4,
):
    """A figure with fixed margins in inches (automatic layout engines cost seconds per
    figure and reports draw many)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def _label_inches(labels: Sequence[str], size: float) -> float:
    """Rough width of the longest tick label, in inches, for a font of ``size`` points."""
    return 0.2 + 0.6 * size / 72 * max((len(x) for x in labels), default=1)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})
    return path


_MAX_COLUMNS = 40  # more languages than this: languages become rows (a tall, readable figure)


def heatmap(
    path: Path,
    settings: Sequence[str],
    langs: Sequence[str],
    deltas: np.ndarray,
    significant: np.ndarray,
    title: str,
) -> Path:
    """Setting x language deltas (fractions) on a diverging scale centred at 0; cells whose
    CI excludes 0 carry a dot. With many languages the matrix is drawn transposed."""
    values = 100 * np.asarray(deltas, dtype=float)
    sig = np.asarray(significant, dtype=bool)
    rows_lab, cols_lab = list(settings), list(langs)
    if len(langs) > _MAX_COLUMNS:
        values, sig, rows_lab, cols_lab = values.T, sig.T, cols_lab, rows_lab
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    left = _label_inches(rows_lab, 8)
    bottom = _label_inches(cols_lab, 8)
    fig = _figure(
        max(5.0, left + 1.7 + 0.35 * len(cols_lab)),
        bottom + 0.7 + (0.4 if len(rows_lab) < 10 else 0.2) * max(2, len(rows_lab)),
        left=left,
        bottom=bottom,
        right=1.6,
        top=0.7,
    )
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols_lab)), labels=cols_lab, rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows_lab)), labels=rows_lab, fontsize=8)
    r, c = np.nonzero(sig)
    ax.scatter(c, r, marker="o", s=10, c="black")
    ax.set_title(title + ("\n(dot: CI excludes 0)" if len(r) else ""), fontsize=9, loc="left")
    cax = fig.add_axes(
        (
            1 - 1.3 / fig.get_figwidth(),
            ax.get_position().y0,
            0.15 / fig.get_figwidth(),
            ax.get_position().height,
        )
    )
    fig.colorbar(im, cax=cax, label="Δ vs baseline (points)")
    return _save(fig, path)


def layer_curves(
    path: Path, per_layer: pd.DataFrame, baseline: str | None, title: str, ylabel: str
) -> Path:
    """Score (mean over languages and seeds) by hidden-state index, one line per setting; the
    baseline dashed."""
    fig = _figure(6.4, 3.8, right=1.9)
    ax = fig.add_subplot()
    layers = [int(x) for x in per_layer.index]
    for setting in per_layer.columns:
        y = 100 * per_layer[setting].to_numpy(dtype=float)
        style = {"linestyle": "--", "color": "black", "zorder": 3} if setting == baseline else {}
        ax.plot(layers, y, marker="o", markersize=3, label=str(setting), **style)
    ax.set_xlabel("hidden-state index (0 = embeddings)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(layers)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def group_bars(
    path: Path,
    groups: Sequence[str],
    settings: Sequence[str],
    deltas: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    title: str,
    split_at: int | None = None,
) -> Path:
    """Mean delta per language group (x) and setting (bars), with CI whiskers where known
    (NaN bounds draw no whisker); a dotted line before group ``split_at`` separates two
    groupings (resource levels | scripts)."""
    d = 100 * np.asarray(deltas, dtype=float)
    lo = 100 * np.asarray(lows, dtype=float)
    hi = 100 * np.asarray(highs, dtype=float)
    fig = _figure(
        max(5.0, 3.2 + 0.35 * len(groups) * max(1, len(settings)) ** 0.5),
        3.6,
        right=1.9,
        bottom=0.7,
    )
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(settings))
    for i, setting in enumerate(settings):
        err = np.vstack([d[i] - lo[i], hi[i] - d[i]])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.bar(
            x + (i - (len(settings) - 1) / 2) * width,
            d[i],
            width,
            yerr=err,
            capsize=2,
            label=str(setting),
        )
    ax.axhline(0, color="black", linewidth=0.8)
    if split_at:
        ax.axvline(split_at - 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, labels=list(groups), fontsize=8, rotation=30, ha="right")
    ax.set_ylabel("Δ vs baseline (points)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
