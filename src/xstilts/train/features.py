"""Examples -> model inputs, one function per head kind, and span post-processing.

Features are plain Python lists without padding; :func:`collate` pads a batch to its longest
member (dynamic padding: far less wasted compute than padding everything to ``max_length``).

* classification: ``tokenizer(text_a, text_b)`` truncated longest-first;
* multiple choice: the context paired with each choice, truncating the context first (the
  choices are short and carry the decision);
* span (extractive QA, as Hugging Face ``run_qa``): question first, the context cut into windows
  of ``max_length`` tokens overlapping by ``doc_stride`` tokens; each window is one feature whose
  answer positions point at the CLS token (index 0) when the answer is not wholly inside it;
* tagging: a word's tag on its first sub-token, ``-100`` (ignored by the loss) elsewhere.

Unlabelled examples (label ``-1``) get ``-100`` labels, so a loss ignores them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import torch

from xstilts.errors import UsageError
from xstilts.intermediate import (
    UNLABELLED,
    ChoiceExample,
    IntermediateTask,
    SpanExample,
    TaggingExample,
    TextExample,
)

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the loss ignores (PyTorch's CrossEntropyLoss default)
_DROP_IN_COLLATE = ("example_index", "offset_mapping")
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
MAX_QUERY_TOKENS = 64  # questions longer than this are cut (as the original BERT SQuAD code)


def featurize(
    task: IntermediateTask,
    examples: list,
    tokenizer: Any,
    *,
    max_length: int = 128,
    doc_stride: int = 128,
    labels: tuple[str, ...] | None = None,
) -> list[dict]:
    """Turn a task's examples into features for its head (see the module docstring).

    ``labels``: the label set the head was built with; every label index must fit in it (a
    dev split read with a different tag inventory would silently train the wrong classes).
    """
    if max_length < 8:
        raise UsageError(f"max_length {max_length} is too small (at least 8 tokens)")
    check_examples(task, examples, labels)
    if task.kind == "classification":
        feats = _classification(examples, tokenizer, max_length)
    elif task.kind == "multiple_choice":
        feats = _multiple_choice(examples, tokenizer, max_length)
    elif task.kind == "span":
        feats = _spans(examples, tokenizer, max_length, doc_stride)
    elif task.kind == "tagging":
        feats = _tagging(examples, tokenizer, max_length)
    else:  # pragma: no cover - the registry only has the four kinds
        raise UsageError(f"unknown head kind {task.kind!r}")
    return feats


def check_examples(
    task: IntermediateTask, examples: Sequence[Any], labels: tuple[str, ...] | None
) -> None:
    """What featurization would refuse, checked on the examples themselves (no tokenizer), so
    a run featurizing lazily still refuses bad data before its first step: every label index
    must fit the head's ``labels`` (a dev split read with a different tag inventory would
    silently train the wrong classes); every multiple-choice example has the task's number
    of choices."""
    if task.kind == "multiple_choice":
        counts = {len(ex.choices) for ex in examples}
        if len(counts) > 1 or (task.num_choices and counts and counts != {task.num_choices}):
            raise UsageError(
                f"task {task.name}: examples have {sorted(counts)} choices, expected "
                f"{task.num_choices} for every example"
            )
    if labels is None or task.kind not in ("classification", "tagging"):
        return
    n = len(labels)
    for ex in examples:
        values = ex.tags if task.kind == "tagging" else (ex.label,)
        bad = [v for v in values if v != UNLABELLED and not 0 <= v < n]
        if bad:
            raise UsageError(
                f"task {task.name}: label index {bad[0]} outside the head's {n} labels "
                "(load dev/test with labels=<the training split's labels>)"
            )


class Features(Sequence[dict]):
    """A task's training features, one per example, built the first time a batch draws them.

    A run of a few steps draws a few hundred of SST-2's 67k examples: featurizing only what is
    drawn (and the windows the length-grouped sampler sorts) makes the time to the first step
    independent of the dataset's size. Built features are kept, so each is built once; a
    feature is a pure function of its example, so a lazy run trains on exactly the features an
    eager one would. Span tasks cut one example into several windows, so their features are
    built up front (:meth:`built`): there the sampler counts windows, which only
    featurization knows.
    """

    def __init__(self, examples: Sequence[Any], build: Callable[[list], list[dict]]) -> None:
        self.examples = examples
        self._build = build
        self._cache: dict[int, dict] = {}

    @classmethod
    def built(cls, features: list[dict]) -> Features:
        """Features already built (every one of them)."""
        out = cls(features, _unbuildable)
        out._cache = dict(enumerate(features))
        return out

    def __len__(self) -> int:
        return len(self.examples)

    @overload
    def __getitem__(self, i: int) -> dict: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict]: ...
    def __getitem__(self, i: int | slice) -> dict | list[dict]:
        if isinstance(i, slice):
            return self.take(range(*i.indices(len(self))))
        return self.take([i])[0]

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, len(self), 1024):  # one tokenizer call per block, not per row
            yield from self.take(range(start, min(start + 1024, len(self))))

    def take(self, indices: Iterable[int]) -> list[dict]:
        """The features of ``indices``, building the missing ones in one tokenizer call."""
        idx = [int(i) % len(self) if int(i) < 0 else int(i) for i in indices]
        missing = sorted({i for i in idx if i not in self._cache})
        if missing:
            built = self._build([self.examples[i] for i in missing])
            if len(built) != len(missing):  # pragma: no cover - the builders are one-to-one
                raise RuntimeError(f"{len(missing)} examples made {len(built)} features")
            self._cache.update(zip(missing, built, strict=True))
        return [self._cache[i] for i in idx]

    def lengths(self, indices: np.ndarray) -> np.ndarray:
        """Token lengths of ``indices`` (:func:`feature_length`): what the sampler groups by."""
        return np.array([feature_length(f) for f in self.take(indices)], dtype=np.int64)

    @property
    def n_built(self) -> int:
        """Features built so far (the run record shows how much a lazy run featurized)."""
        return len(self._cache)


def _unbuildable(examples: list) -> list[dict]:  # pragma: no cover - built() caches every one
    raise RuntimeError("these features were built up front")


def _label(value: int) -> int:
    return IGNORE_INDEX if value == UNLABELLED else value


def _encodings(enc: Any, i: int, keys: Sequence[str]) -> dict[str, list[int]]:
    return {k: list(enc[k][i]) for k in keys if k in enc}


def _model_keys(tokenizer: Any) -> tuple[str, ...]:
    """input_ids, attention_mask and, for BERT-style models, token_type_ids (segment ids)."""
    names = getattr(tokenizer, "model_input_names", None) or []
    return tuple(k for k in _SEQUENCE_KEYS if k in ("input_ids", "attention_mask") or k in names)


# --------------------------------------------------------------------------- classification


def _classification(examples: list[TextExample], tok: Any, max_length: int) -> list[dict]:
    keys = _model_keys(tok)
    out: list[dict | None] = [None] * len(examples)
    singles = [i for i, ex in enumerate(examples) if ex.text_b is None]
    pairs = [i for i, ex in enumerate(examples) if ex.text_b is not None]
    for idx, pair in ((singles, False), (pairs, True)):
        if not idx:
            continue
        a = [examples[i].text_a for i in idx]
        if pair:
            b = [examples[i].text_b for i in idx]
            enc = tok(a, b, truncation="longest_first", max_length=max_length)
        else:
            enc = tok(a, truncation=True, max_length=max_length)
        for j, i in enumerate(idx):
            out[i] = {**_encodings(enc, j, keys), "labels": _label(examples[i].label)}
    return [f for f in out if f is not None]


# --------------------------------------------------------------------------- multiple choice


def _multiple_choice(examples: list[ChoiceExample], tok: Any, max_length: int) -> list[dict]:
    keys = _model_keys(tok)
    firsts = [ex.context for ex in examples for _ in ex.choices]
    seconds = [c for ex in examples for c in ex.choices]
    enc = _pair_encode(tok, firsts, seconds, max_length)
    out = []
    k = 0
    for ex in examples:
        n = len(ex.choices)
        feat: dict[str, Any] = {key: [list(x) for x in enc[key][k : k + n]] for key in keys}
        feat["labels"] = _label(ex.label)
        out.append(feat)
        k += n
    return out


def _pair_encode(tok: Any, firsts: list[str], seconds: list[str], max_length: int) -> dict:
    """Encode pairs truncating the first segment only; pairs whose second segment alone is
    too long (the tokenizer refuses ``only_first`` then) fall back to longest-first."""
    try:
        return dict(tok(firsts, seconds, truncation="only_first", max_length=max_length))
    except Exception as exc:  # tokenizers raises a bare Exception on impossible truncation
        if "runcat" not in str(exc):
            raise
    merged: dict[str, list] = defaultdict(list)
    for a, b in zip(firsts, seconds, strict=True):
        try:
            one = tok(a, b, truncation="only_first", max_length=max_length)
        except Exception as exc:
            if "runcat" not in str(exc):
                raise
            one = tok(a, b, truncation="longest_first", max_length=max_length)
        for key, value in one.items():
            merged[key].append(value)
    return dict(merged)


# --------------------------------------------------------------------------- spans


def _require_fast(tok: Any, what: str) -> None:
    if not getattr(tok, "is_fast", False):
        raise UsageError(
            f"{what} needs a fast (Rust) tokenizer for offsets/word ids; "
            f"{type(tok).__name__} is a slow one (install `tokenizers` / use_fast=True)"
        )


def _trimmed(context: str, start: int, end: int) -> tuple[int, int] | None:
    """A token's character span without surrounding whitespace; None if only whitespace.

    SentencePiece tokenizers may include the ``▁`` space in a word's offsets; trimming makes
    ``context[s:e]`` of a predicted span start and end on text."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _truncate_questions(tok: Any, questions: list[str], limit: int) -> list[str]:
    """Cut questions longer than ``limit`` tokens at a token boundary."""
    enc = tok(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, ids, offs in zip(questions, enc["input_ids"], enc["offset_mapping"], strict=True):
        out.append(q[: offs[limit - 1][1]] if len(ids) > limit else q)
    return out


def _answer_tokens(
    offsets: list[tuple[int, int] | None], start_char: int, end_char: int
) -> tuple[int, int] | None:
    """The smallest run of tokens covering ``[start_char, end_char)``; None when the window
    does not hold the whole answer."""
    present = [(i, o) for i, o in enumerate(offsets) if o is not None]
    if not present or present[0][1][0] > start_char or present[-1][1][1] < end_char:
        return None
    start = next((i for i, (s, e) in reversed(present) if s <= start_char < e), None)
    if start is None:  # answer starts on whitespace: first token after it
        start = next((i for i, (s, _) in present if s >= start_char), None)
    if start is None:
        return None
    end = next((i for i, (s, e) in present if i >= start and s < end_char <= e), None)
    if end is None:  # answer ends on whitespace: last token before it
        end = next((i for i, (_, e) in reversed(present) if i >= start and e <= end_char), None)
    return (start, end) if end is not None else None


def _spans(examples: list[SpanExample], tok: Any, max_length: int, doc_stride: int) -> list[dict]:
    _require_fast(tok, "span featurization")
    keys = _model_keys(tok)
    n_special = tok.num_special_tokens_to_add(pair=True)
    q_limit = max(1, min(MAX_QUERY_TOKENS, (max_length - n_special) // 2))
    questions = _truncate_questions(tok, [ex.question.lstrip() for ex in examples], q_limit)
    # lengths as the pair encoding will see them (a cut question is re-tokenized)
    q_lens = [len(ids) for ids in tok(questions, add_special_tokens=False)["input_ids"]]

    # The overlap must be shorter than a window's context part; a long question leaves less
    # room, so examples are grouped by the stride they can afford (usually one group).
    groups: dict[int, list[int]] = defaultdict(list)
    for i, q_len in enumerate(q_lens):
        room = max_length - n_special - q_len
        if room < 2:
            raise UsageError(f"max_length {max_length} leaves no room for the context")
        groups[min(doc_stride, room - 1)].append(i)
    if len(groups) > 1 or (groups and next(iter(groups)) < doc_stride):
        log.warning("doc_stride %d reduced to %s for long questions", doc_stride, sorted(groups))

    per_example: dict[int, list[dict]] = {}
    for stride, idx in groups.items():
        enc = tok(
            [questions[i] for i in idx],
            [examples[i].context for i in idx],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        mapping = enc["overflow_to_sample_mapping"]
        for f in range(len(enc["input_ids"])):
            ex_index = idx[mapping[f]]
            ex = examples[ex_index]
            seq = enc.sequence_ids(f)
            offsets = [
                _trimmed(ex.context, s, e) if seq[t] == 1 else None
                for t, (s, e) in enumerate(enc["offset_mapping"][f])
            ]
            start_pos = end_pos = 0
            if ex.answers:
                start_char, text = ex.answers[0]
                found = _answer_tokens(offsets, start_char, start_char + len(text))
                if found is not None:
                    start_pos, end_pos = found
            per_example.setdefault(ex_index, []).append(
                {
                    **_encodings(enc, f, keys),
                    "start_positions": start_pos,
                    "end_positions": end_pos,
                    "example_index": ex_index,
                    "offset_mapping": offsets,
                }
            )
    return [feat for i in range(len(examples)) for feat in per_example.get(i, [])]


def postprocess_spans(
    examples: list[SpanExample],
    features: list[dict],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Best answer text per example uid, over all of its windows.

    For each feature, the ``n_best`` highest start and end logits are paired; a pair is valid
    when both tokens are context tokens, end >= start and it spans at most
    ``max_answer_length`` tokens; the highest ``start + end`` logit over every window wins.
    Rows of the logit arrays may be longer than a feature (padding): only its tokens count.
    An example with no valid span predicts ``""``.
    """
    if len(start_logits) != len(features) or len(end_logits) != len(features):
        raise UsageError(
            f"{len(features)} features but {len(start_logits)}/{len(end_logits)} logit rows"
        )
    best: dict[int, tuple[float, int, int]] = {}
    for f, feat in enumerate(features):
        offsets = feat["offset_mapping"]
        n = len(offsets)
        s_log = np.asarray(start_logits[f], dtype=np.float64)[:n]
        e_log = np.asarray(end_logits[f], dtype=np.float64)[:n]
        starts = np.argsort(-s_log, kind="stable")[:n_best]
        ends = np.argsort(-e_log, kind="stable")[:n_best]
        ex = feat["example_index"]
        for s in starts:
            if offsets[s] is None:
                continue
            for e in ends:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(s_log[s] + e_log[e])
                if ex not in best or score > best[ex][0]:
                    best[ex] = (score, offsets[s][0], offsets[e][1])
    out = {}
    for i, ex in enumerate(examples):
        hit = best.get(i)
        out[ex.uid] = ex.context[hit[1] : hit[2]] if hit else ""
    return out


# --------------------------------------------------------------------------- tagging


def _tagging(examples: list[TaggingExample], tok: Any, max_length: int) -> list[dict]:
    _require_fast(tok, "tagging featurization")
    keys = _model_keys(tok)
    enc = tok(
        [list(ex.tokens) for ex in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    out = []
    for i, ex in enumerate(examples):
        labels = []
        previous = None
        for word in enc.word_ids(i):
            labels.append(ex.tags[word] if word is not None and word != previous else IGNORE_INDEX)
            previous = word
        out.append({**_encodings(enc, i, keys), "labels": labels})
    return out


# --------------------------------------------------------------------------- batching


def collate(features: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch of features to its longest sequence and stack it into tensors.

    ``input_ids`` pad with ``pad_token_id``, masks and segment ids with 0, tagging labels with
    -100; multiple-choice features become ``(batch, choices, length)``. ``example_index`` and
    ``offset_mapping`` (post-processing only) are dropped.
    """
    if not features:
        raise UsageError("cannot collate an empty batch")
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        if key in _DROP_IN_COLLATE:
            continue
        values = [f[key] for f in features]
        if key in _SEQUENCE_KEYS or (key == "labels" and isinstance(values[0], list)):
            pad = pad_token_id if key == "input_ids" else IGNORE_INDEX if key == "labels" else 0
            out[key] = torch.tensor(_pad(values, pad), dtype=torch.long)
        else:
            out[key] = torch.tensor(values, dtype=torch.long)
    return out


def _pad(values: list, pad: int) -> list:
    """Right-pad lists (or lists of lists, for multiple choice) to one length."""
    if values and values[0] and isinstance(values[0][0], list):
        width = max(len(seq) for choices in values for seq in choices)
        return [[seq + [pad] * (width - len(seq)) for seq in choices] for choices in values]
    width = max(len(seq) for seq in values)
    return [seq + [pad] * (width - len(seq)) for seq in values]


def feature_length(feature: dict) -> int:
    """Tokens in a feature (its longest choice for multiple choice; a pair item's own length):
    what batching groups by."""
    if "length" in feature:
        return int(feature["length"])
    ids = feature["input_ids"]
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a collated batch to ``device``."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
