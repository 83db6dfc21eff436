"""Which task and which examples each training step uses, reproducibly and resumably.

Multi-task mixing follows the usual strategies: ``proportional`` (p_i ∝ n_i), ``temperature:T``
(p_i ∝ n_i^(1/T); T=1 is proportional, large T tends to uniform) and ``uniform``.

The sampler is a pure function of the seed and two counters, so a resumed run draws exactly
the batches an uninterrupted run would have drawn: the task-choice generator's state and the
number of batches drawn per task are the whole state. Within a task, each epoch is a seeded
permutation; examples are grouped by length inside windows of ``group_size`` batches (less
padding, as the ``group_by_length`` option of Hugging Face's Trainer) and the batches shuffled.
Under several processes every rank draws the same task (the model's heads stay in step) and
takes its own slice of a global batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from xstilts.errors import UsageError

STRATEGIES = ("proportional", "temperature", "uniform")


def parse_sampling(spec: str) -> tuple[str, float]:
    """``proportional`` | ``uniform`` | ``temperature:T`` -> (strategy, temperature)."""
    name, _, arg = spec.strip().lower().partition(":")
    if name == "temperature":
        try:
            t = float(arg or 2.0)
        except ValueError:
            raise UsageError(f"--sampling {spec!r}: temperature must be a number") from None
        if t <= 0:
            raise UsageError(f"--sampling {spec!r}: temperature must be > 0")
        return name, t
    if name in ("proportional", "uniform") and not arg:
        return name, 1.0
    raise UsageError(f"--sampling {spec!r}: use proportional, uniform or temperature:T")


def task_probabilities(
    sizes: dict[str, int], strategy: str, temperature: float = 1.0
) -> dict[str, float]:
    """Probability of drawing each task at a step."""
    names = list(sizes)
    n = np.array([sizes[t] for t in names], dtype=np.float64)
    if strategy == "uniform":
        w = np.ones_like(n)
    elif strategy == "proportional":
        w = n
    elif strategy == "temperature":
        w = n ** (1.0 / temperature)
    else:
        raise UsageError(f"unknown sampling strategy {strategy!r}")
    w = w / w.sum()
    return dict(zip(names, w.tolist(), strict=True))


class TaskBatchSampler:
    """Draws ``(task, example indices)`` per step; state is two counters and a generator."""

    def __init__(
        self,
        lengths: dict[str, Sequence[int]],
        batch_size: int,
        *,
        strategy: str = "proportional",
        temperature: float = 1.0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        group_size: int = 50,
    ) -> None:
        self.lengths = {t: np.asarray(v) for t, v in lengths.items()}
        self.tasks = list(lengths)
        self.batch_size = batch_size
        self.global_batch = batch_size * world_size
        self.rank, self.world_size = rank, world_size
        self.seed = seed
        self.group_size = group_size
        self.probs = task_probabilities(
            {t: len(v) for t, v in self.lengths.items()}, strategy, temperature
        )
        self._p = np.array([self.probs[t] for t in self.tasks])
        self._rng = np.random.default_rng(seed)
        self.drawn = {t: 0 for t in self.tasks}
        self._epoch_cache: dict[str, tuple[int, list[np.ndarray]]] = {}
        self._args = (lengths, batch_size, strategy, temperature, seed, world_size, group_size)

    def batches_per_epoch(self, task: str) -> int:
        """Global batches in one pass over a task."""
        return math.ceil(len(self.lengths[task]) / self.global_batch)

    @property
    def micro_batches_per_epoch(self) -> int:
        """Steps for one pass over every task (what ``--epochs`` counts)."""
        return sum(self.batches_per_epoch(t) for t in self.tasks)

    def _epoch_batches(self, task: str, epoch: int) -> list[np.ndarray]:
        cached = self._epoch_cache.get(task)
        if cached and cached[0] == epoch:
            return cached[1]
        rng = np.random.default_rng([self.seed, self.tasks.index(task), epoch])
        order = rng.permutation(len(self.lengths[task]))
        window = self.global_batch * self.group_size
        groups = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(-self.lengths[task][chunk], kind="stable")]
            groups.extend(
                chunk[i : i + self.global_batch] for i in range(0, len(chunk), self.global_batch)
            )
        batches = [groups[i] for i in rng.permutation(len(groups))]
        self._epoch_cache[task] = (epoch, batches)
        return batches

    def _batch(self, task: str, n: int) -> np.ndarray:
        """The ``n``-th global batch ever drawn of ``task`` (every rank's examples)."""
        per_epoch = self.batches_per_epoch(task)
        return self._epoch_batches(task, n // per_epoch)[n % per_epoch]

    def next_global(self) -> tuple[str, np.ndarray]:
        """The next micro-batch's task and its whole global batch (every rank's examples)."""
        task = self.tasks[int(self._rng.choice(len(self.tasks), p=self._p))]
        n = self.drawn[task]
        self.drawn[task] += 1
        return task, self._batch(task, n)

    def next(self) -> tuple[str, np.ndarray]:
        """The next step's task and this rank's example indices."""
        task, batch = self.next_global()
        return task, batch[self.rank :: self.world_size]

    def drawn_batches(self, task: str) -> Iterator[np.ndarray]:
        """Every global batch of ``task`` drawn so far, in order (what the run has seen)."""
        for n in range(self.drawn[task]):
            yield self._batch(task, n)

    def steps_for(
        self, target: float, grad_accum: int, size: Callable[[str, np.ndarray], float]
    ) -> tuple[int, dict[str, int]]:
        """Optimizer steps until the summed ``size`` of the drawn global batches reaches
        ``target`` (a training budget), found by drawing from a fresh twin of this sampler:
        the run then sees between ``target`` and ``target`` plus one step's worth. Also returns
        the batches each task will have drawn by then."""
        lengths, batch_size, strategy, temperature, seed, world_size, group_size = self._args
        twin = TaskBatchSampler(
            lengths, batch_size, strategy=strategy, temperature=temperature, seed=seed,
            world_size=world_size, group_size=group_size,
        )  # fmt: skip
        seen, steps = 0.0, 0
        while seen < target:
            for _ in range(grad_accum):
                seen += size(*twin.next_global())
            steps += 1
        return steps, dict(twin.drawn)

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state (for checkpoints)."""
        return {"rng": self._rng.bit_generator.state, "drawn": dict(self.drawn)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]
        self.drawn = {t: int(state["drawn"].get(t, 0)) for t in self.tasks}
