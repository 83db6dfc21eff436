"""Intermediate-task metrics: hand-checked values, SQuAD v1.1 and MLQA-style normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.errors import UsageError
from xstilts.intermediate import SpanExample, get_intermediate_task
from xstilts.train.task_metrics import (
    accuracy,
    bio_entity_f1,
    compute_task_metrics,
    exact_match,
    macro_f1,
    normalize_answer,
    squad_scores,
    tagging_accuracy,
    token_f1,
)


def test_accuracy_and_macro_f1_by_hand() -> None:
    pred, gold = [0, 1, 1, 2], [0, 1, 2, 2]
    assert accuracy(pred, gold) == 0.75
    # class 0: F1 1; class 1: P 1/2 R 1 -> 2/3; class 2: P 1 R 1/2 -> 2/3
    assert macro_f1(pred, gold) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert macro_f1([0, 0], [0, 0], labels=[0, 1]) == 0.5  # a listed class never seen scores 0
    assert accuracy(np.array([1, 2]), np.array([1, 1])) == 0.5
    with pytest.raises(UsageError, match="2 predictions for 3"):
        accuracy([0, 1], [0, 1, 2])


def test_tagging_accuracy_ignores_padding_labels() -> None:
    assert tagging_accuracy([[5, 1, 2], [3, 9]], [[-100, 1, 0], [3, -100]]) == pytest.approx(2 / 3)
    assert tagging_accuracy([1, 2, 3], [1, -100, 0]) == 0.5
    with pytest.raises(UsageError, match="no scorable"):
        tagging_accuracy([1], [-100])


def test_bio_entity_f1() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    assert bio_entity_f1(gold, gold) == 1.0
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"]]  # PER boundary wrong
    assert bio_entity_f1(pred, gold) == pytest.approx(2 * 2 / (3 + 3))
    # a stray I- opens an entity (conlleval)
    assert bio_entity_f1([["I-LOC", "I-LOC"]], [["B-LOC", "I-LOC"]]) == 1.0


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("The Cat, sat!", "en", "cat sat"),  # official SQuAD v1.1
        ("«Paris»", "en", "«paris»"),  # SQuAD strips ASCII punctuation only
        ("«Paris»", "fr", "paris"),  # MLQA: every Unicode punctuation mark
        ("Der Hund", "de", "hund"),  # MLQA's German articles
        ("Der Hund", "en", "der hund"),
        ("los perros", "es", "perros"),
        ("北京大学。", "zh", "北 京 大 学"),  # CJK: one token per character
        ("東京タワー", "ja", "東 京 タ ワ ー"),
        ("กรุงเทพ", "th", "ก ร ุ ง เ ท พ"),
        ("iPhone 11 от Apple", "ru", "iphone 11 от apple"),
        ("2019年 Apple 发布", "zh", "2019 年 apple 发 布"),
    ],
)
def test_normalize_answer(text: str, lang: str, expected: str) -> None:
    assert normalize_answer(text, lang) == expected


def test_squad_token_f1_and_exact_match() -> None:
    # official SQuAD v1.1 example arithmetic: 2 common tokens of 3 predicted / 2 gold
    assert token_f1("the Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert exact_match("The Denver Broncos.", "denver broncos") == 1.0
    # whitespace tokens make Chinese all-or-nothing; character tokens give partial credit
    assert token_f1("北京大学", "北京", "zh", normalization="squad") == 0.0
    assert token_f1("北京大学", "北京", "zh") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_squad_scores_max_over_gold_answers() -> None:
    examples = [
        SpanExample("en:1", "en", "q", "ctx", ((0, "Denver Broncos"), (0, "the Broncos"))),
        SpanExample("zh:2", "zh", "q", "ctx", ((0, "北京"),)),
        SpanExample("en:3", "en", "q", "ctx", ((0, "x"),)),  # no prediction: 0
        SpanExample("de:4", "de", "q", "ctx", ()),  # no gold (hidden): not scored
    ]
    preds = {"en:1": "Broncos", "zh:2": "北京市", "de:4": "whatever"}
    scores = squad_scores(preds, examples)
    # en:1 matches "the Broncos" exactly once the article is dropped; zh:2 shares 2 of 3
    # characters (P 2/3, R 1 -> F1 0.8); en:3 has no prediction
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)
    with pytest.raises(UsageError, match="no examples with gold"):
        squad_scores({}, examples[3:])


def test_compute_task_metrics_main_per_kind() -> None:
    nli = compute_task_metrics(get_intermediate_task("xnli"), [0, 1, 2, 2], [0, 1, 2, 1])
    assert nli["main"] == nli["accuracy"] == 0.75 and "macro_f1" in nli
    mc = compute_task_metrics(get_intermediate_task("hellaswag"), [3, 0], [3, 1])
    assert mc == {"accuracy": 0.5, "main": 0.5}
    with pytest.raises(UsageError, match="unlabelled"):
        compute_task_metrics(get_intermediate_task("hellaswag"), [3, 0], [3, -100])
    ex = [SpanExample("en:1", "en", "q", "Paris is nice.", ((0, "Paris"),))]
    span = compute_task_metrics(get_intermediate_task("squad"), {"en:1": "Paris"}, ex)
    assert span == {"exact_match": 1.0, "f1": 1.0, "main": 1.0}
    ccg = compute_task_metrics(get_intermediate_task("ccg"), [1, 2, 3], [1, 2, 0])
    assert ccg["main"] == pytest.approx(2 / 3)
    ner = get_intermediate_task("xglue-ner")
    b_per, i_per, o = (ner.labels.index(t) for t in ("B-PER", "I-PER", "O"))
    got = compute_task_metrics(ner, [[b_per, i_per, o]], [[b_per, i_per, -100]])
    assert got["main"] == got["entity_f1"] == 1.0 and got["accuracy"] == 1.0
