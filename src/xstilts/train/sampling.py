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

Contrastive tasks draw a :class:`PairDraw`: the items as above plus the language each side of
each item is read in, decided by the task's language plan:

* :class:`FixedLanguages`: a pair keeps its own languages (MNLI pairs, a user's file);
* :class:`HybridLanguages` (``hybrid_alpha``, Elmahdy et al. 2024's hybrid batches): each batch
  is monolingual with probability alpha (both sides in one language, the languages taken in
  turn) and otherwise cross-lingual (two different languages, the allowed pairs of the
  ``pairing`` scheme taken in a reshuffled turn); alpha 1 and 0 are the pure regimes;
* :class:`MixedLanguages` (no alpha): every pair's languages are drawn on their own.

The n-th batch's languages are a pure function of the seed and n, so resuming needs no more
state than the counters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xstilts.errors import UsageError

STRATEGIES = ("proportional", "temperature", "uniform")
MONOLINGUAL, CROSS_LINGUAL, MIXED, FIXED = "monolingual", "cross-lingual", "mixed", "fixed"


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


@dataclass(frozen=True)
class PairDraw:
    """One contrastive batch: items and the language each side of each item is read in."""

    items: np.ndarray
    query_langs: tuple[str, ...]
    doc_langs: tuple[str, ...]
    regime: str  # monolingual | cross-lingual | mixed | fixed

    def __len__(self) -> int:
        return len(self.items)

    def tolist(self) -> list[int]:
        """The item indices."""
        return self.items.tolist()

    def __getitem__(self, rows: slice) -> PairDraw:
        """A slice of the batch (one rank's share)."""
        return PairDraw(self.items[rows], self.query_langs[rows], self.doc_langs[rows], self.regime)


Draw = np.ndarray | PairDraw  # what a task's batch is: feature indices, or items with languages


class LanguagePlan(Protocol):
    """Decides the languages of a contrastive task's n-th batch."""

    def draw(self, n: int, items: np.ndarray) -> PairDraw: ...


@dataclass(frozen=True)
class FixedLanguages:
    """Every item keeps its own (query, document) languages."""

    query_langs: Sequence[str]
    doc_langs: Sequence[str]

    def draw(self, n: int, items: np.ndarray) -> PairDraw:
        rows = items.tolist()
        return PairDraw(
            items,
            tuple(self.query_langs[i] for i in rows),
            tuple(self.doc_langs[i] for i in rows),
            FIXED,
        )


def cross_pairs(langs: Sequence[str], pairing: str) -> list[tuple[str, str]]:
    """The (query, document) language pairs of cross-lingual pairs: ``any`` two different
    languages, or ``en-x``: English and another, either way round."""
    if pairing == "en-x":
        return (
            [p for x in langs if x != "en" for p in (("en", x), (x, "en"))] if "en" in langs else []
        )
    return [(x, y) for x in langs for y in langs if x != y]


class HybridLanguages:
    """Hybrid batches: monolingual with probability ``alpha``, else cross-lingual.

    The batches' regimes and languages are generated in order from one seeded generator and
    remembered, so the n-th is the same whenever it is asked for (a resumed run, the budget's
    twin sampler, the training record).
    """

    def __init__(
        self, langs: Sequence[str], alpha: float, pairing: str, seed: Sequence[int]
    ) -> None:
        self.langs = list(langs)
        self.alpha = alpha
        self.pairs = cross_pairs(self.langs, pairing)
        self._rng = np.random.default_rng([*seed, 7919])
        self._specs: list[tuple[str, str, str]] = []
        self._mono = self._cross = 0
        self._order: list[int] = []

    def spec(self, n: int) -> tuple[str, str, str]:
        """``(regime, query language, document language)`` of batch ``n``."""
        while len(self._specs) <= n:
            self._specs.append(self._next())
        return self._specs[n]

    def _next(self) -> tuple[str, str, str]:
        if self._rng.random() < self.alpha:
            lang = self.langs[self._mono % len(self.langs)]
            self._mono += 1
            return MONOLINGUAL, lang, lang
        if self._cross % len(self.pairs) == 0:
            self._order = self._rng.permutation(len(self.pairs)).tolist()
        x, y = self.pairs[self._order[self._cross % len(self.pairs)]]
        self._cross += 1
        return CROSS_LINGUAL, x, y

    def draw(self, n: int, items: np.ndarray) -> PairDraw:
        regime, x, y = self.spec(n)
        return PairDraw(items, (x,) * len(items), (y,) * len(items), regime)


@dataclass(frozen=True)
class MixedLanguages:
    """Each pair's languages drawn on their own from ``combos`` (seeded by the batch number)."""

    combos: Sequence[tuple[str, str]]
    seed: Sequence[int]

    def draw(self, n: int, items: np.ndarray) -> PairDraw:
        rng = np.random.default_rng([*self.seed, n, 31])
        picks = rng.integers(len(self.combos), size=len(items)).tolist()
        return PairDraw(
            items,
            tuple(self.combos[k][0] for k in picks),
            tuple(self.combos[k][1] for k in picks),
            MIXED,
        )


def language_plan(
    task: str,
    langs: Sequence[str],
    *,
    alpha: float | None,
    pairing: str,
    identity: bool,
    seed: Sequence[int],
) -> HybridLanguages | MixedLanguages:
    """The plan of a multi-way task; impossible requests are one-line errors: cross-lingual
    batches need two languages (and English under ``en-x``), and translation items make no
    monolingual pairs (a sentence and itself)."""
    cross = cross_pairs(langs, pairing)
    wants_cross = alpha is None or alpha < 1
    if alpha is not None and alpha > 0 and identity:
        raise UsageError(
            f"{task}: --hybrid-alpha {alpha:g} asks for monolingual batches, but its items are "
            "translations (a monolingual pair would be a sentence and itself): use 0"
        )
    if wants_cross and not cross and (alpha is not None or identity):
        need = "English and another language" if pairing == "en-x" else "two languages"
        shown = "unset" if alpha is None else f"{alpha:g}"
        raise UsageError(
            f"{task}: cross-lingual batches (--hybrid-alpha {shown}, --pairing {pairing}) need "
            f"{need}; its languages: {', '.join(langs)}"
        )
    if alpha is not None:
        return HybridLanguages(langs, alpha, pairing, seed)
    mono = [] if identity else [(x, x) for x in langs]
    return MixedLanguages(mono + cross, seed)


class LengthSource(Protocol):
    """Lengths computed on demand (lazily featurized examples: only the windows drawn)."""

    def __len__(self) -> int: ...

    def lengths(self, indices: np.ndarray) -> np.ndarray: ...


def _length_lookup(lengths: Sequence[int] | LengthSource) -> Callable[[np.ndarray], np.ndarray]:
    """``indices -> lengths`` for a plain sequence of lengths or a :class:`LengthSource`."""
    if hasattr(lengths, "lengths"):
        return lengths.lengths  # type: ignore[union-attr]
    table = np.asarray(lengths)
    return lambda indices: table[indices]


class _Epoch:
    """One pass over a task: a seeded permutation cut into windows of ``group_size`` batches,
    each window sorted longest first and cut into batches, the batches then shuffled.

    Built lazily, window by window: the batch permutation only needs the number of batches, and
    a batch needs only its own window's lengths, so drawing a few batches measures a few
    windows (what lets featurization wait for the draw). The batches are exactly those of
    sorting every window up front: the same generator calls in the same order."""

    def __init__(
        self, epoch: int, rng: np.random.Generator, size: int, batch: int, group_size: int
    ) -> None:
        self.epoch = epoch
        self.order = rng.permutation(size)
        self.batch_size = batch
        self.window = batch * group_size
        self.group_size = group_size
        self.perm = rng.permutation(math.ceil(size / batch))
        self._sorted: dict[int, np.ndarray] = {}

    def batch(self, k: int, length_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The ``k``-th batch of the epoch."""
        group = int(self.perm[k])
        w = group // self.group_size  # every window but the last holds group_size batches
        if w not in self._sorted:
            chunk = self.order[w * self.window : (w + 1) * self.window]
            self._sorted[w] = chunk[np.argsort(-length_of(chunk), kind="stable")]
        start = (group % self.group_size) * self.batch_size
        return self._sorted[w][start : start + self.batch_size]


class TaskBatchSampler:
    """Draws ``(task, example indices)`` per step (a :class:`PairDraw` for a task with a
    language plan); state is two counters and a generator."""

    def __init__(
        self,
        lengths: dict[str, Sequence[int] | LengthSource],
        batch_size: int,
        *,
        strategy: str = "proportional",
        temperature: float = 1.0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        group_size: int = 50,
        plans: dict[str, LanguagePlan] | None = None,
    ) -> None:
        self.plans = dict(plans or {})
        self.sizes = {t: len(v) for t, v in lengths.items()}
        self._length_of = {t: _length_lookup(v) for t, v in lengths.items()}
        self.tasks = list(lengths)
        self.batch_size = batch_size
        self.global_batch = batch_size * world_size
        self.rank, self.world_size = rank, world_size
        self.seed = seed
        self.group_size = group_size
        self.probs = task_probabilities(self.sizes, strategy, temperature)
        self._p = np.array([self.probs[t] for t in self.tasks])
        self._rng = np.random.default_rng(seed)
        self.drawn = {t: 0 for t in self.tasks}
        self._epochs: dict[str, _Epoch] = {}
        self._args = (lengths, batch_size, strategy, temperature, seed, world_size, group_size)
        self._args_plans = self.plans

    def batches_per_epoch(self, task: str) -> int:
        """Global batches in one pass over a task."""
        return math.ceil(self.sizes[task] / self.global_batch)

    @property
    def micro_batches_per_epoch(self) -> int:
        """Steps for one pass over every task (what ``--epochs`` counts)."""
        return sum(self.batches_per_epoch(t) for t in self.tasks)

    def _epoch(self, task: str, epoch: int) -> _Epoch:
        cached = self._epochs.get(task)
        if cached is None or cached.epoch != epoch:
            cached = _Epoch(
                epoch,
                np.random.default_rng([self.seed, self.tasks.index(task), epoch]),
                self.sizes[task],
                self.global_batch,
                self.group_size,
            )
            self._epochs[task] = cached
        return cached

    def _batch(self, task: str, n: int) -> Draw:
        """The ``n``-th global batch ever drawn of ``task`` (every rank's examples)."""
        per_epoch = self.batches_per_epoch(task)
        items = self._epoch(task, n // per_epoch).batch(n % per_epoch, self._length_of[task])
        plan = self.plans.get(task)
        return items if plan is None else plan.draw(n, items)

    def next_global(self) -> tuple[str, Draw]:
        """The next micro-batch's task and its whole global batch (every rank's examples)."""
        task = self.tasks[int(self._rng.choice(len(self.tasks), p=self._p))]
        n = self.drawn[task]
        self.drawn[task] += 1
        return task, self._batch(task, n)

    def next(self) -> tuple[str, Draw]:
        """The next step's task and this rank's example indices."""
        task, batch = self.next_global()
        return task, batch[self.rank :: self.world_size]

    def drawn_batches(self, task: str) -> Iterator[Draw]:
        """Every global batch of ``task`` drawn so far, in order (what the run has seen)."""
        for n in range(self.drawn[task]):
            yield self._batch(task, n)

    def steps_for(
        self, target: float, grad_accum: int, size: Callable[[str, Draw], float]
    ) -> tuple[int, dict[str, int]]:
        """Optimizer steps until the summed ``size`` of the drawn global batches reaches
        ``target`` (a training budget), found by drawing from a fresh twin of this sampler:
        the run then sees between ``target`` and ``target`` plus one step's worth. Also returns
        the batches each task will have drawn by then."""
        lengths, batch_size, strategy, temperature, seed, world_size, group_size = self._args
        twin = TaskBatchSampler(
            lengths, batch_size, strategy=strategy, temperature=temperature, seed=seed,
            world_size=world_size, group_size=group_size, plans=self._args_plans,
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
