"""Embedding cache, lazy model loading, token-budget batching and dtype resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import evaluate_args, run_cli
from xstilts.embedding.encoder import length_sorted_batches
from xstilts.embedding.lines import scan_lines
from xstilts.embedding.store import EmbeddingCache, EmbeddingStore, Identity, texts_digest


def test_token_budget_batches_bound_padded_tokens():
    lengths = [10, 50, 12, 50, 3, 11, 9]
    batches = [b.tolist() for b in length_sorted_batches(lengths, 32, max_tokens=100)]
    assert batches == [[1, 3], [2, 5, 0, 6, 4]]  # 2 x 50 = 100; then 5 x 12 = 60
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 100
    # the sentence cap still applies, and an over-long sentence gets a batch of its own
    assert [b.tolist() for b in length_sorted_batches([5] * 5, 2, max_tokens=1000)] == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert [b.tolist() for b in length_sorted_batches([300, 2], 8, max_tokens=100)] == [[0], [1]]


def test_padding_bound_ends_a_batch_before_a_text_it_would_pad_too_much():
    lengths = [10, 50, 12, 50, 3, 11, 9]
    batches = [b.tolist() for b in length_sorted_batches(lengths, 32, 100, max_padding=0.25)]
    # 12, 11, 10 and 9 (>= 0.75 x 12) share a batch; 3 would be 75 % padding: a batch of its own
    assert batches == [[1, 3], [2, 5, 0, 6], [4]]
    for b in batches:
        width = max(lengths[i] for i in b)
        assert all(width - lengths[i] <= 0.25 * width for i in b)
        assert len(b) * width <= 100
    # no bound: filled to the token budget as before
    assert [b.tolist() for b in length_sorted_batches(lengths, 32, 100)] == [
        [1, 3],
        [2, 5, 0, 6, 4],
    ]


def test_encoder_bounds_padding_by_default_with_the_same_vectors(tiny_model: Path):
    from xstilts import defaults
    from xstilts.embedding.encoder import Encoder
    from xstilts.models import load_model

    loaded = load_model(str(tiny_model))
    # fp32 pinned: this compares batchings at 1e-5, which bf16 on a bf16-capable host can't meet
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts = ["one two three four five six seven eight nine ten eleven twelve", "x", "y z"] * 3
    bounded, sb = enc.encode(texts)
    filled, sf = enc.encode(texts, max_padding=None)
    assert defaults.MAX_PADDING == 0.1
    assert sf.n_batches == 1 and sb.n_batches > 1  # the long texts no longer pad the short ones
    assert sb.n_padded < sf.n_padded and sb.n_tokens == sf.n_tokens
    np.testing.assert_allclose(bounded, filled, atol=1e-5)


def test_token_budget_encoding_equals_fixed_batches(tiny_model: Path):
    from xstilts.embedding.encoder import Encoder
    from xstilts.models import load_model

    loaded = load_model(str(tiny_model))
    # fp32 pinned: this compares batchings at 1e-5, which bf16 on a bf16-capable host can't meet
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts = ["a b c d e f g h", "x", "hello world", "Tom is here now.", "Wie geht's?"] * 4
    a, sa = enc.encode(texts, batch_size=3)
    b, sb = enc.encode(texts, batch_size=64, max_tokens_per_batch=40)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert sb.n_batches != sa.n_batches and 0 <= sb.padding_ratio < 1


def test_texts_digest_respects_boundaries_and_order(tmp_path: Path):
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])
    assert texts_digest(["a", "b"]) != texts_digest(["b", "a"])
    # a file's line index gives the digest of the same texts held in memory (one identity for
    # `embed` stores and cache entries)
    texts = ["Hallo Welt", "", "Grüße", "Hallo Welt"]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    index = scan_lines(path, "text")
    assert index.rows_digest(np.arange(4)) == texts_digest(texts)
    assert index.rows_digest(np.array([0, 2])) == texts_digest(["Hallo Welt", "Grüße"])


def identity(texts: list[str], **kw) -> Identity:
    base = dict(
        model="m", texts=texts_digest(texts), rows=len(texts), pooling="mean", prefix="",
        max_length=512, dtype="fp32", device_type="cpu",
    )  # fmt: skip
    return Identity(**{**base, **kw})


def test_cache_roundtrip_subsets_and_corruption(tmp_path: Path, caplog):
    cache = EmbeddingCache(tmp_path)
    ident = identity(["x", "y"])
    key = ident.key()
    assert identity(["x", "y"], prefix="query: ").key() != key  # every setting is identity
    emb = np.random.default_rng(0).normal(size=(3, 2, 4)).astype(np.float32)
    assert cache.get(ident, [0]) is None
    cache.put(ident, [0, 5, 7], emb)
    np.testing.assert_array_equal(cache.get(ident, [7, 0]), emb[[2, 0]])
    assert cache.get(ident, [0, 6]) is None  # layer 6 never stored
    assert cache.info().entries == 1
    # the entry is a store in the one store format: readable as such
    store = EmbeddingStore(tmp_path / key[:2] / key)
    assert store.identity() == ident and store.layers() == [0, 5, 7]
    # flip bytes in one layer file: detected, entry dropped, a miss instead of wrong vectors
    f = next((tmp_path / key[:2] / key).glob("layer05.npy"))
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    assert cache.get(ident, [5]) is None
    assert "corrupt" in caplog.text
    assert cache.info().entries == 0


@pytest.mark.dtype_sensitive
def test_second_evaluate_is_served_from_cache_without_loading_the_model(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "cache"))  # start empty
    args = evaluate_args(tiny_model, "tatoeba", "de,sw", data_dir)
    code, _, err1 = run_cli([*args, "--out", str(tmp_path / "a.json")], capsys, monkeypatch)
    assert code == 0, err1
    code, _, err2 = run_cli([*args, "--out", str(tmp_path / "b.json")], capsys, monkeypatch)
    assert code == 0, err2
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["metrics"] == b["metrics"]
    assert a["encoding"]["sentences_encoded"] == 2 * (1000 + 390)
    assert b["encoding"]["sentences_encoded"] == 0
    assert b["encoding"]["sentences_from_cache"] == 2 * (1000 + 390)
    assert a["encoding"]["model_loaded"] and not b["encoding"]["model_loaded"]
    # --no-cache encodes again, and a different prefix is a different entry
    code, _, _ = run_cli(
        [*args, "--no-cache", "--out", str(tmp_path / "c.json")], capsys, monkeypatch
    )
    assert json.loads((tmp_path / "c.json").read_text())["encoding"]["sentences_encoded"] == 2780
    code, _, _ = run_cli(
        [*args, "--prefix", "q: ", "--out", str(tmp_path / "d.json")], capsys, monkeypatch
    )
    assert json.loads((tmp_path / "d.json").read_text())["encoding"]["sentences_from_cache"] == 0


def test_cache_info_and_clear_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    EmbeddingCache().put(identity(["a", "b"]), [0], np.zeros((1, 2, 3), np.float32))
    code, out, _ = run_cli(["cache", "info"], capsys, monkeypatch)
    assert code == 0 and "1 entries" in out
    code, out, _ = run_cli(["cache", "clear"], capsys, monkeypatch)
    assert code == 0 and "removed 1 entries" in out
    assert EmbeddingCache().info().entries == 0


def test_token_budget_zero_means_fixed_size_batches(tiny_model):
    from xstilts.embedding.encoder import Encoder
    from xstilts.models import load_model

    loaded = load_model(str(tiny_model))
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts = ["a", "a b c d e f g h", "b c", "c d e"] * 5
    _, fixed = enc.encode(texts, batch_size=4, max_tokens_per_batch=0)
    _, budget = enc.encode(texts, batch_size=4, max_tokens_per_batch=12)
    assert fixed.n_batches == 5  # 20 texts in batches of 4
    assert budget.n_batches > fixed.n_batches  # long texts get smaller batches


@pytest.mark.dtype_sensitive
@pytest.mark.parametrize("bad", ["-1", "-5"])
def test_bad_token_budget_is_a_usage_error(bad, tiny_model, data_dir, capsys, monkeypatch):
    code, _, err = run_cli(
        [
            "evaluate",
            "--model",
            str(tiny_model),
            "--task",
            "tatoeba",
            "--langs",
            "de",
            "--max-tokens-per-batch",
            bad,
            "--no-cache",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2 and f"--max-tokens-per-batch {bad}" in err


@pytest.mark.dtype_sensitive
def test_cache_is_shared_across_protocols(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    """Entries are per sentence list: the MTEB protocol reuses the XTREME run's embeddings."""
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "cache"))
    args = evaluate_args(tiny_model, "tatoeba", "sw", data_dir)
    assert run_cli([*args, "--out", str(tmp_path / "x.json")], capsys, monkeypatch)[0] == 0
    code, _, err = run_cli(
        [*args, "--protocol", "mteb", "--out", str(tmp_path / "m.json")], capsys, monkeypatch
    )
    assert code == 0, err
    enc = json.loads((tmp_path / "m.json").read_text())["encoding"]
    assert enc["sentences_encoded"] == 0 and enc["sentences_from_cache"] == 2 * 390
