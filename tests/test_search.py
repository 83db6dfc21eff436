"""k-NN backends and margin mining, checked against brute force on small arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xstilts.retrieval.knn import exact_knn, knn, normalize
from xstilts.retrieval.mining import margin_candidates, mine


def brute_knn(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sim = q.astype(np.float64) @ c.T.astype(np.float64)
    idx = np.array([sorted(range(len(c)), key=lambda j, r=r: (-r[j], j))[:k] for r in sim])
    return np.take_along_axis(sim, idx, 1), idx


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_knn_matches_brute_force(backend):
    rng = np.random.default_rng(0)
    q, c = normalize(rng.normal(size=(50, 16))), normalize(rng.normal(size=(80, 16)))
    s, i = knn(q, c, 5, backend)
    bs, bi = brute_knn(q, c, 5)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)


def test_faiss_and_numpy_agree_on_larger_random_data():
    rng = np.random.default_rng(1)
    q, c = normalize(rng.normal(size=(700, 64))), normalize(rng.normal(size=(3000, 64)))
    s1, i1 = knn(q, c, 4, "faiss")
    s2, i2 = knn(q, c, 4, "numpy")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_ties_go_to_the_lower_index(backend):
    # rows 1 and 3 of the corpus are identical (a duplicated sentence): both score the same.
    c = normalize(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32))
    q = normalize(np.array([[0, 1, 0], [0.1, 1, 0]], dtype=np.float32))
    _, idx = knn(q, c, 1, backend)
    assert idx[:, 0].tolist() == [1, 1]
    _, idx2 = knn(q, c, 2, backend)
    assert idx2.tolist() == [[1, 3], [1, 3]]


def test_knn_numpy_exact_tie_at_kth_position():
    c = np.array([[1.0, 0], [0.5, 0], [0.5, 0], [0.5, 0], [0.2, 0]], dtype=np.float32)
    q = np.array([[1.0, 0]], dtype=np.float32)
    s, i = knn(q, c, 3, "numpy")
    assert i.tolist() == [[0, 1, 2]]
    assert s.tolist() == [[1.0, 0.5, 0.5]]


def test_k_larger_than_corpus_is_clipped():
    _, i = knn(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), 10, "numpy")
    assert i.shape == (2, 2)


def brute_margin_mining(x, y, k, margin):
    """Reference: full margin matrix, candidates restricted to each side's k-NN, greedy 1:1."""
    sim = x.astype(np.float64) @ y.T.astype(np.float64)
    kx, ky = min(k, len(y)), min(k, len(x))
    nn_x = [sorted(range(len(y)), key=lambda j, i=i: (-sim[i, j], j))[:kx] for i in range(len(x))]
    nn_y = [sorted(range(len(x)), key=lambda i, j=j: (-sim[i, j], i))[:ky] for j in range(len(y))]
    fwd_mean = np.array([sim[i, nn_x[i]].mean() for i in range(len(x))])
    bwd_mean = np.array([sim[nn_y[j], j].mean() for j in range(len(y))])

    def m(i, j):
        a, b = sim[i, j], (fwd_mean[i] + bwd_mean[j]) / 2
        return {"ratio": a / b, "distance": a - b, "absolute": a}[margin]

    cands = []
    for i in range(len(x)):
        j = max(nn_x[i], key=lambda j, i=i: (m(i, j), -nn_x[i].index(j)))
        cands.append((m(i, j), i, j))
    for j in range(len(y)):
        i = max(nn_y[j], key=lambda i, j=j: (m(i, j), -nn_y[j].index(i)))
        cands.append((m(i, j), i, j))
    order = sorted(range(len(cands)), key=lambda n: (-cands[n][0], n))
    used_x, used_y, out = set(), set(), []
    for n in order:
        s, i, j = cands[n]
        if i not in used_x and j not in used_y:
            used_x.add(i)
            used_y.add(j)
            out.append((i, j, s))
    return out


@pytest.mark.parametrize("margin", ["ratio", "distance", "absolute"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_mine_4x5_matches_brute_force(margin, k):
    rng = np.random.default_rng(42)
    x = normalize(rng.normal(size=(4, 6)))
    y = normalize(rng.normal(size=(5, 6)))
    got = mine(x, y, exact_knn("numpy"), k=k, margin=margin)
    want = brute_margin_mining(x, y, k, margin)
    assert list(zip(got.src.tolist(), got.tgt.tolist(), strict=True)) == [
        (i, j) for i, j, _ in want
    ]
    np.testing.assert_allclose(got.score, [s for *_, s in want], rtol=1e-5, atol=1e-6)


def test_ratio_margin_hand_computed_2x2():
    # cos matrix [[0.9, 0.1], [0.2, 0.8]], k=2: every neighbourhood mean is over both entries.
    x = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    y = np.eye(2, dtype=np.float32)
    src, tgt, score = margin_candidates(x, y, exact_knn("numpy"), k=2, margin="ratio")
    # fwd means: x0 .5, x1 .5 ; bwd means: y0 .55, y1 .45
    # margin(x0,y0) = .9 / ((.5+.55)/2) = 1.7142857 ; margin(x1,y1) = .8 / ((.5+.45)/2) = 1.6842105
    assert list(zip(src.tolist(), tgt.tolist(), strict=True)) == [(0, 0), (1, 1), (0, 0), (1, 1)]
    np.testing.assert_allclose(
        score, [0.9 / 0.525, 0.8 / 0.475, 0.9 / 0.525, 0.8 / 0.475], rtol=1e-6
    )
    pairs = mine(x, y, exact_knn("numpy"), k=2, margin="ratio")
    assert pairs.src.tolist() == [0, 1] and pairs.tgt.tolist() == [0, 1]


def test_mine_is_one_to_one_on_random_data():
    rng = np.random.default_rng(3)
    x, y = normalize(rng.normal(size=(60, 8))), normalize(rng.normal(size=(90, 8)))
    pairs = mine(x, y, exact_knn("faiss"), k=4)
    assert len(set(pairs.src.tolist())) == len(pairs) == len(set(pairs.tgt.tolist()))
    assert np.all(np.diff(pairs.score) <= 0)
    assert 0 < len(pairs) <= 60


def test_normalize_keeps_zero_rows_finite():
    out = normalize(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[1], [0.6, 0.8])


def test_brute_force_reference_is_itself_sane():
    # guard against a reference that trivially agrees: permuting y permutes the pairs.
    rng = np.random.default_rng(5)
    x, y = normalize(rng.normal(size=(4, 6))), normalize(rng.normal(size=(5, 6)))
    perm = [2, 0, 4, 1, 3]
    a = brute_margin_mining(x, y, 2, "ratio")
    b = brute_margin_mining(x, y[perm], 2, "ratio")
    assert {(i, perm[j]) for i, j, _ in b} == {(i, j) for i, j, _ in a}
    assert list(itertools.islice((s for *_, s in a), 1)) == [b[0][2]]


# --------------------------------------------------------------------------- reduced precision


def test_bf16_search_rescored_in_fp32_finds_fp32_neighbours_and_scores():
    from xstilts.retrieval.knn import knn_reduced

    rng = np.random.default_rng(0)
    corpus = normalize(rng.standard_normal((3000, 64)))
    queries = normalize(rng.standard_normal((400, 64)))
    want_s, want_i = knn(queries, corpus, 4, "numpy")
    for dtype in ("bf16", "fp16"):
        got_s, got_i = knn_reduced(queries, corpus, 4, dtype, block=128)
        assert np.array_equal(got_i, want_i)
        np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)  # fp32 scores, not bf16


def test_bf16_search_separates_what_bf16_rounding_ties():
    """Two documents whose bf16 scores are equal (1 - 1e-4 rounds to 1 in bf16): the fp32
    re-scoring puts the closer one first with its exact score; with equal fp32 scores the
    lower index wins, as in every other search."""
    from xstilts.retrieval.knn import knn_reduced

    near = np.array([[1 - 1e-4, np.sqrt(1 - (1 - 1e-4) ** 2)]], dtype=np.float32)
    corpus = np.concatenate([near, [[1.0, 0.0]], [[0.0, 1.0]]]).astype(np.float32)
    s, i = knn_reduced(np.array([[1.0, 0.0]], np.float32), corpus, 2, "bf16")
    assert i.tolist() == [[1, 0]] and s[0, 0] == 1.0 and s[0, 1] == np.float32(1 - 1e-4)
    twins = np.array([[0.6, 0.8], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    _, i = knn_reduced(np.array([[0.6, 0.8]], np.float32), twins, 1, "bf16")
    assert i.tolist() == [[0]]


def test_exact_index_in_bf16_mines_the_fp32_pairs():
    from xstilts.errors import UsageError
    from xstilts.retrieval.ann import ExactIndex, IndexSpec

    rng = np.random.default_rng(1)
    corpus = rng.standard_normal((1500, 32)).astype(np.float32)
    queries = rng.standard_normal((300, 32)).astype(np.float32)
    fp32 = ExactIndex(corpus, IndexSpec()).search(queries, 4)
    bf16 = ExactIndex(corpus, IndexSpec(dtype="bf16"), norm=True)
    got = bf16.search(queries, 4)
    assert np.array_equal(got[1], fp32[1]) and np.allclose(got[0], fp32[0], atol=1e-6)
    assert bf16.describe()["dtype"] == "bf16"
    with pytest.raises(UsageError, match="--search-dtype 'int8'"):
        IndexSpec(dtype="int8")
