"""Evaluation settings, declared once.

:class:`EvalSettings` (how every task is evaluated) and :class:`TaskRequest` (which task, which
languages, which protocol, which subset) are used as they are by the command line (options are
generated from them), by experiment specs (``evaluation:`` is an :class:`EvalSettings` plus a
list of :class:`TaskRequest`) and by results files (``settings`` records them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from xstilts.embedding.settings import EncodingSettings, Settings


class EvalSettings(EncodingSettings):
    """Encoding plus what the retrieval protocols need (prefixes by role, search, BUCC margin)."""

    query_prefix: str | None = Field(
        None, description="Prefix of the searching side (default: --prefix)."
    )
    doc_prefix: str | None = Field(
        None, description="Prefix of the searched side, e.g. 'passage: ' (default: --prefix)."
    )
    search: Literal["auto", "faiss", "numpy"] = Field(
        "auto", description="Exact k-NN backend: auto (faiss when installed), faiss or numpy."
    )
    k: int = Field(4, ge=1, description="BUCC: neighbours for the margin.")
    margin: Literal["ratio", "distance", "absolute"] = Field(
        "ratio", description="BUCC: ratio, distance or absolute margin."
    )
    tune_split: str | None = Field(
        None, description="BUCC: split to tune the threshold on (default: dev/sample)."
    )
    cache: bool = Field(True, description="Read and write the on-disk embedding cache.")

    def role_prefixes(self) -> tuple[str, str]:
        """The (query, document) prefixes, each falling back to ``prefix``."""
        q = self.prefix if self.query_prefix is None else self.query_prefix
        d = self.prefix if self.doc_prefix is None else self.doc_prefix
        return q, d


class TaskRequest(Settings):
    """One retrieval task to evaluate: which languages, protocol and subset."""

    task: str = Field(description="tatoeba, bucc2018, lareqa or mewsli-x (xstilts data list).")
    langs: str | list[str] | None = Field(
        None,
        description="Language set (xtreme, xtreme-r, all) or comma list (de,fr or deu); "
        "default: the task's own.",
    )
    protocol: Literal["xtreme", "mteb"] = Field(
        "xtreme", description="xtreme, or mteb (Tatoeba/BUCC as MTEB scores them: x->en, F1)."
    )
    max_sentences: int | None = Field(
        None,
        ge=1,
        description="Quick subset: Tatoeba's first N pairs per language; BUCC N lines per side "
        "with every gold pair kept; LAReQA the articles of the first N questions and a pool of "
        "their sentences (both easier than the full set).",
    )

    doc_max_length: int | None = Field(
        None,
        ge=2,
        description="Tokens kept of each document-side text (XTREME-R cuts LAReQA candidates "
        "to 92); default: --max-length.",
    )

    @field_validator("langs", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    def langs_spec(self) -> str | None:
        """The language spec as the command line writes it (None: the task's default)."""
        return ",".join(self.langs) if isinstance(self.langs, list) else self.langs
