"""Task heads on top of any ``transformers`` encoder, and the multi-task model that owns them.

The encoder stays a plain Hugging Face model (saved with ``save_pretrained``), so a trained
checkpoint is evaluated like any other model: ``xstilts evaluate --model runs/NAME``. Heads are
small modules keyed by task name and saved separately (safetensors).

Head shapes follow the usual recipes: RoBERTa-style classification head on the first token
(dense + tanh + projection), multiple choice scores each (context, choice) pair with the same
head and a softmax over choices, span extraction predicts start/end logits per token, tagging a
linear layer per token. The optional masked-LM head (Phang et al.'s "continued multilingual
MLM" alternative) ties its output projection to the encoder's input embeddings.

A contrastive task (:mod:`xstilts.train.contrastive`) has no projection: its loss is computed
on the encoder's own sentence vectors, made by the function evaluation uses
(:func:`xstilts.embedding.encoder.sentence_vectors`: the same hidden state, the same pooling),
and its head only holds the temperature.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xstilts.embedding.encoder import sentence_vectors
from xstilts.train.contrastive import ContrastiveHead, batch_loss

IGNORE_INDEX = -100


@dataclass(frozen=True)
class HeadSpec:
    """What a head predicts: its kind and output size (saved next to the weights)."""

    task: str
    kind: str  # classification | multiple_choice | span | tagging | contrastive
    num_labels: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class ClassificationHead(nn.Module):
    """Dense + tanh + projection on the first token (``<s>``/``[CLS]``)."""

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden_states[:, 0])
        x = torch.tanh(self.dense(x))
        return self.out(self.dropout(x))


class SpanHead(nn.Module):
    """Start and end logits per token."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.out = nn.Linear(hidden, 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.out(hidden_states)  # (B, T, 2)


class TaggingHead(nn.Module):
    """A label distribution per token."""

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden_states))


class MLMHead(nn.Module):
    """Masked-LM head (dense, GELU, LayerNorm, projection tied to the input embeddings)."""

    def __init__(self, hidden: int, vocab_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden_states: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        x = self.norm(F.gelu(self.dense(hidden_states)))
        return F.linear(x, embeddings, self.bias)


@dataclass(frozen=True)
class SentenceSettings:
    """How the contrastive objective makes and compares sentence vectors: the hidden-state
    index and pooling (as evaluation's ``--layer``/``--pooling``), the temperature, and the
    gradient-caching chunk (None: off)."""

    layer: int = -1
    pooling: str = "mean"
    temperature: float = 0.05
    learn_temperature: bool = False
    grad_cache: int | None = None
    special_ids: tuple[int, ...] = field(default=(), repr=False)


def build_head(
    spec: HeadSpec, hidden: int, dropout: float, sentence: SentenceSettings | None = None
) -> nn.Module:
    """Instantiate the module for a head spec."""
    if spec.kind == "contrastive":
        s = sentence or SentenceSettings()
        return ContrastiveHead(s.temperature, s.learn_temperature)
    if spec.kind in ("classification", "multiple_choice"):
        return ClassificationHead(hidden, spec.num_labels, dropout)
    if spec.kind == "span":
        return SpanHead(hidden)
    if spec.kind == "tagging":
        return TaggingHead(hidden, spec.num_labels, dropout)
    raise ValueError(f"unknown head kind {spec.kind!r}")


def head_key(task: str) -> str:
    """A task's key among the heads: its name, with characters a module name cannot hold (the
    dots and slashes of ``pairs:PATH``) replaced."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", task)


class MultiTaskModel(nn.Module):
    """A shared encoder with one head per task; ``forward(task, batch) -> (loss, logits)``."""

    def __init__(
        self,
        encoder: nn.Module,
        specs: list[HeadSpec],
        *,
        dropout: float = 0.1,
        sentence: SentenceSettings | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.specs = {s.task: s for s in specs}
        self.sentence = sentence or SentenceSettings()
        self.heads = nn.ModuleDict(
            {head_key(s.task): build_head(s, hidden, dropout, self.sentence) for s in specs}
        )
        self.register_buffer(
            "special_ids",
            torch.tensor(self.sentence.special_ids, dtype=torch.long),
            persistent=False,
        )
        self.mlm_head: MLMHead | None = None

    def enable_mlm(self) -> None:
        """Add the auxiliary masked-LM head (created lazily so checkpoints stay small without)."""
        if self.mlm_head is None:
            cfg = self.encoder.config
            vocab = self.encoder.get_input_embeddings().weight
            self.mlm_head = MLMHead(
                int(cfg.hidden_size), vocab.shape[0], float(getattr(cfg, "layer_norm_eps", 1e-5))
            ).to(vocab.device)

    def _encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        return self.encoder(**kwargs).last_hidden_state

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors ``(B, D)`` exactly as evaluation computes them (module docstring)."""
        layers = [self.sentence.layer]
        return sentence_vectors(
            self.encoder, input_ids, attention_mask, self.special_ids, layers, self.sentence.pooling
        )[0]

    def forward(
        self, task: str, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Loss (None without labels) and logits for one task's batch (a contrastive task's
        loss over its pair batch, and no logits)."""
        if task == "mlm":
            return self.mlm_loss(batch), torch.empty(0)
        kind = self.specs[task].kind
        head = self.heads[head_key(task)]
        if kind == "contrastive":
            return batch_loss(self.embed, head, batch, self.sentence.grad_cache), torch.empty(0)
        if kind == "multiple_choice":
            b, c, t = batch["input_ids"].shape
            flat = {k: v.view(b * c, t) for k, v in batch.items() if v.dim() == 3}
            logits = head(self._encode(flat)).view(b, c)
        else:
            logits = head(self._encode(batch))
        loss = None
        if kind == "span":
            if "start_positions" in batch:
                start, end = logits.unbind(-1)
                loss = (
                    F.cross_entropy(start, batch["start_positions"])
                    + F.cross_entropy(end, batch["end_positions"])
                ) / 2
        elif "labels" in batch:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                batch["labels"].reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return loss, logits

    def mlm_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Masked-LM loss computed on the masked positions only (vocabularies are large)."""
        assert self.mlm_head is not None, "call enable_mlm() first"
        hidden = self._encode(batch)
        labels = batch["labels"]
        mask = labels != IGNORE_INDEX
        emb = self.encoder.get_input_embeddings().weight
        logits = self.mlm_head(hidden[mask], emb)
        return F.cross_entropy(logits.float(), labels[mask])

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of the heads (and the MLM head) only, for ``heads.safetensors``."""
        state = {f"heads.{k}": v for k, v in self.heads.state_dict().items()}
        if self.mlm_head is not None:
            state.update({f"mlm_head.{k}": v for k, v in self.mlm_head.state_dict().items()})
        return {k: v.detach().contiguous() for k, v in state.items()}

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`head_state_dict`."""
        heads = {k[len("heads.") :]: v for k, v in state.items() if k.startswith("heads.")}
        self.heads.load_state_dict(heads)
        mlm = {k[len("mlm_head.") :]: v for k, v in state.items() if k.startswith("mlm_head.")}
        if mlm:
            self.enable_mlm()
            assert self.mlm_head is not None
            self.mlm_head.load_state_dict(mlm)


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: 15% of non-special tokens are targets; 80% -> mask, 10% random, 10% kept."""
    labels = input_ids.clone()
    prob = torch.full(input_ids.shape, probability)
    prob.masked_fill_(special_mask, 0.0)
    targets = torch.bernoulli(prob, generator=generator).bool()
    if not targets.any():  # guarantee at least one target so the loss is defined
        candidates = (~special_mask).nonzero()
        if len(candidates):
            pick = candidates[torch.randint(len(candidates), (1,), generator=generator)][0]
            targets[tuple(pick.tolist())] = True
    labels[~targets] = IGNORE_INDEX
    ids = input_ids.clone()
    replace = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & targets
    ids[replace] = mask_id
    rand = (
        torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & targets & ~replace
    )
    ids[rand] = torch.randint(vocab_size, ids.shape, generator=generator)[rand]
    return ids, labels
