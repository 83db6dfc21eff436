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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xstilts.embedding.settings import Pooling
from xstilts.errors import UsageError
from xstilts.train.sampling import parse_sampling

# Fields that do not change the trained weights (where files go, how often to log or keep).
_NOT_HASHED = {"out", "data_dir", "save_every", "keep_checkpoints", "log_every", "resume"}
# Fields added after runs were first stored: left out of the hash while at their default, so a
# finished run of an older configuration is still found and reused.
_HASHED_WHEN_SET = {
    "budget": None,
    "objective": "head",
    "temperature": 0.05,
    "learn_temperature": False,
    "hard_negatives": True,
    "hybrid_alpha": None,
    "pairing": "any",
    "pooling": "mean",
    "layer": "last",
    "prefix": "",
    "query_prefix": None,
    "doc_prefix": None,
    "grad_cache": None,
}
OBJECTIVES = ("head", "contrastive")


class Budget(BaseModel):
    """A training budget every setting of a comparison reaches exactly (within one step):
    examples seen, or tokens seen (non-padding, summed over the task batches drawn)."""

    model_config = ConfigDict(extra="forbid")

    examples: int | None = Field(None, ge=1, description="Examples seen in all.")
    tokens: int | None = Field(None, ge=1, description="Non-padding tokens seen in all.")
    max_repeats: float = Field(
        10.0, gt=0, description="Warn when a task is seen more epochs than this."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Budget:
        if (self.examples is None) == (self.tokens is None):
            raise ValueError("a budget is examples: N or tokens: N (one of them)")
        return self

    @property
    def kind(self) -> str:
        """``examples`` or ``tokens``."""
        return "examples" if self.examples is not None else "tokens"

    @property
    def target(self) -> int:
        """The number to reach."""
        return int(self.examples if self.examples is not None else self.tokens)  # type: ignore[arg-type]


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
    epochs: float = Field(3.0, gt=0, description="Passes over the task data.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    budget: Budget | None = Field(
        None,
        description="Examples or tokens to see in all, e.g. examples:20000 or tokens:2000000 "
        "(decides the steps; overrides epochs and max_steps).",
    )
    batch_size: int = Field(32, ge=1, description="Examples per micro-batch and process.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (AdamW, linear schedule).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="Share of steps spent warming up.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of the task heads.")
    seed: int = Field(0, description="Seed for heads, data order, dropout.")
    sampling: str = Field(
        "proportional", description="Multi-task: proportional, uniform or temperature:T."
    )
    max_examples: int | None = Field(None, ge=1, description="Per task, for small runs.")
    eval_max_examples: int | None = Field(2000, ge=1, description="Dev examples per task.")
    max_length: int = Field(128, ge=8, description="Tokens per example (QA: span_max_length).")
    span_max_length: int = Field(384, ge=16, description="Tokens per QA window.")
    doc_stride: int = Field(128, ge=1, description="Overlap of QA windows, in tokens.")
    eval_every: int | None = Field(None, ge=1, description="Steps between dev evaluations.")
    save_every: int = Field(500, ge=1, description="Steps between checkpoints.")
    keep_checkpoints: int = Field(1, ge=1, description="Step checkpoints kept (+ best, final).")
    log_every: int = Field(10, ge=1, description="Steps between log records.")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="auto (as --dtype auto), no, bf16 or fp16."
    )
    mlm_aux: bool = Field(False, description="Add a masked-LM loss on multilingual text.")
    mlm_data: list[str] = Field(
        default_factory=lambda: ["xnli"],
        description="MLM text: 'xnli' (15 languages) or files, LANG:PATH to name a file's "
        "language (comma list).",
    )
    mlm_weight: float = Field(1.0, gt=0, description="Weight of the MLM loss.")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of tokens masked.")
    objective: str | dict[str, str] = Field(
        "head",
        description="head (each task's own head; pair tasks are contrastive) or contrastive "
        "(mnli, anli, qqp, xnli, pawsx through their pair form), for every task or per task: "
        "xnli:contrastive,mnli:head.",
    )
    temperature: float = Field(
        0.05, gt=0, le=10, description="Contrastive: softmax temperature of cosine similarities."
    )
    learn_temperature: bool = Field(
        False, description="Contrastive: learn the temperature (starting at --temperature)."
    )
    hard_negatives: bool = Field(
        True,
        description="Contrastive: use the tasks' hard negatives (third column, contradictions).",
    )
    hybrid_alpha: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Contrastive, multi-way tasks: share of monolingual batches, the rest "
        "cross-lingual (1, 0: the pure regimes); unset: each pair's languages drawn on their own.",
    )
    pairing: Literal["any", "en-x"] = Field(
        "any",
        description="Contrastive cross-lingual pairs: any two languages, or en-x (English "
        "and another).",
    )
    pooling: Pooling = Field(
        "mean", description="Contrastive sentence vector: pooling, as evaluation's --pooling."
    )
    layer: int | Literal["last"] = Field(
        "last",
        description="Contrastive sentence vector: hidden-state index, as evaluation's --layer.",
    )
    prefix: str = Field("", description="Contrastive: text prefix of both sides (E5: 'query: ').")
    query_prefix: str | None = Field(
        None, description="Contrastive: query prefix (default --prefix)."
    )
    doc_prefix: str | None = Field(
        None, description="Contrastive: document prefix, e.g. 'passage: ' (default --prefix)."
    )
    grad_cache: int | None = Field(
        None,
        ge=1,
        description="Contrastive: sentences per forward pass with gradient caching (GradCache): "
        "the loss sees the whole batch, activation memory only this many.",
    )
    skip_bad_rows: bool = Field(False, description="Skip and count malformed rows.")
    trust_remote_code: bool = Field(
        False, description="Allow model repositories to run their own Python code."
    )
    resume: bool = Field(False, description="Continue the run in --out from its checkpoint.")

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

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_per_task(cls, v):
        """``"xnli:contrastive,mnli:head"`` -> ``{"xnli": "contrastive", ...}``; values checked."""
        if isinstance(v, str) and ":" in v:
            pairs = [item.split(":", 1) for item in v.split(",") if item.strip()]
            if any(len(p) != 2 or not p[0].strip() for p in pairs):
                raise ValueError(f"{v!r}: use OBJECTIVE or TASK:OBJECTIVE,TASK:OBJECTIVE")
            v = {t.strip(): o.strip() for t, o in pairs}
        values = v.values() if isinstance(v, dict) else [v]
        bad = [o for o in values if o not in OBJECTIVES]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an objective: use {' or '.join(OBJECTIVES)}")
        return v

    @field_validator("layer", mode="before")
    @classmethod
    def _layer_index(cls, v):
        """``"12"`` (the command line's form) -> 12; ``last`` stays."""
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v)
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("budget", mode="before")
    @classmethod
    def _parse_budget(cls, v):
        """``"examples:20000"`` / ``"tokens:2e6,max_repeats:5"`` (the command line's form)."""
        if isinstance(v, str):
            doc = {}
            for item in v.split(","):
                key, _, value = item.partition(":")
                try:
                    doc[key.strip()] = (
                        float(value) if key.strip() == "max_repeats" else int(float(value))
                    )
                except ValueError:
                    raise ValueError(f"{v!r}: use examples:N or tokens:N") from None
            return doc
        return v

    @field_validator("sampling")
    @classmethod
    def _check_sampling(cls, v: str) -> str:
        try:
            parse_sampling(v)
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("--sampling ")) from None
        return v

    def split_for(self, task: str, default: str, *aliases: str) -> str:
        """The training split of one task (``aliases``: other names it may be given under, e.g.
        ``xnli`` for its pair form ``xnli-parallel``)."""
        if isinstance(self.train_split, dict):
            for name in (task, *aliases):
                if name in self.train_split:
                    return self.train_split[name]
            return default
        return self.train_split or default

    def objective_for(self, task: str, *aliases: str) -> str:
        """``head`` or ``contrastive`` for one task (per-task objectives name a task or one of
        its ``aliases``; unnamed tasks keep their own head)."""
        if isinstance(self.objective, dict):
            for name in (task, *aliases):
                if name in self.objective:
                    return self.objective[name]
            return "head"
        return self.objective

    def role_prefixes(self) -> tuple[str, str]:
        """Contrastive (query, document) prefixes, each falling back to ``prefix`` (as
        evaluation's)."""
        q = self.prefix if self.query_prefix is None else self.query_prefix
        d = self.prefix if self.doc_prefix is None else self.doc_prefix
        return q, d

    def weights_hash(self) -> str:
        """Hash of every setting that changes the trained weights (paths excluded)."""
        unset = {k for k, default in _HASHED_WHEN_SET.items() if getattr(self, k) == default}
        doc = self.model_dump(mode="json", exclude=_NOT_HASHED | unset)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
