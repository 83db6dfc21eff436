"""Featurization with the real XLM-R tokenizer (builtin tiny model): span windows and offsets,
multiple-choice shapes, tagging alignment, padding, and span post-processing."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xstilts.errors import UsageError
from xstilts.intermediate import (
    UNLABELLED,
    ChoiceExample,
    SpanExample,
    TextExample,
    get_intermediate_task,
)
from xstilts.train.features import IGNORE_INDEX, collate, featurize, postprocess_spans
from xstilts.train.task_metrics import squad_scores

MAX_LEN, STRIDE = 96, 32


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The real XLM-R SentencePiece tokenizer (fast), from the builtin tiny random model."""
    from xstilts.models import load_model

    tok = load_model("builtin:tiny-random-xlmr").tokenizer
    assert tok.is_fast
    return tok


# --------------------------------------------------------------------------- spans

# English SQuAD-style data, XQuAD (XQuAD-R copy: answers present) in non-Latin scripts, and
# the labelled TyDiQA-GoldP rows here (en; ko = Hangul). XTREME's TyDiQA dev and XQuAD copies
# have their answers blanked, so they cannot be used to check offsets.
SPAN_DATA = [
    ("xquad", "test", ["en"]),
    ("tydiqa", "train", ["en"]),
    ("xquad", "test", ["zh"]),
    ("xquad", "test", ["de"]),
    ("xquad", "test", ["ar", "ru", "hi", "th", "el"]),
    ("tydiqa", "train", ["ko"]),
]


@pytest.fixture(scope="module")
def span_sets(data_dir: Path, tokenizer: Any) -> dict[str, tuple[list[SpanExample], list[dict]]]:
    out = {}
    for name, split, langs in SPAN_DATA:
        task = get_intermediate_task(name)
        examples = task.load(data_dir, split, langs, max_examples=60, seed=3).examples
        feats = featurize(task, examples, tokenizer, max_length=MAX_LEN, doc_stride=STRIDE)
        out[f"{name}-{'+'.join(langs)}"] = (examples, feats)
    return out


SPAN_IDS = [f"{n}-{'+'.join(langs)}" for n, _, langs in SPAN_DATA]


@pytest.mark.parametrize("key", SPAN_IDS)
def test_span_offsets_map_back_to_the_answer(span_sets: dict, key: str) -> None:
    examples, feats = span_sets[key]
    found: set[int] = set()
    exact = aligned = 0
    for f in feats:
        assert len(f["input_ids"]) <= MAX_LEN
        assert len(f["offset_mapping"]) == len(f["input_ids"]) == len(f["attention_mask"])
        assert f["offset_mapping"][0] is None  # CLS
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            assert e == 0
            continue
        ex = examples[f["example_index"]]
        a_start, gold = ex.answers[0]
        a_end = a_start + len(gold)
        (s0, s1), (e0, e1) = f["offset_mapping"][s], f["offset_mapping"][e]
        decoded = ex.context[s0:e1]
        assert s <= e
        assert s0 <= a_start and e1 >= a_end, (decoded, gold)  # covers the answer ...
        assert s1 > a_start and e0 < a_end, (decoded, gold)  # ... with no token to spare
        token_starts = {o[0] for o in f["offset_mapping"] if o}
        token_ends = {o[1] for o in f["offset_mapping"] if o}
        if a_start in token_starts and a_end in token_ends:
            aligned += 1
            assert decoded == gold
        exact += decoded == gold
        found.add(f["example_index"])
    # every answer short enough for a window is inside at least one window
    assert len(found) >= len(examples) - 2
    assert exact >= 0.8 * aligned > 0


@pytest.mark.parametrize("key", SPAN_IDS)
def test_long_contexts_give_overlapping_windows(span_sets: dict, key: str) -> None:
    examples, feats = span_sets[key]
    windows: dict[int, list[dict]] = defaultdict(list)
    for f in feats:
        windows[f["example_index"]].append(f)
    assert sorted(windows) == list(range(len(examples)))  # features stay in example order
    assert max(len(w) for w in windows.values()) >= 3
    for ws in windows.values():
        for prev, nxt in itertools.pairwise(ws):
            prev_ctx = [o for o in prev["offset_mapping"] if o]
            next_ctx = [o for o in nxt["offset_mapping"] if o]
            assert next_ctx[0][0] < prev_ctx[-1][1]  # overlap by the stride
            assert next_ctx[0][0] > prev_ctx[0][0]  # and move forward


@pytest.mark.parametrize("key", SPAN_IDS)
def test_postprocess_with_gold_logits_returns_gold_text(span_sets: dict, key: str) -> None:
    examples, feats = span_sets[key]
    width = MAX_LEN + 7  # padded logit rows are fine
    starts = np.zeros((len(feats), width), np.float32)
    ends = np.zeros((len(feats), width), np.float32)
    for i, f in enumerate(feats):
        starts[i, f["start_positions"]] = 10.0
        ends[i, f["end_positions"]] = 10.0
    preds = postprocess_spans(examples, feats, starts, ends, max_answer_length=MAX_LEN)
    assert set(preds) == {ex.uid for ex in examples}
    for i, ex in enumerate(examples):
        hits = [f for f in feats if f["example_index"] == i and f["start_positions"]]
        if hits:
            f = hits[0]
            o = f["offset_mapping"]
            assert (
                preds[ex.uid] == ex.context[o[f["start_positions"]][0] : o[f["end_positions"]][1]]
            )
            assert ex.answers[0][1] in preds[ex.uid]
    scores = squad_scores(preds, examples)
    assert scores["f1"] >= 0.9, scores


def test_postprocess_respects_validity_rules(tokenizer: Any) -> None:
    task = get_intermediate_task("squad")
    ex = SpanExample(
        "en:1", "en", "Which city?", "Paris is the capital of France.", ((0, "Paris"),)
    )
    feats = featurize(task, [ex], tokenizer, max_length=64, doc_stride=16)
    assert len(feats) == 1
    f = feats[0]
    n = len(f["input_ids"])
    starts = np.full((1, n), -100.0)
    ends = np.full((1, n), -100.0)
    starts[0, 0] = ends[0, 0] = 100.0  # CLS is not a context token: never an answer
    starts[0, f["start_positions"]] = 5.0
    ends[0, f["end_positions"]] = 5.0
    assert postprocess_spans([ex], feats, starts, ends) == {"en:1": "Paris"}
    last = max(i for i, o in enumerate(f["offset_mapping"]) if o)
    ends[0, last] = 50.0  # a longer span than allowed loses
    got = postprocess_spans([ex], feats, starts, ends, max_answer_length=2)
    assert got == {"en:1": "Paris"}
    assert postprocess_spans([ex], feats, starts, ends) == {"en:1": ex.context}
    with pytest.raises(UsageError, match="logit rows"):
        postprocess_spans([ex], feats, starts[:0], ends)


def test_span_default_lengths_shrink_stride_and_truncate_questions(tokenizer: Any) -> None:
    """max_length 128 with doc_stride 128 (the defaults) cannot overlap by 128 tokens."""
    task = get_intermediate_task("squad")
    context = " ".join(f"Sentence number {i} says nothing." for i in range(60)) + " Answer: 42."
    question = "What is the answer " + "really " * 200 + "?"
    ex = SpanExample("en:q", "en", question, context, ((context.index("42"), "42"),))
    feats = featurize(task, [ex], tokenizer)
    assert len(feats) > 1 and all(len(f["input_ids"]) <= 128 for f in feats)
    hit = [f for f in feats if f["start_positions"]]
    assert hit and context[hit[0]["offset_mapping"][hit[0]["start_positions"]][0] :].startswith(
        "42"
    )


def test_span_and_tagging_need_a_fast_tokenizer() -> None:
    class Slow:
        is_fast = False

    ex = SpanExample("en:1", "en", "Q?", "Context.", ((0, "Context"),))
    with pytest.raises(UsageError, match="fast"):
        featurize(get_intermediate_task("squad"), [ex], Slow())


# --------------------------------------------------------------------------- classification / MC


def test_classification_features(data_dir: Path, tokenizer: Any) -> None:
    sst2 = get_intermediate_task("sst2")
    single = featurize(sst2, sst2.load(data_dir, "dev", max_examples=20).examples, tokenizer)
    assert all(set(f) == {"input_ids", "attention_mask", "labels"} for f in single)
    assert all(f["input_ids"].count(tokenizer.sep_token_id) == 1 for f in single)
    xnli = get_intermediate_task("xnli")
    examples = xnli.load(data_dir, "dev", ["th", "ru"], max_examples=20).examples
    pairs = featurize(xnli, examples, tokenizer, max_length=24, labels=xnli.labels)
    for f, ex in zip(pairs, examples, strict=True):
        assert len(f["input_ids"]) <= 24 and f["labels"] == ex.label
        assert f["input_ids"].count(tokenizer.sep_token_id) == 3  # <s> a </s></s> b </s>
    unlabelled = TextExample("en:x", "en", "a", "b", UNLABELLED)
    assert featurize(xnli, [unlabelled], tokenizer)[0]["labels"] == IGNORE_INDEX
    with pytest.raises(UsageError, match="outside the head's 2 labels"):
        featurize(xnli, examples, tokenizer, labels=("a", "b"))


def test_multiple_choice_shapes(data_dir: Path, tokenizer: Any) -> None:
    for name, n in (("hellaswag", 4), ("commonsenseqa", 5), ("siqa", 3), ("xcopa", 2)):
        task = get_intermediate_task(name)
        examples = task.load(data_dir, "dev", max_examples=6).examples
        feats = featurize(task, examples, tokenizer, max_length=48)
        for f, ex in zip(feats, examples, strict=True):
            assert len(f["input_ids"]) == len(f["attention_mask"]) == n
            assert all(len(ids) <= 48 for ids in f["input_ids"])
            assert f["labels"] == ex.label
            # the choice is the second segment, kept whole when it fits (context cut first)
            choice = ex.choices[ex.label].strip()
            if len(tokenizer(choice)["input_ids"]) < 24:
                tail = tokenizer.decode(f["input_ids"][ex.label], skip_special_tokens=True)
                assert tail.endswith(choice[-8:])
        batch = collate(feats, tokenizer.pad_token_id)
        assert batch["input_ids"].shape[:2] == (len(examples), n)
        assert batch["labels"].tolist() == [ex.label for ex in examples]


def test_multiple_choice_overlong_choice_falls_back(tokenizer: Any) -> None:
    task = get_intermediate_task("xcopa")
    ex = ChoiceExample("en:1", "en", "Premise.", ("short", "very long " * 40), 0)
    f = featurize(task, [ex], tokenizer, max_length=16)[0]
    assert [len(x) <= 16 for x in f["input_ids"]] == [True, True]
    with pytest.raises(UsageError, match="choices"):
        featurize(task, [ChoiceExample("en:2", "en", "P.", ("a", "b", "c"), 0)], tokenizer)


# --------------------------------------------------------------------------- tagging

CCG = """Pierre\tN/N
Vinken\tN
,\t,
61\tN/N
years\tN
old\t(S[adj]\\NP)\\NP
Elsevier\tN
Naamloze\tN/N
Vennootschap\tN
.\t.
"""


def test_tagging_labels_on_first_subtoken(tmp_path: Path, tokenizer: Any) -> None:
    (tmp_path / "ccg").mkdir()
    (tmp_path / "ccg" / "train.tsv").write_text(CCG, encoding="utf-8")
    task = get_intermediate_task("ccg")
    loaded = task.load(tmp_path, "train")
    ex = loaded.examples[0]
    f = featurize(task, [ex], tokenizer, labels=loaded.labels)[0]
    enc = tokenizer([list(ex.tokens)], is_split_into_words=True)
    word_ids = enc.word_ids(0)
    assert len(f["labels"]) == len(f["input_ids"]) == len(word_ids)
    assert f["labels"][0] == f["labels"][-1] == IGNORE_INDEX  # <s>, </s>
    labelled = [(w, lab) for w, lab in zip(word_ids, f["labels"], strict=True) if lab != -100]
    assert [w for w, _ in labelled] == list(range(len(ex.tokens)))  # one label per word
    assert [lab for _, lab in labelled] == list(ex.tags)
    assert len(word_ids) - 2 > len(ex.tokens)  # some words split: later pieces are ignored
    short = featurize(task, [ex], tokenizer, max_length=8)[0]
    assert len(short["input_ids"]) == 8
    assert sum(lab != IGNORE_INDEX for lab in short["labels"]) < len(ex.tokens)


# --------------------------------------------------------------------------- collate


def test_collate_pads_and_drops_postprocessing_keys(tokenizer: Any) -> None:
    pad = tokenizer.pad_token_id
    tagging = [
        {"input_ids": [0, 5, 2], "attention_mask": [1, 1, 1], "labels": [-100, 3, -100]},
        {"input_ids": [0, 5, 6, 7, 2], "attention_mask": [1] * 5, "labels": [-100, 1, 2, 0, -100]},
    ]
    batch = collate(tagging, pad)
    assert batch["input_ids"].tolist()[0] == [0, 5, 2, pad, pad]
    assert batch["attention_mask"].tolist()[0] == [1, 1, 1, 0, 0]
    assert batch["labels"].tolist()[0] == [-100, 3, -100, -100, -100]
    span = [
        {"input_ids": [0, 9, 2], "attention_mask": [1, 1, 1], "start_positions": 1,
         "end_positions": 1, "example_index": 0, "offset_mapping": [None, (0, 3), None]},
        {"input_ids": [0, 2], "attention_mask": [1, 1], "start_positions": 0,
         "end_positions": 0, "example_index": 0, "offset_mapping": [None, None]},
    ]  # fmt: skip
    batch = collate(span, pad)
    assert set(batch) == {"input_ids", "attention_mask", "start_positions", "end_positions"}
    assert batch["input_ids"].shape == (2, 3) and batch["start_positions"].tolist() == [1, 0]
    mc = [
        {"input_ids": [[0, 1], [0, 1, 2]], "attention_mask": [[1, 1], [1, 1, 1]], "labels": 1},
        {"input_ids": [[0], [0, 1, 2, 3]], "attention_mask": [[1], [1, 1, 1, 1]], "labels": 0},
    ]
    batch = collate(mc, pad)
    assert batch["input_ids"].shape == (2, 2, 4)
    assert batch["attention_mask"][1, 0].tolist() == [1, 0, 0, 0]
    with pytest.raises(UsageError):
        collate([], pad)


def test_features_built_as_drawn_equal_featurizing_everything(data_dir, tokenizer):
    """Lazy features (the training default) are the eager ones, built once each, a batch per
    tokenizer call; bad labels are refused on the examples, before anything is built."""
    from xstilts.train.features import Features, check_examples

    xnli = get_intermediate_task("xnli")
    examples = xnli.load(data_dir, "dev", ["de", "en"], max_examples=300).examples
    eager = featurize(xnli, examples, tokenizer, max_length=24, labels=xnli.labels)
    calls: list[int] = []

    def build(exs: list) -> list[dict]:
        calls.append(len(exs))
        return featurize(xnli, exs, tokenizer, max_length=24, labels=xnli.labels)

    lazy = Features(examples, build)
    assert len(lazy) == len(examples) and lazy.n_built == 0
    picked = [250, 3, 3, 17]
    assert lazy.take(picked) == [eager[i] for i in picked]
    assert calls == [3] and lazy.n_built == 3  # the duplicate built once
    assert lazy[17] == eager[17] and calls == [3]  # cached: no new call
    assert lazy[-1] == eager[-1] and list(lazy) == eager
    assert lazy.lengths(np.array([3, 250])).tolist() == [
        len(eager[3]["input_ids"]),
        len(eager[250]["input_ids"]),
    ]
    with pytest.raises(UsageError, match="label index 2 outside the head's 2 labels"):
        check_examples(xnli, examples, ("a", "b"))
