"""Pair tasks in training: features, language plans, batches and the dev metric.

A pair task's feature is one item: token ids of its query, document and hard negative in every
language it has, tokenized exactly as evaluation tokenizes a sentence
(:func:`xstilts.embedding.encoder.tokenize_texts`: the role prefix, the same truncation),
plus an integer key per distinct text (equal keys, equal texts: what the false-negative mask
compares) and a length for length-grouped batching. Each distinct text is tokenized once.

The language plan of a task (:mod:`xstilts.train.sampling`) decides which language each side
of a drawn item is read in; :func:`collate_pairs` then builds the batch the contrastive head
reads. The dev metric is retrieval accuracy: each dev query ranks every dev document (cosine
of the same sentence vectors), correct when the top one is its own document's text.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from xstilts.embedding.encoder import tokenize_texts
from xstilts.errors import UsageError
from xstilts.intermediate import PairExample
from xstilts.intermediate.schema import pair_lang
from xstilts.train.contrastive import false_negative_mask
from xstilts.train.features import collate, to_device
from xstilts.train.sampling import (
    FixedLanguages,
    LanguagePlan,
    PairDraw,
    cross_pairs,
    language_plan,
)

SIDES = ("query", "doc", "negative")


def _tokenized(tokenizer: Any, texts: set[str], prefix: str, max_length: int) -> dict[str, list]:
    ordered = sorted(texts)
    ids, _ = tokenize_texts(tokenizer, ordered, prefix, max_length)
    return dict(zip(ordered, ids, strict=True))


def featurize_pairs(
    examples: Sequence[PairExample],
    tokenizer: Any,
    *,
    max_length: int,
    prefixes: tuple[str, str],
    hard_negatives: bool = True,
    keys: dict[str, int] | None = None,
) -> list[dict]:
    """One feature per item (module docstring); ``prefixes``: (query, document) prefixes, the
    document's also for hard negatives; ``hard_negatives=False`` leaves them out. ``keys``:
    the text -> key table to extend, shared by the calls that featurize one task's items a
    few at a time (:class:`~xstilts.train.features.Features`), so equal texts get equal keys
    whichever call met them first."""
    texts: dict[str, set[str]] = {"query": set(), "doc": set()}
    for ex in examples:
        texts["query"].update(ex.query.values())
        texts["doc"].update(ex.doc.values())
        if hard_negatives:
            texts["doc"].update(ex.negative.values())
    ids = {
        side: _tokenized(tokenizer, texts[side], prefix, max_length)
        for side, prefix in zip(("query", "doc"), prefixes, strict=True)
    }
    keys = {} if keys is None else keys
    feats = []
    for ex in examples:
        sides = {
            "query": ex.query,
            "doc": ex.doc,
            "negative": ex.negative if hard_negatives else {},
        }
        feat: dict[str, Any] = {"keys": {}}
        for side, versions in sides.items():
            table = ids["query" if side == "query" else "doc"]
            feat[side] = {lang: table[t] for lang, t in versions.items()}
            feat["keys"][side] = {
                lang: keys.setdefault(t, len(keys)) for lang, t in versions.items()
            }
        ref = "en" if "en" in ex.query else next(iter(ex.query))
        doc_ref = ref if ref in ex.doc else next(iter(ex.doc))
        feat["length"] = len(feat["query"][ref]) + len(feat["doc"][doc_ref])
        feats.append(feat)
    return feats


def collate_pairs(features: Sequence[dict], draw: PairDraw, pad_id: int) -> dict[str, torch.Tensor]:
    """The batch of a draw: ``{query,doc,negative}_{input_ids,attention_mask}`` (negatives only
    for the items that have one in their document's language) and ``false_negatives``."""
    rows = list(zip(draw.tolist(), draw.query_langs, draw.doc_langs, strict=True))
    chosen = {
        "query": [(features[i], "query", q) for i, q, _ in rows],
        "doc": [(features[i], "doc", d) for i, _, d in rows],
        "negative": [
            (features[i], "negative", d) for i, _, d in rows if d in features[i]["negative"]
        ],
    }
    batch: dict[str, torch.Tensor] = {}
    keys = {}
    for side, picks in chosen.items():
        keys[side] = torch.tensor([f["keys"][s][lang] for f, s, lang in picks], dtype=torch.long)
        if not picks:
            continue
        seqs = [
            {"input_ids": f[s][lang], "attention_mask": [1] * len(f[s][lang])}
            for f, s, lang in picks
        ]
        for name, tensor in collate(seqs, pad_id).items():
            batch[f"{side}_{name}"] = tensor
    batch["false_negatives"] = false_negative_mask(keys["query"], keys["doc"], keys["negative"])
    return batch


def pair_tokens(features: Sequence[dict], draw: PairDraw) -> Iterator[tuple[str, int]]:
    """``(language, tokens)`` per drawn pair: what the training record and a token budget
    count (query, document and hard negative tokens; a cross-lingual pair is ``de-en``)."""
    for i, q, d in zip(draw.tolist(), draw.query_langs, draw.doc_langs, strict=True):
        f = features[i]
        tokens = len(f["query"][q]) + len(f["doc"][d]) + len(f["negative"].get(d, ()))
        yield pair_lang(q, d), tokens


# --------------------------------------------------------------------------- language plans


def _seed(seed: int, task: str) -> list[int]:
    """A task's own random stream: the run's seed and a stable number from its name."""
    return [seed, zlib.crc32(task.encode("utf-8"))]


def plan_for(
    task: str,
    examples: Sequence[PairExample],
    *,
    alpha: float | None,
    pairing: str,
    seed: int,
) -> LanguagePlan:
    """The language plan of a pair task: fixed pairs keep their languages; multi-way items
    follow ``alpha`` (hybrid batches) or, without it, draw each pair's languages."""
    first = examples[0]
    if not first.multiway:
        return FixedLanguages(
            [next(iter(ex.query)) for ex in examples], [next(iter(ex.doc)) for ex in examples]
        )
    return language_plan(
        task,
        list(first.query),
        alpha=alpha,
        pairing=pairing,
        identity=first.identity,
        seed=_seed(seed, task),
    )


def dev_draw(examples: Sequence[PairExample], *, alpha: float | None, pairing: str) -> PairDraw:
    """Languages of the dev pairs: a fixed pair's own; a multi-way item k the k-th of the
    language pairs training draws (monolingual ones unless alpha is 0 or the items are
    translations, cross-lingual ones unless alpha is 1), in turn."""
    items = np.arange(len(examples))
    first = examples[0]
    if not first.multiway:
        return FixedLanguages(
            [next(iter(ex.query)) for ex in examples], [next(iter(ex.doc)) for ex in examples]
        ).draw(0, items)
    langs = list(first.query)
    mono = [] if first.identity or alpha == 0 else [(x, x) for x in langs]
    cross = [] if alpha == 1 else cross_pairs(langs, pairing)
    combos = mono + cross or [(langs[0], langs[0])]
    picks = [combos[k % len(combos)] for k in range(len(examples))]
    return PairDraw(items, tuple(q for q, _ in picks), tuple(d for _, d in picks), "dev")


def check_hybrid(alpha: float | None, multiway: dict[str, bool]) -> None:
    """``hybrid_alpha`` decides the languages of multi-way items only: asking for it without
    one is an error naming the tasks (fixed pairs keep their own languages)."""
    if alpha is not None and not any(multiway.values()):
        which = (
            f"{', '.join(multiway)} keep their pairs' own languages"
            if multiway
            else "this run trains no pair task"
        )
        raise UsageError(
            f"--hybrid-alpha {alpha:g} decides the languages of multi-way parallel items "
            f"(xnli-parallel, pawsx-parallel, the *-translations tasks); {which}"
        )


# --------------------------------------------------------------------------- dev metric


@torch.inference_mode()
def evaluate_pairs(
    model: Any,
    features: Sequence[dict],
    draw: PairDraw,
    pad_id: int,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Retrieval accuracy of the dev pairs (module docstring)."""
    vectors: dict[str, list[torch.Tensor]] = {"query": [], "doc": []}
    gold: list[int] = []
    for start in range(0, len(draw), batch_size):
        part = draw[start : start + batch_size]
        batch = to_device(collate_pairs(features, part, pad_id), device)
        for side in vectors:
            ids, mask = batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"]
            vectors[side].append(torch.nn.functional.normalize(model.embed(ids, mask), dim=-1))
        gold.extend(
            features[i]["keys"]["doc"][d]
            for i, d in zip(part.tolist(), part.doc_langs, strict=True)
        )
    q, d = torch.cat(vectors["query"]), torch.cat(vectors["doc"])
    top = (q @ d.T).argmax(dim=1).cpu().tolist()
    accuracy = float(np.mean([gold[t] == gold[i] for i, t in enumerate(top)]))
    return {"accuracy": accuracy, "main": accuracy}
