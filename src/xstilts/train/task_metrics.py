"""Intermediate-task metrics as pure functions (no model code; fractions in [0, 1]).

* :func:`accuracy`, :func:`macro_f1` - classification and multiple choice;
* :func:`tagging_accuracy` - per-token accuracy ignoring ``-100`` positions;
* :func:`bio_entity_f1` - CoNLL entity-level micro F1 over BIO tags (XGLUE NER);
* :func:`squad_scores` - SQuAD v1.1 exact match and token F1, max over the gold answers.

Answer normalisation. English (``lang="en"``) follows the official SQuAD v1.1 script exactly:
lower-case, drop ASCII punctuation, drop the articles a/an/the, split on whitespace. For other
languages whitespace tokens are meaningless where words are not space-separated, so MLQA's
evaluation approach is used: Unicode punctuation (every ``P*`` category) is removed, the
language's articles are removed where MLQA defines them (es, de, vi, ar), and characters of
scripts written without spaces (Han, Hiragana/Katakana, Thai, Lao, Khmer, Myanmar, Tibetan)
each become a token of their own. On MLQA's seven languages this equals MLQA's script except
that more CJK ranges count as characters (MLQA: U+4E00-U+9FA5 only). Thai is scored per
character (coarser than words, but comparable across systems). ``normalization="squad"`` scores
every language with the English rules, as XTREME did for XQuAD and TyDiQA.

The official scripts report percentages; these return fractions like the rest of xstilts.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal

from xstilts.errors import UsageError

IGNORE_INDEX = -100
UNLABELLED = -1  # xstilts.intermediate.UNLABELLED (not imported: this module stays data-free)

# --------------------------------------------------------------------------- classification


def _flat(values: Any) -> list:
    """A flat list from a list, a list of lists, or an array."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    values = list(values)
    if values and isinstance(values[0], list | tuple):
        return [v for seq in values for v in seq]
    return values


def _check(pred: list, gold: list) -> None:
    if len(pred) != len(gold):
        raise UsageError(f"{len(pred)} predictions for {len(gold)} references")
    if not gold:
        raise UsageError("no references to score")


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Fraction of predictions equal to the reference."""
    pred, gold = _flat(predictions), _flat(references)
    _check(pred, gold)
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)


def macro_f1(
    predictions: Sequence[int], references: Sequence[int], labels: Sequence[int] | None = None
) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: classes in either list).
    A class never predicted nor present scores 0 only if listed explicitly in ``labels``."""
    pred, gold = _flat(predictions), _flat(references)
    _check(pred, gold)
    classes = list(labels) if labels is not None else sorted(set(gold) | set(pred))
    scores = []
    for c in classes:
        tp = sum(p == c and g == c for p, g in zip(pred, gold, strict=True))
        n_pred = sum(p == c for p in pred)
        n_gold = sum(g == c for g in gold)
        scores.append(2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)
    return sum(scores) / len(scores)


def tagging_accuracy(
    predictions: Sequence[Any], references: Sequence[Any], ignore_index: int = IGNORE_INDEX
) -> float:
    """Token accuracy over positions whose reference is not ``ignore_index``.
    Accepts flat or per-sentence (nested) lists of the same shape."""
    pred, gold = _flat(predictions), _flat(references)
    _check(pred, gold)
    kept = [(p, g) for p, g in zip(pred, gold, strict=True) if g != ignore_index]
    if not kept:
        raise UsageError("no scorable tokens (every reference is ignore_index)")
    return sum(p == g for p, g in kept) / len(kept)


def _entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """``(type, start, end)`` chunks of a BIO sequence (CoNLL: a stray ``I-X`` opens one)."""
    found: set[tuple[str, int, int]] = set()
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        opens = prefix == "B" or (prefix == "I" and label != kind)
        if kind is not None and (prefix == "O" or opens):
            found.add((kind, start, i))
            kind = None
        if opens:
            kind, start = label, i
    return found


def bio_entity_f1(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> float:
    """Micro F1 of exactly matching entities (type and boundaries), as conlleval/seqeval."""
    if len(predictions) != len(references):
        raise UsageError(f"{len(predictions)} predicted sentences for {len(references)}")
    tp = n_pred = n_gold = 0
    for p, g in zip(predictions, references, strict=True):
        pe, ge = _entities(p), _entities(g)
        tp += len(pe & ge)
        n_pred += len(pe)
        n_gold += len(ge)
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


# --------------------------------------------------------------------------- SQuAD / MLQA

Normalization = Literal["auto", "squad"]

_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",
}
_ASCII_PUNCT = frozenset(string.punctuation)
# Scripts written without spaces between words: every character is a token.
_UNSPACED = re.compile(
    "["
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0002ebef"  # CJK extensions B-F
    "]"
)


@cache
def _unicode_punct() -> frozenset[str]:
    """Every Unicode punctuation character (categories P*) plus ASCII punctuation (MLQA)."""
    chars = (chr(i) for i in range(sys.maxunicode + 1))
    return frozenset(c for c in chars if unicodedata.category(c).startswith("P")) | _ASCII_PUNCT


def normalize_answer(text: str, lang: str = "en", normalization: Normalization = "auto") -> str:
    """SQuAD v1.1 normalisation for English (or ``normalization="squad"``), MLQA-style
    (Unicode punctuation, language articles, per-character CJK/Thai tokens) otherwise."""
    text = text.lower()
    if lang == "en" or normalization == "squad":
        text = "".join(ch for ch in text if ch not in _ASCII_PUNCT)
        text = re.sub(_ARTICLES["en"], " ", text)
        return " ".join(text.split())
    punct = _unicode_punct()
    text = "".join(ch for ch in text if ch not in punct)
    if lang in _ARTICLES:
        text = re.sub(_ARTICLES[lang], " ", text)
    text = _UNSPACED.sub(lambda m: f" {m.group(0)} ", text)
    return " ".join(text.split())


def exact_match(
    prediction: str, gold: str, lang: str = "en", normalization: Normalization = "auto"
) -> float:
    """1.0 when the normalised strings are equal."""
    return float(
        normalize_answer(prediction, lang, normalization)
        == normalize_answer(gold, lang, normalization)
    )


def token_f1(
    prediction: str, gold: str, lang: str = "en", normalization: Normalization = "auto"
) -> float:
    """Bag-of-tokens F1 of the normalised strings (SQuAD v1.1)."""
    p = normalize_answer(prediction, lang, normalization).split()
    g = normalize_answer(gold, lang, normalization).split()
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    predictions: Mapping[str, str],
    examples: Sequence[Any],
    *,
    normalization: Normalization = "auto",
) -> dict[str, float]:
    """Mean exact match and F1 over ``examples`` (:class:`SpanExample`), each the max over
    the example's gold answers; the example's ``lang`` picks the normalisation. A missing
    prediction scores 0 (as the official script); examples without answers are skipped."""
    scored = [ex for ex in examples if ex.answers]
    if not scored:
        raise UsageError("no examples with gold answers to score")
    em = f1 = 0.0
    for ex in scored:
        pred = predictions.get(ex.uid, "")
        golds = [text for _, text in ex.answers]
        em += max(exact_match(pred, g, ex.lang, normalization) for g in golds)
        f1 += max(token_f1(pred, g, ex.lang, normalization) for g in golds)
    return {"exact_match": em / len(scored), "f1": f1 / len(scored)}


# --------------------------------------------------------------------------- per task


def compute_task_metrics(task: Any, predictions: Any, references: Any) -> dict[str, float]:
    """A task's metrics, with its headline metric (``task.metric``) also under ``"main"``.

    * classification / multiple choice: predicted and gold label indices -> accuracy (+ macro
      F1 for classification);
    * span: ``{uid: answer text}`` and the :class:`SpanExample` list -> exact_match, f1;
    * tagging: predicted and gold tag indices, flat or per sentence (``-100`` ignored) ->
      accuracy (+ entity_f1 for BIO label sets, which needs per-sentence lists to be exact).
    """
    if task.kind == "span":
        out = squad_scores(predictions, references)
    elif task.kind == "tagging":
        out = {"accuracy": tagging_accuracy(predictions, references)}
        if task.metric == "entity_f1":
            out["entity_f1"] = bio_entity_f1(*_tag_names(task.labels, predictions, references))
    else:
        if any(r in (IGNORE_INDEX, UNLABELLED) for r in _flat(references)):
            raise UsageError(f"task {task.name}: references include unlabelled examples")
        out = {"accuracy": accuracy(predictions, references)}
        if task.kind == "classification":
            n = len(task.labels) if task.labels else None
            out["macro_f1"] = macro_f1(predictions, references, range(n) if n else None)
    if task.metric not in out:
        raise UsageError(f"task {task.name}: metric {task.metric!r} not computed for {task.kind}")
    out["main"] = out[task.metric]
    return out


def _tag_names(
    labels: Sequence[str] | None, predictions: Any, references: Any
) -> tuple[list[list[str]], list[list[str]]]:
    """Index sequences -> tag-name sequences without ignored positions (one sentence when flat)."""
    if not labels:
        raise UsageError("entity F1 needs the tag names")
    pred = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    gold = references.tolist() if hasattr(references, "tolist") else list(references)
    if gold and not isinstance(gold[0], list | tuple):
        pred, gold = [pred], [gold]
    out_p, out_g = [], []
    for p, g in zip(pred, gold, strict=True):
        kept = [(a, b) for a, b in zip(p, g, strict=True) if b != IGNORE_INDEX]
        out_p.append([labels[a] for a, _ in kept])
        out_g.append([labels[b] for _, b in kept])
    return out_p, out_g
