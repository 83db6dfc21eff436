"""The training configuration: one typed object, validated, hashed for reuse.

The same object backs ``xstilts train`` options and the ``training`` block of experiment
specs. :meth:`TrainConfig.weights_hash` covers exactly the fields that change the trained
weights, so an experiment can reuse a finished run whose hash matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xstilts.errors import UsageError
from xstilts.train.sampling import parse_sampling

# Fields that do not change the trained weights (where files go, how often to log or keep).
_NOT_HASHED = {"out", "data_dir", "save_every", "keep_checkpoints", "log_every", "resume"}


class TrainConfig(BaseModel):
    """Everything one intermediate-task training run needs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Hub id, local directory or builtin:NAME.")
    tasks: list[str] = Field(min_length=1, description="Intermediate tasks (see docs/tasks.md).")
    langs: list[str] | None = Field(None, description="Languages for multilingual tasks.")
    out: Path = Field(description="Run directory.")
    data_dir: Path | None = None
    train_split: str | dict[str, str] | None = Field(
        None,
        description="Training split for every task, or per task ({xnli: dev}); e.g. 'dev' for "
        "tasks whose train split is not available (10% of it is then held out for dev metrics).",
    )
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    batch_size: int = Field(32, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    max_grad_norm: float = Field(1.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    sampling: str = "proportional"
    max_examples: int | None = Field(None, ge=1, description="Per task, for small runs.")
    eval_max_examples: int | None = Field(2000, ge=1)
    max_length: int = Field(128, ge=8)
    span_max_length: int = Field(384, ge=16)
    doc_stride: int = Field(128, ge=1)
    eval_every: int | None = Field(None, ge=1, description="Steps between dev evaluations.")
    save_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(1, ge=1)
    log_every: int = Field(10, ge=1)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    mlm_aux: bool = False
    mlm_data: list[str] = Field(default_factory=lambda: ["xnli"])
    mlm_weight: float = Field(1.0, gt=0)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    skip_bad_rows: bool = False
    trust_remote_code: bool = False
    resume: bool = False

    @field_validator("tasks", "langs", "mlm_data", mode="before")
    @classmethod
    def _split_commas(cls, v):
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("train_split", mode="before")
    @classmethod
    def _split_per_task(cls, v):
        """``"xnli:dev,mnli:train"`` (the command line's form) -> ``{"xnli": "dev", ...}``."""
        if isinstance(v, str) and ":" in v:
            pairs = [item.split(":", 1) for item in v.split(",") if item.strip()]
            if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
                raise ValueError(f"{v!r}: use SPLIT or TASK:SPLIT,TASK:SPLIT")
            return {t.strip(): s.strip() for t, s in pairs}
        return v

    @field_validator("sampling")
    @classmethod
    def _check_sampling(cls, v: str) -> str:
        try:
            parse_sampling(v)
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("--sampling ")) from None
        return v

    def split_for(self, task: str, default: str) -> str:
        """The training split of one task."""
        if isinstance(self.train_split, dict):
            return self.train_split.get(task, default)
        return self.train_split or default

    def weights_hash(self) -> str:
        """Hash of every setting that changes the trained weights (paths excluded)."""
        doc = self.model_dump(mode="json", exclude=_NOT_HASHED)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
