"""Texts -> pooled sentence embeddings for every requested hidden state, in one forward pass.

Hidden-state index convention (used everywhere in xstilts): ``hidden_states[0]`` is the
embedding output and ``hidden_states[i]`` the output of transformer layer ``i``; a 12-layer
model has 13 hidden states, 0..12.

Pooling:

* ``mean`` (XTREME's default): mean over the attention mask, special tokens included;
* ``mean-nospecial``: mean over non-special tokens (``<s>``/``</s>``/``[CLS]`` ... excluded);
* ``cls``: the first token's vector.

Sentences are tokenized once, sorted by length (longest first, so an out-of-memory error shows
up in the first batch) and batched; results are returned in input order. Inference runs under
``torch.inference_mode``; on CUDA it autocasts to bf16 (fp16 where bf16 is unsupported).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.errors import UsageError

POOLINGS = ("mean", "mean-nospecial", "cls")
DTYPES = ("auto", "fp32", "bf16", "fp16")
_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

log = logging.getLogger(__name__)


def resolve_dtype(requested: str, device: torch.device) -> str:
    """Concrete compute dtype: ``auto`` is bf16/fp16 on CUDA and fp32 on CPU."""
    if requested not in DTYPES:
        raise UsageError(f"unknown dtype {requested!r}; choose one of {', '.join(DTYPES)}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class EncodeStats:
    """What one :meth:`Encoder.encode` call did (for results files and benchmarks)."""

    n_texts: int
    n_batches: int
    n_tokens: int  # real tokens
    n_padded: int  # tokens fed including padding
    n_truncated: int
    seconds: float

    @property
    def padding_ratio(self) -> float:
        """Share of fed tokens that were padding."""
        return 1.0 - self.n_tokens / self.n_padded if self.n_padded else 0.0


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices of texts, longest first, in batches of ``batch_size`` (stable for equal lengths)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pool(
    hidden: torch.Tensor, attention_mask: torch.Tensor, special_mask: torch.Tensor, pooling: str
) -> torch.Tensor:
    """Pool stacked hidden states ``(L, B, T, D)`` to ``(L, B, D)`` in float32."""
    if pooling == "cls":
        return hidden[:, :, 0].float()
    mask = attention_mask.bool()
    if pooling == "mean-nospecial":
        mask = mask & ~special_mask
    elif pooling != "mean":
        raise UsageError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    w = mask.to(torch.float32)
    summed = torch.einsum("lbtd,bt->lbd", hidden.float(), w)
    # A sentence that is only special tokens has nothing to average under mean-nospecial.
    return summed / w.sum(dim=1).clamp(min=1.0)[None, :, None]


class Encoder:
    """Pooled embeddings from a ``transformers`` encoder for any subset of its hidden states."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        device: torch.device | str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.dtype = resolve_dtype(dtype, self.device)
        limit = getattr(tokenizer, "model_max_length", None) or max_length
        self.max_length = int(min(max_length, limit)) if limit < 1_000_000 else max_length
        self.num_hidden_states = int(model.config.num_hidden_layers) + 1
        specials = sorted(set(tokenizer.all_special_ids))
        self._special_ids = torch.tensor(specials, dtype=torch.long, device=self.device)
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else 0

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_TORCH_DTYPES[self.dtype])

    def tokenize(self, texts: Sequence[str], prefix: str = "") -> tuple[list[list[int]], int]:
        """Token ids per text (truncated to ``max_length``) and how many were truncated."""
        enc = self.tokenizer(
            [prefix + t for t in texts],
            add_special_tokens=True,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        n_trunc = 0
        out = []
        for ids in enc:
            if len(ids) > self.max_length:
                n_trunc += 1
                # keep the final special token (</s> / [SEP]) as truncation=True would
                ids = ids[: self.max_length - 1] + ids[-1:]
            out.append(ids)
        return out, n_trunc

    def _batch_tensors(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            attention[row, : len(x)] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def layer_indices(self, layers: Sequence[int] | None) -> list[int]:
        """Validate hidden-state indices (None = all of them)."""
        if layers is None:
            return list(range(self.num_hidden_states))
        bad = [i for i in layers if not 0 <= i < self.num_hidden_states]
        if bad:
            raise UsageError(
                f"layer {bad[0]} out of range: this model has hidden states "
                f"0..{self.num_hidden_states - 1}"
            )
        return list(layers)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        *,
        layers: Sequence[int] | None = None,
        pooling: str = "mean",
        prefix: str = "",
        batch_size: int = 32,
        progress=None,
    ) -> tuple[np.ndarray, EncodeStats]:
        """Embed ``texts``; returns ``(array of shape (len(layers), n, hidden), stats)``.

        ``progress`` is an optional callable receiving the number of texts just finished
        (e.g. a rich progress advance), so the caller owns the display.
        """
        import time

        if pooling not in POOLINGS:
            raise UsageError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        if batch_size < 1:
            raise UsageError("batch size must be >= 1")
        layer_idx = self.layer_indices(layers)
        start = time.perf_counter()
        ids, n_trunc = self.tokenize(texts, prefix)
        lengths = [len(x) for x in ids]
        hidden_size = int(self.model.config.hidden_size)
        out = np.empty((len(layer_idx), len(texts), hidden_size), dtype=np.float32)
        n_batches = n_padded = 0
        for batch in length_sorted_batches(lengths, batch_size):
            input_ids, attention = self._batch_tensors([ids[i] for i in batch])
            with self._autocast():
                outputs = self.model(
                    input_ids=input_ids, attention_mask=attention, output_hidden_states=True
                )
            hidden = torch.stack([outputs.hidden_states[i] for i in layer_idx])
            special = torch.isin(input_ids, self._special_ids)
            pooled = pool(hidden, attention, special, pooling)
            out[:, batch] = pooled.cpu().numpy()
            n_batches += 1
            n_padded += input_ids.numel()
            if progress is not None:
                progress(len(batch))
        if n_trunc:
            log.warning(
                "%d of %d texts truncated to %d tokens", n_trunc, len(texts), self.max_length
            )
        stats = EncodeStats(
            len(texts), n_batches, sum(lengths), n_padded, n_trunc, time.perf_counter() - start
        )
        return out, stats
