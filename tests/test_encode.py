"""Encoder behaviour on a tiny random model: pooling, order restoration, layers, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.embedding.encoder import Encoder, length_sorted_batches
from xstilts.errors import UsageError
from xstilts.models import load_model

TEXTS = [
    "Tom lives in Boston.",
    "Hallo",
    "Wie lange sollen Tom und ich hierbleiben, wenn es regnet und die Straßen nass sind?",
    "",
    "我们明天见。",
    "Bonjour tout le monde !",
]


@pytest.fixture(scope="module")
def encoder(tiny_model: Path) -> Encoder:
    loaded = load_model(str(tiny_model))
    # fp32 pinned: the tests below compare with an fp32 reference at 1e-5; the bf16 path has
    # its own tests (forced, on every host) with the tolerance bf16 allows
    return Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")


def reference(encoder: Encoder, text: str, pooling: str, prefix: str = "") -> np.ndarray:
    """Pool one unpadded sentence by hand from the model's own hidden states."""
    ids = encoder.tokenizer(prefix + text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        hs = encoder.model(input_ids=ids, output_hidden_states=True).hidden_states
    h = torch.stack(hs)[:, 0]  # (L, T, D)
    if pooling == "cls":
        return h[:, 0].numpy()
    if pooling == "mean":
        return h.mean(1).numpy()
    special = torch.isin(ids[0], torch.tensor(encoder.tokenizer.all_special_ids))
    return h[:, ~special].mean(1).numpy() if (~special).any() else np.zeros_like(h[:, 0].numpy())


@pytest.mark.parametrize("pooling", ["mean", "mean-nospecial", "cls"])
def test_batched_encoding_equals_one_by_one_reference(encoder: Encoder, pooling: str):
    # batches filled whatever the padding (max_padding=None): the masks must hide it
    emb, stats = encoder.encode(
        TEXTS, pooling=pooling, batch_size=4, prefix="query: ", max_padding=None
    )
    assert emb.shape == (3, len(TEXTS), 32)  # 2 layers -> hidden states 0, 1, 2
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(
            emb[:, i], reference(encoder, text, pooling, "query: "), atol=1e-5
        )
    assert stats.n_texts == len(TEXTS) and stats.n_batches == 2


def test_selected_layers_equal_slices_of_all_layers(encoder: Encoder):
    all_layers, _ = encoder.encode(TEXTS)
    some, _ = encoder.encode(TEXTS, layers=[2, 0])
    np.testing.assert_array_equal(some[0], all_layers[2])
    np.testing.assert_array_equal(some[1], all_layers[0])


def test_encoding_is_deterministic_even_from_a_model_in_training_mode(tiny_model: Path):
    """A model handed over in training mode (dropout on: every forward pass differs) still
    encodes deterministically: the encoder switches it to eval mode."""
    loaded = load_model(str(tiny_model))
    loaded.model.train()
    with torch.no_grad():  # the premise: dropout is active, so raw passes differ
        ids = loaded.tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
        first = loaded.model(**ids).last_hidden_state
        assert not torch.equal(first, loaded.model(**ids).last_hidden_state)
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    a, _ = enc.encode(TEXTS * 3, batch_size=5)
    b, _ = enc.encode(TEXTS * 3, batch_size=5)
    np.testing.assert_array_equal(a, b)


def test_length_sorted_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 1, 9, 4]
    batches = list(length_sorted_batches(lengths, 2))
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_truncation_to_max_length_keeps_the_final_special(tiny_model: Path):
    loaded = load_model(str(tiny_model))
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32", max_length=8)
    ids, n_trunc = enc.tokenize(["word " * 50, "short"])
    assert n_trunc == 1 and len(ids[0]) == 8 and ids[0][-1] == loaded.tokenizer.eos_token_id


def test_bad_layer_and_pooling_are_usage_errors(encoder: Encoder):
    with pytest.raises(UsageError, match=r"layer 7 out of range: .* 0\.\.2"):
        encoder.encode(["x"], layers=[7])
    with pytest.raises(UsageError, match="unknown pooling"):
        encoder.encode(["x"], pooling="max")
