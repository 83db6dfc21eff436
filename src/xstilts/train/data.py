"""Training data: every task's train and dev rows, loaded and checked up front, featurized as
drawn.

Bad rows stop the run before any training (``file:line``), or are skipped and counted with
``skip_bad_rows``; labels and choice counts are checked on every example before the first step
too. Training features are built the first time the sampler draws them
(:class:`~xstilts.train.features.Features`: a 3-step run on SST-2 featurizes a few windows of
its 67k rows, not all of them); span tasks and the (small) dev sets are featurized up front.

A task without a labelled dev split gets a deterministic 10% of its training
split held out for dev metrics (recorded as ``dev_note``).

The tasks a run trains are ``tasks`` after ``objective``: a task trained contrastively is its
pair form (``mnli`` -> ``mnli-pairs``; :func:`training_tasks`). A pair task's features are
items (:mod:`xstilts.train.pairs`) and its batches carry languages (its language plan).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xstilts.errors import UsageError, XstiltsError
from xstilts.intermediate import (
    IntermediateTask,
    LoadedSplit,
    contrastive_view,
    get_intermediate_task,
    parse_task_list,
)
from xstilts.train.config import TrainConfig
from xstilts.train.features import Features, check_examples, collate, featurize
from xstilts.train.heads import HeadSpec
from xstilts.train.objectives import mlm_texts
from xstilts.train.pairs import (
    check_hybrid,
    collate_pairs,
    dev_draw,
    featurize_pairs,
    pair_tokens,
    plan_for,
)
from xstilts.train.record import count_by_lang, derive_group, english_share, expected_counts
from xstilts.train.sampling import Draw, LanguagePlan, PairDraw, parse_sampling, task_probabilities

HOLDOUT_FRACTION = 0.1  # of the training split, as dev rows, when no labelled dev split exists


@dataclass
class TaskData:
    """One task's training and dev features, ready for batching."""

    task: IntermediateTask
    labels: tuple[str, ...] | None
    train: Features
    dev: list[dict]
    dev_examples: list
    n_train_examples: int
    n_skipped: int
    dev_note: str = ""
    # per training feature: the language of its example (what a draw counts, with its tokens)
    feature_langs: list[str] = field(default_factory=list)
    rows_by_lang: dict[str, int] = field(default_factory=dict)
    # pair tasks: the languages of each batch's sides, and of the dev pairs
    plan: LanguagePlan | None = None
    dev_pairs: PairDraw | None = None
    multiway: bool = False

    def collate(self, batch: Draw, pad_id: int) -> dict[str, torch.Tensor]:
        """The tensors of one drawn batch."""
        feats = self.train.take(batch.tolist())
        if isinstance(batch, PairDraw):
            return collate_pairs(dict(zip(batch.tolist(), feats, strict=True)), batch, pad_id)
        return collate(feats, pad_id)

    def drawn(self, batch: Draw) -> Iterator[tuple[str, int]]:
        """``(language, tokens)`` of every example of a drawn batch: what the training record
        and a token budget count."""
        feats = self.train.take(batch.tolist())
        if isinstance(batch, PairDraw):
            yield from pair_tokens(dict(zip(batch.tolist(), feats, strict=True)), batch)
            return
        for i, f in zip(batch.tolist(), feats, strict=True):
            yield self.feature_langs[i], feature_tokens(f)

    def summary(self) -> dict[str, Any]:
        """What ``xstilts_run.json`` records about the task."""
        return {
            "train_examples": self.n_train_examples,
            "train_features": len(self.train),
            "train_rows_by_lang": self.rows_by_lang,
            "dev_examples": len(self.dev_examples),
            "skipped_rows": self.n_skipped,
            "dev_note": self.dev_note,
        }


def head_spec(td: TaskData) -> HeadSpec:
    """The head a task needs."""
    kind = td.task.kind
    if kind == "contrastive":
        return HeadSpec(td.task.name, kind, 1)
    if kind in ("classification", "tagging"):
        if not td.labels:
            raise XstiltsError(f"task {td.task.name}: no label set")
        return HeadSpec(td.task.name, kind, len(td.labels))
    return HeadSpec(td.task.name, kind, 1 if kind == "multiple_choice" else 2)


def _holdout(split: LoadedSplit, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic train/dev division of one split (when only one labelled split exists)."""
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(split.examples))
    n_dev = max(1, int(len(order) * fraction))
    dev = [split.examples[i] for i in sorted(order[:n_dev])]
    train = [split.examples[i] for i in sorted(order[n_dev:])]
    return train, dev


def _load(
    task: IntermediateTask, cfg: TrainConfig, data_dir: Path, split: str, limit: int | None
) -> LoadedSplit:
    """One split of a task as the configuration asks (``--langs`` only for multilingual tasks:
    English-only tasks ignore it)."""
    langs = cfg.langs if cfg.langs and len(task.languages) > 1 else None
    return task.load(
        data_dir, split, langs, max_examples=limit, skip_bad_rows=cfg.skip_bad_rows, seed=cfg.seed
    )


def _aliases(task: IntermediateTask) -> tuple[str, ...]:
    """Other names a task's options may be given under: a pair form's classification task."""
    base = getattr(task, "base", None)
    return (base.name,) if base is not None else ()


def _train_split(task: IntermediateTask, cfg: TrainConfig) -> str:
    return cfg.split_for(task.name, task.train_split, *_aliases(task))


def _labelled_dev(task: IntermediateTask, cfg: TrainConfig, data_dir: Path) -> LoadedSplit | None:
    """The task's dev split when it is present, distinct from the training split and labelled."""
    train_split = _train_split(task, cfg)
    if train_split == task.dev_split or task.dev_split not in task.available(data_dir):
        return None
    dev = _load(task, cfg, data_dir, task.dev_split, cfg.eval_max_examples)
    return dev if dev.has_labels else None  # labels hidden (TyDiQA dev copies): hold out instead


def _select(
    task: IntermediateTask, cfg: TrainConfig, data_dir: Path
) -> tuple[list, list, str, LoadedSplit]:
    """The training and dev examples of one task, the dev note, and the split they came from."""
    train_split = _train_split(task, cfg)
    dev_loaded = _labelled_dev(task, cfg, data_dir)
    note = ""
    if dev_loaded is None:
        loaded = _load(task, cfg, data_dir, train_split, None)
        train_ex, dev_ex = _holdout(loaded, HOLDOUT_FRACTION, cfg.seed)
        if cfg.max_examples and cfg.max_examples < len(train_ex):
            # a seeded draw in file order, as loading does: the first N would be the first
            # language's rows only (files concatenate languages)
            keep = sorted(random.Random(cfg.seed).sample(range(len(train_ex)), cfg.max_examples))
            train_ex = [train_ex[i] for i in keep]
        note = f"dev = 10% held out of {train_split}"
    else:
        loaded = _load(task, cfg, data_dir, train_split, cfg.max_examples)
        train_ex, dev_ex = loaded.examples, dev_loaded.examples
    if cfg.eval_max_examples:
        dev_ex = dev_ex[: cfg.eval_max_examples]
    return train_ex, dev_ex, note, loaded


def select_examples(task: IntermediateTask, cfg: TrainConfig, data_dir: Path) -> list:
    """The training examples a run of ``cfg`` selects from ``task`` (no tokenizer needed)."""
    return _select(task, cfg, data_dir)[0]


def training_tasks(cfg: TrainConfig) -> list[IntermediateTask]:
    """The tasks a run trains: ``tasks`` (groups expanded), each in the form its objective asks
    for (a contrastive one's pair form); a per-task objective must name one of the tasks."""
    tasks = parse_task_list(",".join(cfg.tasks))
    if isinstance(cfg.objective, dict):
        known = {t.name for t in tasks}
        for name in cfg.objective:
            if get_intermediate_task(name).name not in known:
                raise UsageError(
                    f"--objective names {name}, which is not among the tasks ({', '.join(known)})"
                )
    out = []
    for task in tasks:
        if cfg.objective_for(task.name, *_aliases(task)) == "contrastive":
            task = contrastive_view(task)
        out.append(task)
    return list({t.name: t for t in out}.values())


def _load_pairs(
    task: IntermediateTask, cfg: TrainConfig, tokenizer: Any, selected: tuple
) -> TaskData:
    """A pair task's items, featurized, with its language plan and dev pairs."""
    train_ex, dev_ex, note, loaded = selected
    kw = {"max_length": cfg.max_length, "prefixes": cfg.role_prefixes()}
    keys: dict[str, int] = {}  # one text -> key table for every lazily built batch

    def build(examples: list) -> list[dict]:
        return featurize_pairs(
            examples, tokenizer, hard_negatives=cfg.hard_negatives, keys=keys, **kw
        )

    return TaskData(
        task=task,
        labels=None,
        train=Features(train_ex, build),
        dev=featurize_pairs(dev_ex, tokenizer, hard_negatives=False, **kw),
        dev_examples=dev_ex,
        n_train_examples=len(train_ex),
        n_skipped=loaded.n_skipped,
        dev_note=note,
        rows_by_lang=rows_by_lang(train_ex),
        plan=plan_for(
            task.name, train_ex, alpha=cfg.hybrid_alpha, pairing=cfg.pairing, seed=cfg.seed
        ),
        dev_pairs=dev_draw(dev_ex, alpha=cfg.hybrid_alpha, pairing=cfg.pairing),
        multiway=train_ex[0].multiway,
    )


def rows_by_lang(examples: list) -> dict[str, int]:
    """Rows per language; a multi-way item is a row in each of its languages."""
    return count_by_lang(lang for ex in examples for lang in getattr(ex, "languages", (ex.lang,)))


def load_task(task: IntermediateTask, cfg: TrainConfig, tokenizer: Any, data_dir: Path) -> TaskData:
    """Load and check one task's train and dev rows; featurize the dev rows, and the training
    rows as they are drawn (span tasks: up front, see :class:`Features`)."""
    if task.kind == "contrastive":
        return _load_pairs(task, cfg, tokenizer, _select(task, cfg, data_dir))
    train_ex, dev_ex, note, loaded = _select(task, cfg, data_dir)
    labels = loaded.labels if loaded.labels is not None else task.labels
    max_len = cfg.span_max_length if task.kind == "span" else cfg.max_length
    kw = {"max_length": max_len, "doc_stride": cfg.doc_stride, "labels": labels}
    if task.kind == "span":
        train = Features.built(featurize(task, train_ex, tokenizer, **kw))
        langs = [train_ex[f["example_index"]].lang for f in train]
    else:
        check_examples(task, train_ex, labels)
        train = Features(train_ex, lambda exs: featurize(task, exs, tokenizer, **kw))
        langs = [ex.lang for ex in train_ex]
    return TaskData(
        task=task,
        labels=labels,
        train=train,
        dev=featurize(task, dev_ex, tokenizer, **kw),
        dev_examples=dev_ex,
        n_train_examples=len(train_ex),
        n_skipped=loaded.n_skipped,
        dev_note=note,
        feature_langs=langs,
        rows_by_lang=count_by_lang(ex.lang for ex in train_ex),
    )


def feature_tokens(feature: dict) -> int:
    """Tokens a feature feeds the model (all choices of a multiple-choice feature): what a token
    budget counts. Features are unpadded, so every id is a real token."""
    ids = feature["input_ids"]
    return sum(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def planned_rows(cfg: TrainConfig, data_dir: Path) -> dict[str, dict[str, int]]:
    """Training rows per task and language, as :func:`load_task` will select them, without a
    tokenizer (seconds): what decides a setting's group before anything is trained."""
    return {task: rows for task, (rows, _) in _planned(cfg, data_dir).items()}


def _planned(cfg: TrainConfig, data_dir: Path) -> dict[str, tuple[dict[str, int], int]]:
    """Per task: rows per language, and the items the sampler draws from (a multi-way item,
    one row in each of 15 languages, is one item: what task probabilities are weighted by)."""
    out = {}
    for task in training_tasks(cfg):
        examples = select_examples(task, cfg, data_dir)
        out[task.name] = (rows_by_lang(examples), len(examples))
    return out


def load_task_data(cfg: TrainConfig, tokenizer: Any, data_dir: Path) -> list[TaskData]:
    """Load and check every task's train and dev rows before training starts (training rows are
    featurized as drawn)."""
    tasks = [load_task(task, cfg, tokenizer, data_dir) for task in training_tasks(cfg)]
    check_hybrid(
        cfg.hybrid_alpha, {td.task.name: td.multiway for td in tasks if td.plan is not None}
    )
    return tasks


def plan_record(cfg: TrainConfig, data_dir: Path) -> dict[str, Any]:
    """The record a run of ``cfg`` is expected to produce, from its rows alone (no model, no
    tokenizer: seconds): rows per task and language, the auxiliary MLM text per language, and
    the expected share of each language among the examples drawn, hence the group
    (:func:`xstilts.train.record.derive_group`). A finished run's exact record replaces it."""
    strategy, temperature = parse_sampling(cfg.sampling)
    planned = _planned(cfg, data_dir)
    rows = {t: r for t, (r, _) in planned.items()}
    probs = task_probabilities({t: n for t, (_, n) in planned.items()}, strategy, temperature)
    mlm_rows = (
        count_by_lang(lang for _, lang in mlm_texts(cfg.mlm_data, data_dir)) if cfg.mlm_aux else {}
    )
    expected = expected_counts(rows, probs, mlm_rows)
    return {
        "planned": True,
        "tasks": {t: {"rows": r, "probability": round(probs[t], 6)} for t, r in rows.items()},
        "mlm": {"rows": mlm_rows} if mlm_rows else None,
        "expected_share": {
            lang: round(v / sum(expected.values()), 6) for lang, v in expected.items()
        },
        "english_share": round(english_share(expected), 6),
        "group": derive_group(expected),
    }
