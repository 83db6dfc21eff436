"""Multi-task sampling: probabilities, proportions, determinism, resume, sharding."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.errors import UsageError
from xstilts.train.sampling import (
    CROSS_LINGUAL,
    MIXED,
    MONOLINGUAL,
    FixedLanguages,
    TaskBatchSampler,
    language_plan,
    parse_sampling,
    task_probabilities,
)


def test_probabilities_by_strategy():
    sizes = {"a": 900, "b": 100}
    assert task_probabilities(sizes, "proportional") == pytest.approx({"a": 0.9, "b": 0.1})
    assert task_probabilities(sizes, "uniform") == pytest.approx({"a": 0.5, "b": 0.5})
    # T=2: sqrt(900)=30, sqrt(100)=10 -> 0.75 / 0.25
    assert task_probabilities(sizes, "temperature", 2.0) == pytest.approx({"a": 0.75, "b": 0.25})


def test_parse_sampling():
    assert parse_sampling("temperature:2") == ("temperature", 2.0)
    assert parse_sampling("proportional") == ("proportional", 1.0)
    for bad in ("temperature:0", "temperature:x", "random", "uniform:3"):
        with pytest.raises(UsageError):
            parse_sampling(bad)


@pytest.mark.parametrize(
    ("strategy", "t", "expected"),
    [("proportional", 1.0, 0.9), ("temperature", 2.0, 0.75), ("uniform", 1.0, 0.5)],
)
def test_observed_task_proportions_match(strategy, t, expected):
    s = TaskBatchSampler({"a": [5] * 900, "b": [5] * 100}, 8, strategy=strategy, temperature=t)
    draws = [s.next()[0] for _ in range(4000)]
    assert draws.count("a") / len(draws) == pytest.approx(expected, abs=0.025)


def test_every_example_once_per_epoch_and_length_grouped():
    lengths = list(np.random.default_rng(0).integers(3, 60, size=103))
    s = TaskBatchSampler({"t": lengths}, 10, group_size=3)
    batches = [s.next()[1] for _ in range(s.batches_per_epoch("t"))]
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(103))
    # within a batch lengths come from one sorted window: spread smaller than random batching
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 30


def test_state_roundtrip_gives_the_same_future():
    a = TaskBatchSampler({"x": [4] * 50, "y": [7] * 30}, 4, seed=3)
    for _ in range(17):
        a.next()
    state = a.state_dict()
    future = [a.next() for _ in range(40)]
    b = TaskBatchSampler({"x": [4] * 50, "y": [7] * 30}, 4, seed=3)
    b.load_state_dict(state)
    again = [b.next() for _ in range(40)]
    assert [(t, i.tolist()) for t, i in future] == [(t, i.tolist()) for t, i in again]


def test_ranks_draw_the_same_task_and_disjoint_examples():
    lengths = {"x": [5] * 40, "y": [5] * 40}
    r0 = TaskBatchSampler(lengths, 4, seed=1, rank=0, world_size=2)
    r1 = TaskBatchSampler(lengths, 4, seed=1, rank=1, world_size=2)
    for _ in range(10):
        (t0, i0), (t1, i1) = r0.next(), r1.next()
        assert t0 == t1 and not set(i0.tolist()) & set(i1.tolist())
        assert len(i0) == len(i1) == 4


# --------------------------------------------------------------------------- hybrid batches

LANGS = ["ar", "de", "en", "fr", "sw"]


def _pair_sampler(alpha, pairing="any", seed=0, langs=LANGS, n_items=300, batch=8):
    plan = language_plan("t", langs, alpha=alpha, pairing=pairing, identity=False, seed=[seed, 1])
    return TaskBatchSampler({"t": [5] * n_items}, batch, seed=seed, plans={"t": plan})


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_hybrid_share_of_monolingual_batches_is_alpha(alpha):
    s = _pair_sampler(alpha)
    draws = [s.next()[1] for _ in range(1000)]
    mono = [d for d in draws if d.regime == MONOLINGUAL]
    # within 3.5 binomial standard errors (alpha 0 and 1: exactly)
    sd = (alpha * (1 - alpha) / 1000) ** 0.5
    assert abs(len(mono) / 1000 - alpha) <= 3.5 * sd + 1e-12
    for d in draws:
        pairs = set(zip(d.query_langs, d.doc_langs, strict=True))
        assert len(pairs) == 1, "one language pair per hybrid batch"
        ((q, dl),) = pairs
        if d.regime == MONOLINGUAL:
            assert q == dl
        else:  # a cross-lingual batch never has one language
            assert d.regime == CROSS_LINGUAL and q != dl
    # monolingual batches take the languages in turn
    firsts = [d.query_langs[0] for d in mono[:10]]
    assert firsts == (LANGS * 2)[: len(firsts)]


def test_pairing_en_x_keeps_english_on_one_side_and_any_covers_every_pair():
    s = _pair_sampler(0.0, "en-x")
    draws = [s.next()[1] for _ in range(200)]
    pairs = {(d.query_langs[0], d.doc_langs[0]) for d in draws}
    assert all("en" in p and p[0] != p[1] for p in pairs)
    assert pairs == {p for x in LANGS if x != "en" for p in (("en", x), (x, "en"))}
    s = _pair_sampler(0.0, "any")
    pairs = {(d.query_langs[0], d.doc_langs[0]) for d in (s.next()[1] for _ in range(20))}
    assert len(pairs) == 20  # 20 ordered pairs of 5 languages, each once per reshuffled turn


def test_mixed_languages_without_alpha_and_fixed_pairs():
    s = _pair_sampler(None)
    d = s.next()[1]
    assert d.regime == MIXED and len(set(zip(d.query_langs, d.doc_langs, strict=True))) > 1
    fixed = FixedLanguages(["de", "en", "en"], ["en", "en", "fr"])
    d = TaskBatchSampler({"t": [5, 5, 5]}, 3, plans={"t": fixed}).next()[1]
    got = sorted(zip(d.tolist(), d.query_langs, d.doc_langs, strict=True))
    assert got == [(0, "de", "en"), (1, "en", "en"), (2, "en", "fr")]


def test_hybrid_draws_are_deterministic_and_resume_from_the_counters():
    a = _pair_sampler(0.5, seed=4)
    for _ in range(37):
        a.next()
    state = a.state_dict()
    future = [a.next() for _ in range(50)]
    b = _pair_sampler(0.5, seed=4)
    b.load_state_dict(state)
    again = [b.next() for _ in range(50)]

    def key(draws):
        return [(t, d.tolist(), d.query_langs, d.doc_langs, d.regime) for t, d in draws]

    assert key(future) == key(again)
    # ranks share the batch's languages and split its items
    plan = language_plan("t", LANGS, alpha=0.5, pairing="any", identity=False, seed=[0, 1])
    r0 = TaskBatchSampler({"t": [5] * 40}, 4, rank=0, world_size=2, plans={"t": plan})
    r1 = TaskBatchSampler({"t": [5] * 40}, 4, rank=1, world_size=2, plans={"t": plan})
    for _ in range(5):
        (_, d0), (_, d1) = r0.next(), r1.next()
        assert d0.query_langs == d1.query_langs and d0.regime == d1.regime
        assert not set(d0.tolist()) & set(d1.tolist())


def test_impossible_language_plans_are_one_line_errors():
    with pytest.raises(UsageError, match="need two languages; its languages: en"):
        language_plan("x", ["en"], alpha=0.5, pairing="any", identity=False, seed=[0])
    with pytest.raises(UsageError, match="need English and another language"):
        language_plan("x", ["de", "fr"], alpha=0.0, pairing="en-x", identity=False, seed=[0])
    with pytest.raises(UsageError, match=r"translations .* use 0"):
        language_plan("x", ["de", "fr"], alpha=0.5, pairing="any", identity=True, seed=[0])
    # one language, monolingual only: fine
    plan = language_plan("x", ["en"], alpha=1.0, pairing="any", identity=False, seed=[0])
    assert plan.draw(0, np.arange(3)).query_langs == ("en", "en", "en")


def _eager_epoch(n: int, lengths: np.ndarray, seed: int, task: int, epoch: int, gb: int, gs: int):
    """The sampler's epoch as it was written before it became lazy: every window sorted up
    front, then the batches shuffled (the reference the lazy epoch must reproduce)."""
    rng = np.random.default_rng([seed, task, epoch])
    order = rng.permutation(n)
    groups = []
    for start in range(0, n, gb * gs):
        chunk = order[start : start + gb * gs]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        groups.extend(chunk[i : i + gb] for i in range(0, len(chunk), gb))
    return [groups[i] for i in rng.permutation(len(groups))]


class CountingLengths:
    """A lazy length source that records which indices were measured."""

    def __init__(self, lengths: np.ndarray) -> None:
        self.table = lengths
        self.measured: set[int] = set()

    def __len__(self) -> int:
        return len(self.table)

    def lengths(self, indices: np.ndarray) -> np.ndarray:
        self.measured.update(indices.tolist())
        return self.table[indices]


@pytest.mark.parametrize(("n", "batch", "group"), [(1037, 8, 5), (40, 16, 50), (96, 4, 3)])
def test_lazy_epochs_equal_sorting_every_window_up_front(n, batch, group):
    lengths = np.random.default_rng(3).integers(1, 60, size=n)
    for source in (lengths.tolist(), CountingLengths(lengths)):
        s = TaskBatchSampler({"a": source}, batch, seed=7, group_size=group)
        per_epoch = s.batches_per_epoch("a")
        drawn = [s.next()[1] for _ in range(2 * per_epoch + 3)]  # into a third epoch
        expected = [b for e in range(3) for b in _eager_epoch(n, lengths, 7, 0, e, batch, group)][
            : len(drawn)
        ]
        assert len(drawn) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(drawn, expected, strict=True))


def test_a_few_batches_measure_only_their_windows():
    lengths = np.random.default_rng(0).integers(1, 60, size=20_000)
    source = CountingLengths(lengths)
    s = TaskBatchSampler({"a": source}, 16, seed=0, group_size=50)
    for _ in range(3):
        s.next()
    # three batches touch at most three windows of 16 x 50 examples, not the 20,000
    assert 0 < len(source.measured) <= 3 * 800
