"""Grid expansion: models x settings x seeds -> cells, each with a stable key.

The baseline (a setting with no tasks) involves no training and no randomness, so it is one
cell per model whatever the seeds. A trained cell's group comes from the rows it will train on
(:func:`xstilts.train.data.plan_record`: every trained row English -> ``english``, at least
half not English -> ``multilingual``, else ``mixed``), never from task names; a group written
in the spec must agree with the data or say ``group_override: true`` (then the report shows the
override). The finished run's exact record replaces the plan in the store.

A cell's key hashes what determines its weights (model, setting, seed, training
configuration): rerunning the same spec finds the finished cells, and each (cell, retrieval
task) evaluation carries its own hash of the evaluation settings, so adding a task or changing
a layer only redoes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.errors import DataError, UsageError
from xstilts.experiment.spec import ExperimentSpec, Group, Setting, config_hash, slug
from xstilts.paths import resolve_data_dir
from xstilts.train.config import TrainConfig
from xstilts.train.data import plan_record


@dataclass(frozen=True)
class Cell:
    """One (model, setting, seed) of the grid."""

    key: str
    model: str
    setting: Setting
    group: Group
    seed: int | None
    train: TrainConfig | None  # None for the baseline
    plan: dict[str, Any] | None = field(default=None, compare=False)  # expected record
    group_source: str = "data"  # "data", or "override" (the spec's group_override)

    @property
    def label(self) -> str:
        """Human-readable name: ``setting @ model (seed)``."""
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.setting.name} @ {self.model}{seed}"


def data_group(setting: Setting, cfg: TrainConfig, data_dir: Path) -> tuple[str, str, dict]:
    """``(group, source, planned record)`` of a trained setting: the group its rows decide, or
    the spec's own group when it overrides (a disagreement without ``group_override`` is an
    error naming both and the English share)."""
    try:
        plan = plan_record(cfg, data_dir)
    except DataError as exc:  # missing or broken training data: before anything runs
        raise DataError(f"setting {setting.name}: {exc}") from exc
    if setting.group is None or setting.group == plan["group"]:
        return plan["group"], "data", plan
    if setting.group_override:
        return setting.group, "override", plan
    raise UsageError(
        f"setting {setting.name}: group {setting.group!r} contradicts its training data, which "
        f"makes it {plan['group']!r} ({100 * plan['english_share']:.0f}% of the expected "
        "examples English); drop `group`, or add `group_override: true` to keep it (the report "
        "shows the override)"
    )


def train_dir(spec: ExperimentSpec, cfg: TrainConfig) -> Path:
    """Runs are stored by configuration hash, so identical configurations share one run."""
    assert spec.output is not None
    return spec.output / "train" / f"{slug(cfg.model)}-{cfg.weights_hash()[:16]}"


def expand_grid(spec: ExperimentSpec) -> list[Cell]:
    """Every cell of the experiment, baseline first, in spec order."""
    assert spec.output is not None
    data_dir = resolve_data_dir(spec.data_dir)
    cells: list[Cell] = []
    for model in spec.models:
        for setting in sorted(spec.settings, key=lambda s: bool(s.tasks)):
            seeds: list[int | None] = list(spec.seeds) if setting.tasks else [None]
            for seed in seeds:
                cells.append(_cell(spec, model, setting, seed, data_dir))
    return cells


def _cell(
    spec: ExperimentSpec, model: str, setting: Setting, seed: int | None, data_dir: Path
) -> Cell:
    assert spec.output is not None
    cfg = None
    group, source, plan = "baseline", "data", None
    if setting.tasks:
        assert seed is not None
        cfg = spec.train_config(setting, model, seed, spec.output)
        cfg = cfg.model_copy(update={"out": train_dir(spec, cfg)})
        group, source, plan = data_group(setting, cfg, data_dir)
    key = config_hash(
        {
            "model": model,
            "setting": setting.name,
            "seed": seed,
            "train": cfg.weights_hash() if cfg else None,
        }
    )[:20]
    return Cell(key, model, setting, group, seed, cfg, plan, source)  # type: ignore[arg-type]
