"""Heads on a tiny encoder: shapes, losses, masking, and that a few steps reduce the loss."""

from __future__ import annotations

import torch

from xstilts.train.heads import IGNORE_INDEX, HeadSpec, MultiTaskModel, mask_tokens


def tiny_encoder():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    return BertModel(cfg, add_pooling_layer=False)


def model():
    return MultiTaskModel(
        tiny_encoder(),
        [
            HeadSpec("cls", "classification", 3),
            HeadSpec("mc", "multiple_choice", 1),
            HeadSpec("span", "span", 2),
            HeadSpec("tag", "tagging", 5),
        ],
        dropout=0.0,
    )


def batch(b=4, t=7, choices=None):
    shape = (b, choices, t) if choices else (b, t)
    ids = torch.randint(5, 50, shape)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_head_shapes_and_losses():
    m = model()
    loss, logits = m("cls", {**batch(), "labels": torch.tensor([0, 1, 2, 1])})
    assert logits.shape == (4, 3) and loss.ndim == 0
    loss, logits = m("mc", {**batch(choices=3), "labels": torch.tensor([0, 2, 1, 1])})
    assert logits.shape == (4, 3) and torch.isfinite(loss)
    loss, logits = m(
        "span",
        {
            **batch(),
            "start_positions": torch.tensor([1, 2, 0, 3]),
            "end_positions": torch.tensor([2, 2, 0, 5]),
        },
    )
    assert logits.shape == (4, 7, 2) and torch.isfinite(loss)
    labels = torch.full((4, 7), IGNORE_INDEX)
    labels[:, 1] = 3
    loss, logits = m("tag", {**batch(), "labels": labels})
    assert logits.shape == (4, 7, 5) and torch.isfinite(loss)


def test_a_few_steps_reduce_each_loss():
    torch.manual_seed(1)
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    fixed = {
        "cls": {**batch(), "labels": torch.tensor([0, 1, 2, 1])},
        "mc": {**batch(choices=3), "labels": torch.tensor([0, 2, 1, 1])},
        "span": {
            **batch(),
            "start_positions": torch.tensor([1, 2, 0, 3]),
            "end_positions": torch.tensor([2, 2, 0, 5]),
        },
    }
    first = {k: float(m(k, v)[0].detach()) for k, v in fixed.items()}
    for _ in range(30):
        for k, v in fixed.items():
            opt.zero_grad()
            m(k, v)[0].backward()
            opt.step()
    last = {k: float(m(k, v)[0].detach()) for k, v in fixed.items()}
    assert all(last[k] < first[k] * 0.5 for k in fixed), (first, last)


def test_mlm_head_is_tied_and_trains():
    m = model()
    m.enable_mlm()
    ids = torch.randint(5, 50, (4, 9))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    masked, labels = mask_tokens(
        ids,
        special,
        mask_id=4,
        vocab_size=50,
        generator=torch.Generator().manual_seed(0),
        probability=0.3,
    )
    assert (labels[:, 0] == IGNORE_INDEX).all()  # specials are never targets
    targets = labels != IGNORE_INDEX
    assert targets.any() and (labels[targets] == ids[targets]).all()
    loss = m.mlm_loss(
        {"input_ids": masked, "attention_mask": torch.ones_like(ids), "labels": labels}
    )
    loss.backward()
    emb = m.encoder.get_input_embeddings().weight
    assert emb.grad is not None and emb.grad.abs().sum() > 0  # gradient reaches the tied matrix


def test_mask_tokens_rates():
    ids = torch.randint(5, 1000, (200, 50))
    special = torch.zeros_like(ids, dtype=torch.bool)
    masked, labels = mask_tokens(
        ids, special, mask_id=4, vocab_size=1000, generator=torch.Generator().manual_seed(0)
    )
    targets = labels != IGNORE_INDEX
    assert abs(targets.float().mean().item() - 0.15) < 0.01
    assert abs((masked[targets] == 4).float().mean().item() - 0.8) < 0.03
    assert (masked[~targets] == ids[~targets]).all()


def test_head_state_roundtrip():
    a = model()
    a.enable_mlm()
    b = model()
    b.load_head_state_dict(a.head_state_dict())
    assert b.mlm_head is not None
    for k, v in a.head_state_dict().items():
        assert torch.equal(v, b.head_state_dict()[k])
