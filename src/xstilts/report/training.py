"""What each setting trained on, read from the store: group and its source, rows and examples
per language, the budget actually spent (examples, tokens, optimizer steps, epochs per task),
and any training text that overlapped evaluation text.

A comparison is only worth printing when the reader can see what each side trained on and
that the budgets match: :func:`budget_notes` says when two trained settings' examples or tokens
differ by more than ``report.budget_tolerance`` (10 %).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from xstilts.experiment.leakage import CONTAMINATION_SHARE


@dataclass
class TrainingSummary:
    """One trained setting (its first seed's record; seeds draw other rows of equal shares)."""

    setting: str
    group: str
    group_source: str  # "data", "override" or "name" (a store written before records)
    planned: bool  # True: the run has not finished, these are the expected shares
    seeds: int
    by_lang: dict[str, int]  # examples drawn per language (tasks and MLM text)
    english_share: float | None
    examples: float | None  # task examples seen, mean over seeds
    tokens: float | None
    mlm_examples: float | None
    steps: float | None
    epochs: dict[str, float]  # per task, mean over seeds
    overlaps: list[dict[str, Any]] = field(default_factory=list)

    def langs_text(self, n: int = 6) -> str:
        """``en 400, de 91, ...`` (the most frequent languages first)."""
        items = sorted(self.by_lang.items(), key=lambda t: -t[1])
        shown = ", ".join(f"{lang} {k}" for lang, k in items[:n])
        return shown + (f", +{len(items) - n} more" if len(items) > n else "")


def _json(value: Any) -> Any:
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(sum(present) / len(present)) if present else None


def summaries(cells: pd.DataFrame) -> list[TrainingSummary]:
    """One summary per trained setting, in store order."""
    out = []
    trained = cells[cells.grp != "baseline"]
    for setting, g in trained.groupby("setting", sort=False):
        records = [_json(r) for r in g.get("train_record", pd.Series([None] * len(g)))]
        records = [r for r in records if isinstance(r, dict)]
        first = records[0] if records else {}
        planned = bool(first.get("planned", not records))
        exact = [r for r in records if not r.get("planned")]
        by_lang = (first.get("by_lang", {}).get("examples") if not planned else None) or {
            lang: round(share, 4) for lang, share in first.get("expected_share", {}).items()
        }
        sources = g.get("group_source", pd.Series([None] * len(g)))
        leak = [_json(v) for v in g.get("leakage", pd.Series([None] * len(g)))]
        epochs: dict[str, list[float]] = {}
        for r in exact:
            for task, part in r.get("tasks", {}).items():
                epochs.setdefault(task, []).append(float(part.get("epochs", 0.0)))
        out.append(
            TrainingSummary(
                setting=str(setting),
                group=str(g.grp.iloc[0]),
                group_source=str(sources.iloc[0]) if isinstance(sources.iloc[0], str) else "name",
                planned=planned,
                seeds=len(g),
                by_lang=by_lang,
                english_share=first.get("english_share"),
                examples=_mean([r.get("examples") for r in exact]),
                tokens=_mean([r.get("tokens") for r in exact]),
                mlm_examples=_mean([r.get("mlm_examples") for r in exact]),
                steps=_mean([r.get("steps") for r in exact]),
                epochs={t: sum(v) / len(v) for t, v in epochs.items()},
                overlaps=[o for found in leak if isinstance(found, list) for o in found],
            )
        )
    return out


def budget_notes(trained: Sequence[TrainingSummary], tolerance: float) -> list[str]:
    """Notes on budgets that do not match (examples or tokens) between trained settings."""
    notes = []
    for what in ("examples", "tokens"):
        values = {t.setting: getattr(t, what) for t in trained if getattr(t, what)}
        if len(values) < 2:
            continue
        lo = min(values, key=lambda s: values[s])
        hi = max(values, key=lambda s: values[s])
        if values[hi] > (1 + tolerance) * values[lo]:
            notes.append(
                f"budgets not matched: {hi} saw {values[hi]:,.0f} {what}, {lo} "
                f"{values[lo]:,.0f} ({values[hi] / values[lo]:.1f}x; more than "
                f"{100 * tolerance:.0f}% apart): a difference between them may be a difference "
                "in training amount (set training.budget in the spec)"
            )
    return notes


def training_notes(trained: Sequence[TrainingSummary]) -> list[str]:
    """Overrides, unfinished runs and leakage the reader must know about."""
    notes = []
    for t in trained:
        if t.group_source == "override":
            notes.append(f"{t.setting}: group {t.group!r} is the spec's override, not the data's")
        if t.group_source == "name":
            notes.append(f"{t.setting}: group from an older store (task names), not from data")
        if t.planned:
            notes.append(f"{t.setting}: no finished training record (expected shares shown)")
        for o in t.overlaps:
            notes.append(f"{t.setting}: training text overlaps evaluation text: {_overlap(o)}")
    return notes


def _overlap(o: dict[str, Any]) -> str:
    """One recorded overlap, with why the run went on (older stores lack the share)."""
    share = o.get("share")
    if share is None:
        return f"{o['source']} x {o['evaluation']}, {o['n']} texts"
    why = (
        "contamination, allowed with --allow-overlap"
        if share >= CONTAMINATION_SHARE
        else f"below the {100 * CONTAMINATION_SHARE:.0f}% contamination threshold"
    )
    return (
        f"{o['source']} x {o['evaluation']}, {o['n']} texts, at most {100 * share:.2f}% of "
        f"one language's ({o['lang']}; {why})"
    )
