"""Texts -> pooled sentence embeddings for every requested hidden state, in one forward pass.

Hidden states are indexed as everywhere in xstilts (:mod:`xstilts.layers`: 0 = the embedding
output, i = transformer layer i).

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
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts import defaults
from xstilts.errors import UsageError
from xstilts.hardware import TORCH_DTYPES, resolve_device, resolve_dtype
from xstilts.layers import LayerSelection, resolve_layers

POOLINGS = ("mean", "mean-nospecial", "cls")

log = logging.getLogger(__name__)


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


def length_sorted_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    max_padding: float | None = None,
) -> Iterator[np.ndarray]:
    """Indices of texts, longest first (stable for equal lengths), in batches.

    Without ``max_tokens`` a batch holds ``batch_size`` texts. With it, a batch holds as many
    texts as fit ``max_tokens`` padded tokens (its longest text x its size), at most
    ``batch_size``, and always at least one: short sentences then travel in large batches
    (better matrix-product efficiency) and long ones in small batches (bounded memory).

    ``max_padding`` (a share, e.g. 0.1) also ends a batch before a text that would be padded
    by more than that share of the batch's longest text. Without it, a few long sentences set
    the width of a batch of hundreds of short ones: Tatoeba's sentences, 300 pairs a language,
    were 39 % padding in the quickstart (``benchmarks/estimate_vs_quickstart.sh``).
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    if max_tokens is None:
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]
        return
    sorted_lengths = np.asarray(lengths)[order]
    start = 0
    while start < len(order):
        width = max(int(sorted_lengths[start]), 1)  # the longest text of this batch
        size = max(1, min(batch_size, max_tokens // width))
        if max_padding is not None:  # lengths fall along the order: the first too short ends it
            too_short = sorted_lengths[start : start + size] < (1.0 - max_padding) * width
            size = max(1, int(np.argmax(too_short))) if too_short.any() else size
        yield order[start : start + size]
        start += size


def check_max_length(max_length: int) -> None:
    """A sentence needs room for its two special tokens (``<s>`` ... ``</s>``) at least."""
    if max_length < 2:
        raise UsageError(f"--max-length {max_length}: must be at least 2 tokens")


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


def tokenize_texts(
    tokenizer, texts: Sequence[str], prefix: str, max_length: int
) -> tuple[list[list[int]], int]:
    """Token ids of ``prefix + text`` per text, cut to ``max_length`` keeping the final special
    token (``</s>``/``[SEP]``, as ``truncation=True`` would), and how many were cut.

    The one tokenization of sentences that become vectors: evaluation (:class:`Encoder`) and the
    contrastive training objective both call it, so a trained sentence vector is the vector
    evaluation will compute.
    """
    enc = tokenizer(
        [prefix + t for t in texts],
        add_special_tokens=True,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    n_trunc = 0
    out = []
    for ids in enc:
        if len(ids) > max_length:
            n_trunc += 1
            ids = ids[: max_length - 1] + ids[-1:]
        out.append(ids)
    return out, n_trunc


def sentence_vectors(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: torch.Tensor,
    layers: Sequence[int],
    pooling: str,
) -> torch.Tensor:
    """Pooled sentence vectors ``(len(layers), B, D)`` (float32) of one padded batch.

    The one definition of a sentence vector: hidden-state indices as in :mod:`xstilts.layers`,
    pooled by :func:`pool`. Evaluation calls it under ``inference_mode``; the contrastive
    training objective calls it with gradients, so training optimises exactly what evaluation
    measures (same hidden state, same pooling).
    """
    outputs = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    hidden = torch.stack([outputs.hidden_states[i] for i in layers])
    special = torch.isin(input_ids, special_ids)
    # pooled in float32 whatever the compute dtype: autocast would run the masked mean (an
    # einsum) in bf16/fp16 again
    with torch.autocast(input_ids.device.type, enabled=False):
        return pool(hidden, attention_mask, special, pooling)


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
        check_max_length(max_length)
        self.device = resolve_device(device)
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
        return torch.autocast(self.device.type, dtype=TORCH_DTYPES[self.dtype])

    def tokenize(
        self, texts: Sequence[str], prefix: str = "", max_length: int | None = None
    ) -> tuple[list[list[int]], int]:
        """Token ids per text (truncated to ``max_length``, at most the encoder's own) and how
        many were truncated."""
        return tokenize_texts(self.tokenizer, texts, prefix, self.limit(max_length))

    def limit(self, max_length: int | None) -> int:
        """The length texts are cut to: ``max_length`` (a per-call, e.g. document-side, limit)
        when it is shorter than the encoder's own."""
        if max_length is None:
            return self.max_length
        check_max_length(max_length)
        return min(self.max_length, max_length)

    def _batch_tensors(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            attention[row, : len(x)] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def layer_indices(self, layers: LayerSelection | None) -> list[int]:
        """Validated hidden-state indices of a selection (None = all of them)."""
        return resolve_layers(layers, self.num_hidden_states)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        *,
        layers: LayerSelection | None = None,
        pooling: str = "mean",
        prefix: str = "",
        batch_size: int = defaults.BATCH_SIZE,
        max_tokens_per_batch: int | None = defaults.MAX_TOKENS_PER_BATCH,
        progress=None,
        max_length: int | None = None,
        max_padding: float | None = defaults.MAX_PADDING,
    ) -> tuple[np.ndarray, EncodeStats]:
        """Embed ``texts``; returns ``(array of shape (len(layers), n, hidden), stats)``.

        ``progress`` is an optional callable receiving the number of texts just finished
        (e.g. a rich progress advance), so the caller owns the display. With
        ``max_tokens_per_batch``, batches are bounded by padded tokens and ``batch_size`` is
        only the upper bound on sentences per batch, and ``max_padding`` bounds each text's
        padding (:func:`length_sorted_batches`).
        """
        if pooling not in POOLINGS:
            raise UsageError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        if batch_size < 1:
            raise UsageError("batch size must be >= 1")
        if max_tokens_per_batch is not None and max_tokens_per_batch < 0:
            raise UsageError("max tokens per batch must be >= 0 (0: no token bound)")
        max_tokens_per_batch = max_tokens_per_batch or None
        layer_idx = self.layer_indices(layers)
        start = time.perf_counter()
        ids, n_trunc = self.tokenize(texts, prefix, max_length)
        lengths = [len(x) for x in ids]
        hidden_size = int(self.model.config.hidden_size)
        out = np.empty((len(layer_idx), len(texts), hidden_size), dtype=np.float32)
        n_batches = n_padded = 0
        batches = length_sorted_batches(lengths, batch_size, max_tokens_per_batch, max_padding)
        for batch in batches:
            input_ids, attention = self._batch_tensors([ids[i] for i in batch])
            with self._autocast():
                pooled = sentence_vectors(
                    self.model, input_ids, attention, self._special_ids, layer_idx, pooling
                )
            out[:, batch] = pooled.cpu().numpy()
            n_batches += 1
            n_padded += input_ids.numel()
            if progress is not None:
                progress(len(batch))
        if n_trunc:
            log.warning(
                "%d of %d texts truncated to %d tokens", n_trunc, len(texts), self.limit(max_length)
            )
        stats = EncodeStats(
            len(texts), n_batches, sum(lengths), n_padded, n_trunc, time.perf_counter() - start
        )
        return out, stats


class LazyEncoder:
    """An :class:`Encoder` whose model is loaded on the first :meth:`encode` call.

    Everything a results file or a cache key needs (hidden-state count, dtype, device, weights
    hash) is known from the resolved model reference without building the network, so an
    evaluation served entirely from the embedding cache never pays for loading the model.
    """

    def __init__(
        self,
        ref,  # xstilts.models.ModelRef
        *,
        device: torch.device | str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
    ) -> None:
        check_max_length(max_length)
        self.ref = ref
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.requested_max_length = max_length
        self.num_hidden_states = ref.num_hidden_states
        self._encoder: Encoder | None = None
        self.load_seconds = 0.0

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (False while everything came from a cache)."""
        return self._encoder is not None

    @property
    def encoder(self) -> Encoder:
        """The real encoder, loading the model now if needed."""
        if self._encoder is None:
            t0 = time.perf_counter()
            loaded = self.ref.load()
            self._encoder = Encoder(
                loaded.model,
                loaded.tokenizer,
                device=self.device,
                dtype=self.dtype,
                max_length=self.requested_max_length,
            )
            self.load_seconds = time.perf_counter() - t0
        return self._encoder

    @property
    def max_length(self) -> int:
        """Effective maximum length (the model's limit when it is lower than requested)."""
        if self._encoder is not None:
            return self._encoder.max_length
        limit = _tokenizer_max_length(self.ref.local_dir)
        return min(self.requested_max_length, limit) if limit else self.requested_max_length

    def layer_indices(self, layers: LayerSelection | None) -> list[int]:
        """Validated hidden-state indices of a selection (None = all of them)."""
        return resolve_layers(layers, self.num_hidden_states)

    def limit(self, max_length: int | None) -> int:
        """See :meth:`Encoder.limit` (without loading the model)."""
        if max_length is None:
            return self.max_length
        check_max_length(max_length)
        return min(self.max_length, max_length)

    def encode(self, texts: Sequence[str], **kwargs) -> tuple[np.ndarray, EncodeStats]:
        """See :meth:`Encoder.encode`."""
        return self.encoder.encode(texts, **kwargs)


def _tokenizer_max_length(directory) -> int | None:
    """``model_max_length`` from a tokenizer_config.json, when it states a real limit."""
    if directory is None:
        return None
    try:
        cfg = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = cfg.get("model_max_length")
    return int(value) if isinstance(value, int | float) and value < 1_000_000 else None
