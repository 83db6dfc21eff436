"""Multi-task sampling: probabilities, proportions, determinism, resume, sharding."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.errors import UsageError
from xstilts.train.sampling import TaskBatchSampler, parse_sampling, task_probabilities


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
