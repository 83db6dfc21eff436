"""The contrastive objective: symmetric InfoNCE with in-batch negatives, and gradient caching.

A batch holds ``B`` pairs (query ``q_i``, positive document ``d_i``) and optionally ``K`` hard
negatives (documents ``n_k``, each belonging to one pair). With cosine similarities ``s`` and a
temperature ``t``:

* query -> document: for each ``q_i`` a softmax over ``s(q_i, d_1..d_B, n_1..n_K) / t``; its own
  ``d_i`` is the target, every other document of the batch and every hard negative a negative
  (the hard negatives enter this denominator only: they are documents, not queries);
* document -> query: for each ``d_i`` a softmax over ``s(d_i, q_1..q_B) / t``, target ``q_i``;
* the loss is the mean of the two cross-entropies (as sentence-transformers'
  ``MultipleNegativesSymmetricRankingLoss``; CLIP's symmetric loss).

False negatives: when the same text appears twice in a batch (a question in two QQP pairs, a
premise with two hypotheses, the same sentence in two languages' files), an in-batch
"negative" would be a positive. :func:`false_negative_mask` marks every candidate that is the
same query or the same document as the pair's own (and every hard negative that is the pair's
own document), and those logits are removed from the softmax (set to ``-inf``) rather than
the pair dropped, so the batch keeps its size.

Gradient caching (GradCache; Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup"): the loss needs every vector of the batch at once, but the
encoder's activations need not be kept for all of them. With ``chunk`` set,
:func:`cached_loss` embeds the batch in chunks without a graph, computes the loss on those
vectors, and when the loss is backpropagated replays each chunk's forward pass with the same
random state (the same dropout masks) and pushes the cached vector gradients through it.
Memory then grows with the chunk, not the batch; the cost is one more forward pass (about a
third more compute). Results equal the plain path up to float rounding (tested).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

MAX_SCALE = 100.0  # the largest 1/temperature a learned temperature may reach (as CLIP)

Embed = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids, mask) -> (B, D) vectors


def info_nce(
    queries: torch.Tensor,
    docs: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    scale: torch.Tensor | float,
    false_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of ``B`` (query, document) pairs (module docstring).

    ``queries``, ``docs``: ``(B, D)``; ``negatives``: ``(K, D)`` hard negatives, added to the
    candidates of every query; ``scale``: ``1 / temperature``; ``false_negatives``: a boolean
    ``(B, B + K)`` mask of candidates removed from each query's softmax (its first ``B``
    columns, symmetric, also from each document's). Vectors are L2-normalised here, in
    float32.
    """
    q = F.normalize(queries.float(), dim=-1)
    d = F.normalize(docs.float(), dim=-1)
    candidates = (
        d
        if negatives is None or len(negatives) == 0
        else torch.cat([d, F.normalize(negatives.float(), dim=-1)])
    )
    q_to_d = scale * q @ candidates.T  # (B, B + K)
    d_to_q = scale * d @ q.T  # (B, B)
    if false_negatives is not None:
        b = len(q)
        q_to_d = q_to_d.masked_fill(false_negatives[:, : q_to_d.shape[1]], float("-inf"))
        d_to_q = d_to_q.masked_fill(false_negatives[:, :b], float("-inf"))
    target = torch.arange(len(q), device=q.device)
    return (F.cross_entropy(q_to_d, target) + F.cross_entropy(d_to_q, target)) / 2


def false_negative_mask(
    query_keys: torch.Tensor, doc_keys: torch.Tensor, negative_keys: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, B + K)``: True where a candidate is a positive in disguise.

    Keys identify texts (equal key = equal text). Candidate document ``j`` is a false negative
    for pair ``i`` (``j != i``) when pair ``j`` has the same query or the same document as
    pair ``i``; hard negative ``k`` when it is pair ``i``'s document. The relation is
    symmetric on the first ``B`` columns, so the same mask serves document -> query.
    """
    same = (query_keys[:, None] == query_keys[None, :]) | (doc_keys[:, None] == doc_keys[None, :])
    same.fill_diagonal_(False)
    if negative_keys is None or len(negative_keys) == 0:
        return same
    return torch.cat([same, doc_keys[:, None] == negative_keys[None, :]], dim=1)


class ContrastiveHead(nn.Module):
    """The temperature of one contrastive task: a fixed buffer, or learned (as ``log(1/t)``,
    capped at :data:`MAX_SCALE`). The sentence vectors are the encoder's own, pooled as
    evaluation pools them; the head adds no projection, so what is trained is what is
    evaluated."""

    def __init__(self, temperature: float, learnable: bool) -> None:
        super().__init__()
        init = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.log_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_scale", init)

    def scale(self) -> torch.Tensor:
        """``1 / temperature``."""
        return self.log_scale.exp().clamp(max=MAX_SCALE)

    def forward(
        self,
        queries: torch.Tensor,
        docs: torch.Tensor,
        negatives: torch.Tensor | None = None,
        false_negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return info_nce(
            queries, docs, negatives, scale=self.scale(), false_negatives=false_negatives
        )


def batch_loss(
    embed: Embed, head: ContrastiveHead, batch: dict[str, torch.Tensor], chunk: int | None
) -> torch.Tensor:
    """The loss of one collated pair batch (``query_*``, ``doc_*``, optional ``negative_*``,
    ``false_negatives``), embedding every side with ``embed``; ``chunk``: gradient caching."""
    sides = [
        (batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"])
        for side in ("query", "doc", "negative")
        if f"{side}_input_ids" in batch
    ]

    def loss(*vectors: torch.Tensor) -> torch.Tensor:
        negatives = vectors[2] if len(vectors) > 2 else None
        return head(vectors[0], vectors[1], negatives, batch.get("false_negatives"))

    if chunk:
        return cached_loss(embed, sides, loss, chunk)
    return loss(*(embed(ids, mask) for ids, mask in sides))


# --------------------------------------------------------------------------- GradCache


class _RandomState:
    """The CPU (and CUDA) random state before a chunk's first pass, replayed for its second."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        devices = list(range(torch.cuda.device_count())) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):  # the outer random stream is untouched
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def cached_loss(
    embed: Embed,
    sides: Sequence[tuple[torch.Tensor, torch.Tensor]],
    loss: Callable[..., torch.Tensor],
    chunk: int,
) -> torch.Tensor:
    """``loss(*vectors)`` of every side's vectors, embedded ``chunk`` rows at a time without
    keeping activations; backpropagating the result replays each chunk (module docstring)."""
    device = sides[0][0].device
    autocast = (
        torch.is_autocast_enabled(device.type),
        torch.get_autocast_dtype(device.type),
    )
    states: list[list[_RandomState]] = []
    vectors = []
    with torch.no_grad():
        for ids, mask in sides:
            states.append([])
            parts = []
            for start in range(0, len(ids), chunk):
                states[-1].append(_RandomState(device))
                parts.append(embed(ids[start : start + chunk], mask[start : start + chunk]))
            vectors.append(torch.cat(parts))
    if not torch.is_grad_enabled():
        return loss(*vectors)
    leaves = [v.detach().requires_grad_() for v in vectors]
    for (ids, mask), leaf, side_states in zip(sides, leaves, states, strict=True):

        def replay(grad, ids=ids, mask=mask, side_states=side_states) -> None:
            with (
                torch.enable_grad(),
                torch.autocast(device.type, dtype=autocast[1], enabled=autocast[0]),
            ):
                for n, state in enumerate(side_states):
                    rows = slice(n * chunk, (n + 1) * chunk)
                    with state.replay():
                        again = embed(ids[rows], mask[rows])
                    torch.autograd.backward(again, grad[rows])

        leaf.register_hook(replay)
    return loss(*leaves)
