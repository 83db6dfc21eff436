"""Grid expansion: models x settings x seeds -> cells, each with a stable key.

The baseline (a setting with no tasks) involves no training and no randomness, so it is one
cell per model whatever the seeds. A cell's key hashes what determines its weights (model,
setting, seed, training configuration): rerunning the same spec finds the finished cells, and
each (cell, retrieval task) evaluation carries its own hash of the evaluation settings, so
adding a task or changing a layer only redoes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xstilts.experiment.spec import ExperimentSpec, Group, Setting, config_hash, slug
from xstilts.intermediate import get_intermediate_task, parse_task_list
from xstilts.train.config import TrainConfig


@dataclass(frozen=True)
class Cell:
    """One (model, setting, seed) of the grid."""

    key: str
    model: str
    setting: Setting
    group: Group
    seed: int | None
    train: TrainConfig | None  # None for the baseline

    @property
    def label(self) -> str:
        """Human-readable name: ``setting @ model (seed)``."""
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.setting.name} @ {self.model}{seed}"


def infer_group(setting: Setting, spec: ExperimentSpec) -> Group:
    """English, multilingual or mixed, from the tasks (MLM on multilingual text counts as
    multilingual), unless the setting says so itself."""
    if setting.group:
        return setting.group
    if not setting.tasks:
        return "baseline"
    tasks = parse_task_list(",".join(setting.tasks))
    english = {get_intermediate_task(t.name).english for t in tasks}
    if {**spec.training, **setting.training}.get("mlm_aux"):
        english.add(False)
    if english == {True}:
        return "english"
    if english == {False}:
        return "multilingual"
    return "mixed"


def train_dir(spec: ExperimentSpec, cfg: TrainConfig) -> Path:
    """Runs are stored by configuration hash, so identical configurations share one run."""
    assert spec.output is not None
    return spec.output / "train" / f"{slug(cfg.model)}-{cfg.weights_hash()[:16]}"


def expand_grid(spec: ExperimentSpec) -> list[Cell]:
    """Every cell of the experiment, baseline first, in spec order."""
    assert spec.output is not None
    cells: list[Cell] = []
    for model in spec.models:
        for setting in sorted(spec.settings, key=lambda s: bool(s.tasks)):
            group = infer_group(setting, spec)
            seeds: list[int | None] = list(spec.seeds) if setting.tasks else [None]
            for seed in seeds:
                cfg = None
                if setting.tasks:
                    assert seed is not None
                    cfg = spec.train_config(setting, model, seed, spec.output)
                    cfg = cfg.model_copy(update={"out": train_dir(spec, cfg)})
                key = config_hash(
                    {
                        "model": model,
                        "setting": setting.name,
                        "seed": seed,
                        "train": cfg.weights_hash() if cfg else None,
                    }
                )[:20]
                cells.append(Cell(key, model, setting, group, seed, cfg))
    return cells
