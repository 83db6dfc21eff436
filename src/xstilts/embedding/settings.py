"""How texts become vectors: the encoding settings every embedding path shares, declared once.

:class:`EncodingSettings` is what evaluation (``xstilts.tasks.settings.EvalSettings``),
streaming embedding (:class:`EmbedSettings`) and experiment specs extend; the command line
options are generated from these models (:mod:`xstilts.cli.options`), so a setting, its
default, its check and its help text live in one place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xstilts import defaults
from xstilts.errors import UsageError
from xstilts.layers import LayerSelection, parse_layers

Pooling = Literal["mean", "mean-nospecial", "cls"]
Dtype = Literal["auto", "fp32", "bf16", "fp16"]


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are checked on change."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EncodingSettings(Settings):
    """Which hidden states, how they are pooled, and how sentences are batched."""

    layers: LayerSelection = Field(
        "all",
        description="Hidden-state index(es) (0 = embeddings), 'last' or 'all' (one forward pass).",
    )
    pooling: Pooling = Field(
        "mean", description="mean (XTREME), mean-nospecial (special tokens left out) or cls."
    )
    prefix: str = Field("", description="Text prefix, e.g. 'query: ' for E5 models.")
    max_length: int = Field(512, ge=2, description="Maximum tokens per sentence (longer: cut).")
    batch_size: int = Field(
        defaults.BATCH_SIZE, ge=1, description="The most sentences per forward pass."
    )
    max_tokens_per_batch: int | None = Field(
        defaults.MAX_TOKENS_PER_BATCH,
        ge=0,
        description="The most padded tokens per forward pass (0: no bound).",
    )
    dtype: Dtype = Field(
        "auto",
        description="Compute dtype: auto (bf16 on CUDA and bf16-capable CPUs), fp32, bf16, fp16.",
    )

    @field_validator("layers", mode="before")
    @classmethod
    def _parse_layers(cls, value: object) -> LayerSelection:
        try:
            return parse_layers(value)
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("--layer ")) from None

    @property
    def token_bound(self) -> int | None:
        """The padded-token bound per batch, None when there is none (0 or unset)."""
        return self.max_tokens_per_batch or None


class EmbedSettings(EncodingSettings):
    """``xstilts embed``: encoding plus how the output is stored and resumed."""

    layers: LayerSelection = Field(
        [-1], description="Hidden-state index(es) (0 = embeddings), 'last' or 'all'."
    )
    store_dtype: Literal["float32", "float16"] = Field(
        "float32", description="Stored dtype: float32 or float16 (half the disk)."
    )
    chunk_size: int = Field(
        10_000, ge=1, description="Sentences per resumable chunk (and per process)."
    )
    unique: bool = Field(
        False, description="Embed each distinct text once (line_rows.npy maps lines to rows)."
    )
    fmt: Literal["auto", "text", "id-text"] = Field(
        "auto", description="auto, text (a sentence a line) or id-text (id<TAB>text)."
    )
