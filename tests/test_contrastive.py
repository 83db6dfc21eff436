"""The contrastive objective: the loss by hand, hard negatives, false negatives, GradCache."""

from __future__ import annotations

import math

import pytest
import torch

from xstilts.train.contrastive import (
    ContrastiveHead,
    batch_loss,
    false_negative_mask,
    info_nce,
)


def _log_softmax_at(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target], written out."""
    return -(logits[target] - math.log(sum(math.exp(x) for x in logits)))


# Three pairs in two dimensions; every vector has length 1, so cosines are the dot products
# worked out below without any library.
Q = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
D = [[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]]


def test_loss_on_a_3x3_batch_equals_the_hand_computed_value():
    # cos(q_i, d_j):        d1    d2    d3
    #   q1 = (1, 0)        0.8   0.0   1.0
    #   q2 = (0, 1)        0.6   1.0   0.0
    #   q3 = (.6, .8)      0.96  0.8   0.6
    cos = [[0.8, 0.0, 1.0], [0.6, 1.0, 0.0], [0.96, 0.8, 0.6]]
    t = 0.5
    q_to_d = sum(_log_softmax_at([c / t for c in cos[i]], i) for i in range(3)) / 3
    d_to_q = sum(_log_softmax_at([cos[j][i] / t for j in range(3)], i) for i in range(3)) / 3
    expected = (q_to_d + d_to_q) / 2
    got = info_nce(torch.tensor(Q), torch.tensor(D), scale=1 / t)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # the numbers themselves, so a change of formula shows up here and not only above
    assert expected == pytest.approx(0.9885, abs=1e-4)
    # vectors are normalised inside: scaling a side changes nothing
    assert info_nce(3 * torch.tensor(Q), 0.5 * torch.tensor(D), scale=2.0).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_hard_negatives_enter_the_query_to_document_denominator_only():
    t = 0.5
    neg = [[0.0, 1.0]]  # the hard negative of pair 1: cosines with q1, q2, q3 = 0, 1, 0.8
    cos = [[0.8, 0.0, 1.0], [0.6, 1.0, 0.0], [0.96, 0.8, 0.6]]
    cos_n = [0.0, 1.0, 0.8]
    q_to_d = sum(_log_softmax_at([c / t for c in cos[i]] + [cos_n[i] / t], i) for i in range(3)) / 3
    d_to_q = sum(_log_softmax_at([cos[j][i] / t for j in range(3)], i) for i in range(3)) / 3
    got = info_nce(torch.tensor(Q), torch.tensor(D), torch.tensor(neg), scale=1 / t)
    assert got.item() == pytest.approx((q_to_d + d_to_q) / 2, rel=1e-6)
    # a hard negative close to a query raises the loss; one far from every query barely does
    plain = info_nce(torch.tensor(Q), torch.tensor(D), scale=1 / t).item()
    assert got.item() > plain
    far = info_nce(torch.tensor(Q), torch.tensor(D), -torch.tensor(Q[2:]), scale=20).item()
    assert far == pytest.approx(
        info_nce(torch.tensor(Q), torch.tensor(D), scale=20).item(), abs=1e-6
    )


def test_duplicates_are_masked_not_counted_as_negatives():
    # pairs 0 and 2 share their document text: for query 0, document 2 is a positive too
    q_keys, d_keys = torch.tensor([10, 11, 12]), torch.tensor([20, 21, 20])
    n_keys = torch.tensor([21, 99])  # negative 0 is document 1's text
    mask = false_negative_mask(q_keys, d_keys, n_keys)
    assert mask.tolist() == [
        [False, False, True, False, False],
        [False, False, False, True, False],  # negative 0 is pair 1's own document
        [True, False, False, False, False],
    ]
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    d = torch.tensor([[1.0, 0.05], [0.0, 1.0], [1.0, 0.05]])  # documents 0 and 2 the same
    masked = info_nce(q, d, scale=2.0, false_negatives=mask[:, :3])
    # masking = the loss of the batch without the duplicate's column, by hand for query 0
    cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(d, dim=-1).T
    row0 = _log_softmax_at([2 * cos[0, 0].item(), 2 * cos[0, 1].item()], 0)
    unmasked = info_nce(q, d, scale=2.0).item()
    assert masked.item() < unmasked  # the duplicate no longer pushes its twin away
    per_row = torch.nn.functional.cross_entropy(
        (2 * cos).masked_fill(mask[:, :3], float("-inf")), torch.arange(3), reduction="none"
    )
    assert per_row[0].item() == pytest.approx(row0, rel=1e-5)
    # query and document texts repeated: same query in two pairs is masked as well
    mask2 = false_negative_mask(torch.tensor([1, 1, 2]), torch.tensor([5, 6, 7]))
    assert mask2.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_learned_temperature_is_a_parameter_and_capped():
    fixed, learned = ContrastiveHead(0.05, False), ContrastiveHead(0.05, True)
    assert not list(fixed.parameters()) and len(list(learned.parameters())) == 1
    assert fixed.scale().item() == pytest.approx(20.0)
    loss = learned(torch.tensor(Q), torch.tensor(D))
    loss.backward()
    assert learned.log_scale.grad is not None
    assert ContrastiveHead(0.001, True).scale().item() == 100.0


class _Tiny(torch.nn.Module):
    """An 'encoder' whose vectors depend on parameters and on dropout (random state)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 8)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.emb(ids)) * mask[..., None]
        return h.sum(1) / mask.sum(1, keepdim=True)


def _pair_batch(b: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    batch = {}
    for side in ("query", "doc", "negative"):
        batch[f"{side}_input_ids"] = torch.randint(1, 50, (b, 5), generator=g)
        batch[f"{side}_attention_mask"] = torch.ones(b, 5, dtype=torch.long)
    keys = torch.arange(b)
    batch["false_negatives"] = false_negative_mask(keys, keys + 100, keys + 200)
    return batch


@pytest.mark.parametrize("train_mode", [False, True])
def test_grad_cache_gives_the_loss_and_gradients_of_the_plain_step(train_mode):
    """Chunks of 2 of a batch of 6; in train mode the replayed chunks must draw the same
    dropout masks as their first pass, so two cached runs from one seed agree exactly and
    the plain path agrees when dropout is off."""

    def run(chunk: int | None, seed: int = 5) -> tuple[float, torch.Tensor]:
        model, head = _Tiny(), ContrastiveHead(0.1, True)
        model.train(train_mode)
        torch.manual_seed(seed)
        loss = batch_loss(model, head, _pair_batch(), chunk)
        (loss * 0.5).backward()  # an outer factor, as gradient accumulation divides
        grads = torch.cat([model.emb.weight.grad.flatten(), head.log_scale.grad.flatten()])
        return loss.item(), grads

    cached, again = run(2), run(2)
    assert cached[0] == again[0] and torch.equal(cached[1], again[1])
    if not train_mode:
        plain = run(None)
        assert cached[0] == pytest.approx(plain[0], rel=1e-6)
        assert torch.allclose(cached[1], plain[1], atol=1e-6)
    assert cached[1].abs().sum() > 0
