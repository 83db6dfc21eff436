"""Intermediate-task registry and loaders: real files in ../shared/data and small fixtures.

Row counts are those of ../shared/data/README.md (and, where it gives none, what the files
hold: XQuAD-R 1190 per language, SIQA 1954/2224, XCOPA 100/500 per language, 400 train).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.intermediate import (
    INTERMEDIATE_TASKS,
    NLI_LABELS,
    UNK_TAG,
    UNLABELLED,
    ChoiceExample,
    SpanExample,
    TaggingExample,
    TextExample,
    get_intermediate_task,
    parse_task_list,
)

XNLI_LANGS = (
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
)
PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
XCOPA_LANGS = ("en", "et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
XQUAD_R_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


def write(root: Path, rel: str, text: str | bytes) -> Path:
    """Write a fixture file under ``root`` (the data directory of a test)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def one_line_error(exc: pytest.ExceptionInfo, path: Path, line: int) -> str:
    """Assert the error is one line that starts with ``path:line:``; return it."""
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}: "), msg
    return msg


# --------------------------------------------------------------------------- real data

# (task, split, langs, rows per language, labelled)
REAL_COUNTS = [
    ("mnli", "train", None, {"en": 8999}, True),
    ("mnli", "dev", None, {"en": 1000}, True),
    ("qqp", "train", None, {"en": 8999}, True),
    ("qqp", "dev", None, {"en": 1000}, True),
    ("sst2", "dev", None, {"en": 872}, True),
    ("sst2", "test", None, {"en": 1821}, True),
    ("anli-r1", "dev", None, {"en": 1000}, True),
    ("anli-r1", "test", None, {"en": 1000}, True),
    ("anli-r2", "dev", None, {"en": 1000}, True),
    ("anli-r2", "test", None, {"en": 1000}, True),
    ("anli-r3", "dev", None, {"en": 1200}, True),
    ("anli-r3", "test", None, {"en": 1200}, True),
    ("anli", "dev", None, {"en": 3200}, True),
    ("hellaswag", "dev", None, {"en": 10042}, True),
    ("cosmosqa", "dev", None, {"en": 2985}, True),
    ("commonsenseqa", "dev", None, {"en": 1221}, True),
    ("siqa", "dev", None, {"en": 1954}, True),
    ("siqa", "test", None, {"en": 2224}, True),
    ("xcopa", "train", None, {"en": 400}, True),
    ("xcopa", "dev", None, dict.fromkeys(XCOPA_LANGS, 100), True),
    ("xcopa", "test", None, dict.fromkeys(XCOPA_LANGS, 500), False),
    ("xnli", "dev", None, dict.fromkeys(XNLI_LANGS, 2490), True),
    ("xnli", "test", None, dict.fromkeys(XNLI_LANGS, 5010), False),
    ("pawsx", "dev", None, dict.fromkeys(PAWSX_LANGS, 2000), True),
    ("pawsx", "test", None, dict.fromkeys(PAWSX_LANGS, 2000), False),
    ("tydiqa", "train", ["en", "ko", "sw"], {"en": 3696, "ko": 1625, "sw": 2755}, True),
    (
        "tydiqa",
        "dev",
        ["all"],
        {
            "ar": 921,
            "bn": 113,
            "en": 440,
            "fi": 782,
            "id": 565,
            "ko": 276,
            "ru": 812,
            "sw": 499,
            "te": 669,
        },
        False,  # XTREME's copy: answers blanked
    ),
    ("xquad", "test", ["available"], dict.fromkeys(XQUAD_R_LANGS, 1190), True),
]


@pytest.mark.parametrize(
    ("name", "split", "langs", "counts", "labelled"),
    REAL_COUNTS,
    ids=[f"{t}-{s}" for t, s, *_ in REAL_COUNTS],
)
def test_real_row_counts(
    data_dir: Path,
    name: str,
    split: str,
    langs: list[str] | None,
    counts: dict[str, int],
    labelled: bool,
) -> None:
    loaded = get_intermediate_task(name).load(data_dir, split, langs)
    assert dict(Counter(ex.lang for ex in loaded.examples)) == counts
    assert loaded.n_skipped == 0
    assert loaded.has_labels is labelled
    assert len({ex.uid for ex in loaded.examples}) == len(loaded.examples), "uids must be unique"
    assert all(p.is_file() for p in loaded.files)


def test_sst2_full_train_loads_fast(data_dir: Path) -> None:
    start = time.perf_counter()
    loaded = get_intermediate_task("sst2").load(data_dir, "train")
    elapsed = time.perf_counter() - start
    assert len(loaded.examples) == 67349
    assert loaded.files == [data_dir / "sst2" / "train_full.tsv"]
    assert elapsed < 3.0, f"67k SST-2 rows took {elapsed:.2f}s"
    assert loaded.labels == ("negative", "positive")
    first = loaded.examples[0]
    assert first.text_a.startswith("hide new secretions") and first.label == 0
    assert first.text_b is None


def test_nli_labels_are_shared_and_mapped(data_dir: Path) -> None:
    mnli = get_intermediate_task("mnli").load(data_dir, "dev")
    first = mnli.examples[0]
    assert (first.text_a, first.text_b) == (
        "Salt kept the town fed.",
        "Salt kept the town thriving.",
    )
    assert mnli.labels == NLI_LABELS and first.label == NLI_LABELS.index("entailment")
    anli = get_intermediate_task("anli-r1").load(data_dir, "dev")
    assert anli.examples[0].label == NLI_LABELS.index("contradiction")  # "c" in the file
    assert anli.examples[0].uid == "en:bf628cf5-6948-4595-a6d0-daf99beb47b9"
    xnli = get_intermediate_task("xnli").load(data_dir, "dev", ["de"])
    assert Counter(ex.label for ex in xnli.examples) == {0: 830, 1: 830, 2: 830}
    assert xnli.examples[0].label == NLI_LABELS.index("neutral")


def test_translate_train_rows_are_aligned_across_languages(data_dir: Path) -> None:
    """XNLI rows are parallel: row i has the same label in every language."""
    loaded = get_intermediate_task("xnli").load(data_dir, "dev", ["en", "fr", "zh"])
    by_lang: dict[str, list[int]] = {}
    for ex in loaded.examples:
        by_lang.setdefault(ex.lang, []).append(ex.label)
    assert by_lang["en"] == by_lang["fr"] == by_lang["zh"]
    assert [ex.lang for ex in loaded.examples[:1]] == ["en"]  # language order as requested


def test_multiple_choice_contents(data_dir: Path) -> None:
    hs = get_intermediate_task("hellaswag").load(data_dir, "dev").examples[0]
    assert hs.context == "Roof shingle removal: A man is sitting on a roof. he"
    assert hs.choices[3] == "starts pulling up roofing on a roof." and hs.label == 3
    csqa = get_intermediate_task("commonsenseqa").load(data_dir, "dev").examples[0]
    assert csqa.choices == ("bank", "library", "department store", "mall", "new york")
    assert csqa.label == 0
    siqa = get_intermediate_task("siqa").load(data_dir, "dev").examples[0]
    assert siqa.label == 2 and len(siqa.choices) == 3
    assert siqa.context.endswith("What does Tracy need to do before this?")
    cosmos = get_intermediate_task("cosmosqa").load(data_dir, "dev")
    assert Counter(ex.label for ex in cosmos.examples) == {0: 744, 1: 729, 2: 761, 3: 751}
    assert all(len(ex.choices) == 4 for ex in cosmos.examples)
    xcopa = get_intermediate_task("xcopa").load(data_dir, "dev", ["zh"]).examples[0]
    assert xcopa.context == "那人打开水龙头。 What happened as a result?"
    assert xcopa.choices == ("厕所里满是水。", "水从水龙头喷口流出。") and xcopa.label == 1
    hidden = get_intermediate_task("xcopa").load(data_dir, "test", ["et"])
    assert {ex.label for ex in hidden.examples} == {UNLABELLED}


def test_span_examples_are_checked_against_context(data_dir: Path) -> None:
    loaded = get_intermediate_task("xquad").load(data_dir, "test", ["zh", "th"])
    for ex in loaded.examples:
        assert ex.answers
        for start, text in ex.answers:
            assert ex.context[start : start + len(text)] == text
    # TyDiQA-GoldP train ids are "0", "1", ... per paragraph: uids are made unique
    tydi = get_intermediate_task("tydiqa").load(data_dir, "train", ["en"])
    assert len({ex.uid for ex in tydi.examples}) == 3696


def test_xtreme_xquad_copy_without_answers_is_unlabelled(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "xquad").symlink_to(data_dir / "xquad")
    loaded = get_intermediate_task("xquad").load(tmp_path, "test", ["de"])
    assert len(loaded.examples) == 1190
    assert not loaded.has_labels and all(ex.answers == () for ex in loaded.examples)


def test_available_reports_splits_and_languages(data_dir: Path) -> None:
    assert get_intermediate_task("hellaswag").available(data_dir) == {"dev": ("en",)}
    assert get_intermediate_task("squad").available(data_dir) == {}
    xcopa = get_intermediate_task("xcopa").available(data_dir)
    assert xcopa["train"] == ("en",) and xcopa["dev"] == XCOPA_LANGS


# --------------------------------------------------------------------------- missing data / misuse


@pytest.mark.parametrize(
    ("name", "split", "expected"),
    [
        ("squad", "train", "squad/train-v1.1.json"),
        ("mnli", "dev_mismatched", "mnli/dev_mismatched.tsv"),
        ("hellaswag", "train", "hellaswag/hellaswag_train.jsonl"),
        ("ccg", "train", "ccg/train.tsv"),
        ("xglue-nc", "train", "xglue/NC/xglue.nc.en.train"),
    ],
)
def test_missing_split_names_expected_file_and_source(
    data_dir: Path, name: str, split: str, expected: str
) -> None:
    task = get_intermediate_task(name)
    with pytest.raises(DataError) as exc:
        task.load(data_dir, split)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(data_dir / expected) in msg
    assert task.download and task.download in msg


def test_dev_only_tasks_load_dev_split_by_alias(data_dir: Path) -> None:
    task = get_intermediate_task("hellaswag")
    assert (task.train_split, task.dev_split) == ("train", "dev")
    assert len(task.load(data_dir, "validation", max_examples=5).examples) == 5


def test_unknown_split_and_language(data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"no split 'tset'.*did you mean test"):
        get_intermediate_task("sst2").load(data_dir, "tset")
    with pytest.raises(DataError, match=r"no language 'dee'.*did you mean de"):
        get_intermediate_task("xnli").load(data_dir, "dev", ["dee"])
    with pytest.raises(DataError, match=r"xcopa train exists only for en, not 'et'"):
        get_intermediate_task("xcopa").load(data_dir, "train", ["et"])
    with pytest.raises(DataError, match=r"xquad test \[ro\]: no data file found"):
        get_intermediate_task("xquad").load(data_dir, "test", ["all"])


def test_max_examples_is_a_seeded_subset_in_file_order(data_dir: Path) -> None:
    task = get_intermediate_task("xnli")
    full = task.load(data_dir, "dev", ["en", "de"]).examples
    a = task.load(data_dir, "dev", ["en", "de"], max_examples=50, seed=1).examples
    b = task.load(data_dir, "dev", ["en", "de"], max_examples=50, seed=1).examples
    c = task.load(data_dir, "dev", ["en", "de"], max_examples=50, seed=2).examples
    assert a == b and a != c and len(a) == 50
    positions = [full.index(ex) for ex in a]
    assert positions == sorted(positions)


def test_unknown_task_suggests_closest() -> None:
    with pytest.raises(DataError, match=r"unknown intermediate task 'mnlii' \(did you mean mnli"):
        get_intermediate_task("mnlii")
    with pytest.raises(DataError, match=r"did you mean .*hellaswag"):
        parse_task_list("mnli,helaswag")


def test_task_lists_and_groups() -> None:
    english = parse_task_list("english-all")
    assert {t.name for t in english} == {
        "anli",
        "ccg",
        "commonsenseqa",
        "cosmosqa",
        "hellaswag",
        "mnli",
        "qqp",
        "squad",
        "sst2",
    }
    assert all(t.english for t in english)
    assert [t.name for t in parse_task_list("mnli, SQuAD,mnli,sst-2")] == ["mnli", "squad", "sst2"]
    with pytest.raises(DataError, match="no intermediate tasks"):
        parse_task_list(" , ")


def test_registry_metadata_is_consistent() -> None:
    required = {
        "mnli",
        "anli",
        "anli-r1",
        "anli-r2",
        "anli-r3",
        "qqp",
        "sst2",
        "xnli",
        "pawsx",
        "hellaswag",
        "cosmosqa",
        "commonsenseqa",
        "siqa",
        "xcopa",
        "squad",
        "xquad",
        "tydiqa",
        "ccg",
    }
    assert required <= set(INTERMEDIATE_TASKS)
    assert any(n.startswith("xglue-") for n in INTERMEDIATE_TASKS)
    for task in INTERMEDIATE_TASKS.values():
        assert set(task.default_langs) <= set(task.languages), task.name
        assert {task.train_split, task.dev_split} <= set(task.split_names()), task.name
        assert (task.kind == "multiple_choice") == (task.num_choices is not None), task.name
        assert task.kind != "classification" or task.labels, task.name
        assert task.english == (task.languages == ("en",)), task.name
        assert task.description and task.reference and task.download, task.name


def test_intermediate_imports_only_errors_io_and_paths():
    """The task catalogue sits low: no other xstilts module (nor torch) comes with it."""
    code = (
        "import sys, xstilts.intermediate; "
        "print(sorted(m for m in sys.modules if m.startswith(('xstilts.', 'torch')) "
        "and not m.startswith('xstilts.intermediate')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['xstilts.errors', 'xstilts.io', 'xstilts.paths']"


# --------------------------------------------------------------------------- bad rows


def test_tsv_bad_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sst2/dev.tsv",
        "sentence\tlabel\ngood film\t1\nno label here\n\nweird label\t7\nbad film\t0\n",
    )
    task = get_intermediate_task("sst2")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert one_line_error(exc, path, 3).endswith("missing label")
    path.write_text("sentence\tlabel\ngood film\t1\nweird label\t7\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    msg = one_line_error(exc, path, 3)
    assert "label '7' is not in the label set (valid: negative, positive)" in msg
    path.write_text("sentence\tlabel\ngood\t1\nno label\nweird\t7\ntab\tin\ttext\t1\nbad\t0\n")
    loaded = task.load(tmp_path, "dev", skip_bad_rows=True)
    assert [ex.label for ex in loaded.examples] == [1, 0] and loaded.n_skipped == 3


def test_jsonl_bad_rows(tmp_path: Path) -> None:
    good = {"uid": "a", "context": "P.", "hypothesis": "H.", "label": "e"}
    rows = [
        json.dumps(good),
        '{"uid": "b", "context": "P.", "hypothesis": ',  # malformed JSON
        json.dumps({**good, "uid": "c", "label": None}),
        json.dumps({**good, "uid": "d", "label": "x"}),
        json.dumps({**good, "uid": "e", "hypothesis": None}),
    ]
    path = write(tmp_path, "anli/R1/dev.jsonl", "\n".join(rows) + "\n")
    task = get_intermediate_task("anli-r1")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert "malformed JSON" in one_line_error(exc, path, 2)
    loaded = task.load(tmp_path, "dev", skip_bad_rows=True)
    assert [ex.uid for ex in loaded.examples] == ["en:a"] and loaded.n_skipped == 4
    path.write_text("\n".join([rows[0], rows[3]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert "valid: entailment, neutral, contradiction" in one_line_error(exc, path, 2)
    path.write_text("\n".join([rows[0], rows[4]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert one_line_error(exc, path, 2).endswith("missing field 'hypothesis'")


def test_json_records_report_the_record_line(tmp_path: Path) -> None:
    doc = {str(i): {"text_a": f"a{i}", "text_b": f"b{i}", "label": "neutral"} for i in range(3)}
    doc["2"]["label"] = "maybe"
    path = write(tmp_path, "mnli/glue_pretrain_dev.json", json.dumps(doc, indent=4))
    with pytest.raises(DataError) as exc:
        get_intermediate_task("mnli").load(tmp_path, "dev")
    assert "'maybe'" in one_line_error(exc, path, 12)  # the line of "2": {
    path.write_text('{\n  "0": {"text_a": "x",\n  }\n}', encoding="utf-8")
    with pytest.raises(DataError) as exc:
        get_intermediate_task("mnli").load(tmp_path, "dev", skip_bad_rows=True)
    assert "malformed JSON" in one_line_error(exc, path, 3)  # a broken document cannot be skipped


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sst2/dev.tsv", b"sentence\tlabel\nok\t1\nbad \xff byte\t0\n")
    with pytest.raises(DataError) as exc:
        get_intermediate_task("sst2").load(tmp_path, "dev")
    assert "invalid UTF-8" in one_line_error(exc, path, 3)


def test_multiple_choice_bad_rows(tmp_path: Path) -> None:
    def row(key: str | None, qid: str) -> str:
        rec = {
            "id": qid,
            "question": "Q?",
            "question_concept": "c",
            "choices": {"label": list("ABCDE"), "text": list("vwxyz")},
        }
        if key is not None:
            rec["answerKey"] = key
        return json.dumps(rec)

    path = write(
        tmp_path,
        "commonsenseqa/dev_rand_split.jsonl",
        "\n".join([row("B", "1"), row("F", "2"), row(None, "3"), "{oops"]) + "\n",
    )
    task = get_intermediate_task("commonsenseqa")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert "label 'F' is not in the label set (valid: A, B, C, D, E)" in one_line_error(
        exc, path, 2
    )
    loaded = task.load(tmp_path, "dev", skip_bad_rows=True)
    assert [ex.label for ex in loaded.examples] == [1] and loaded.n_skipped == 3

    text = "Act: ctx one\n2\na\nb\nc\nd\nAct: ctx two\n9\na\nb\nc\nd\nAct: cut\n1\na\n"
    path = write(tmp_path, "hellaswag/hellaswag_val_full.txt", text)
    with pytest.raises(DataError) as exc:
        get_intermediate_task("hellaswag").load(tmp_path, "dev")
    assert "label '9'" in one_line_error(exc, path, 7)
    loaded = get_intermediate_task("hellaswag").load(tmp_path, "dev", skip_bad_rows=True)
    assert len(loaded.examples) == 1 and loaded.n_skipped == 2  # bad label + incomplete item

    csv_text = (
        "id,context,question,answer0,answer1,answer2,answer3,label\n"
        'a,"A story,\nover two lines",Why?,w,x,y,z,2\n'
        "b,story,Why?,w,x,y,z,5\n"
    )
    path = write(tmp_path, "cosmosqa/valid.csv", csv_text)
    with pytest.raises(DataError) as exc:
        get_intermediate_task("cosmosqa").load(tmp_path, "dev")
    assert "label '5'" in one_line_error(exc, path, 4)  # the quoted newline counts


def _squad_doc(answers: list[dict], context: str = "Paris is the capital of France.") -> str:
    qas = [
        {"id": f"q{i}", "question": "Which city?", "answers": [a]} for i, a in enumerate(answers)
    ]
    doc = {
        "version": "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def test_span_answer_not_in_context(tmp_path: Path) -> None:
    answers = [
        {"text": "Paris", "answer_start": 0},
        {"text": "France", "answer_start": 3},
        {"text": "France", "answer_start": 24},
    ]
    path = write(tmp_path, "squad/dev-v1.1.json", _squad_doc(answers))
    task = get_intermediate_task("squad")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    text = path.read_text(encoding="utf-8")
    q1_line = text[: text.index('"id": "q1"')].count("\n") + 1
    msg = one_line_error(exc, path, q1_line)
    assert "answer 'France' not found at answer_start 3" in msg and "(found 'is is ')" in msg
    loaded = task.load(tmp_path, "dev", skip_bad_rows=True)
    assert loaded.n_skipped == 1
    assert [ex.answers for ex in loaded.examples] == [((0, "Paris"),), ((24, "France"),)]
    path.write_text('{"version": "1.1", "data": [\n{"title": "t",,}]}', encoding="utf-8")
    with pytest.raises(DataError) as exc:
        task.load(tmp_path, "dev")
    assert "malformed JSON" in one_line_error(exc, path, 2)


def test_span_non_latin_offsets_are_characters(tmp_path: Path) -> None:
    context = "東京は日本の首都です。Москва — столица России."
    answers = [{"text": t, "answer_start": context.index(t)} for t in ("日本", "России")]
    write(tmp_path, "squad/dev-v1.1.json", _squad_doc(answers, context))
    loaded = get_intermediate_task("squad").load(tmp_path, "dev")
    assert [ex.answers[0][1] for ex in loaded.examples] == ["日本", "России"]


# --------------------------------------------------------------------------- tagging (CCG)

CCG_TRAIN = """Pierre\tN/N
Vinken\tN
will\t(S[dcl]\\NP)/(S[b]\\NP)
join\t(S[b]\\NP)/NP
the\tNP[nb]/N
board\tN
.\t.

Mr.\tN/N
Vinken\tN
is\t(S[dcl]\\NP)/NP
chairman\tN
.\t.
"""
CCG_DEV = "Elsevier\tN\nis\t(S[dcl]\\NP)/NP\nDutch\tS[adj]\\NP\n.\t.\n"


def test_ccg_tags_derived_from_training_data(tmp_path: Path) -> None:
    write(tmp_path, "ccg/train.tsv", CCG_TRAIN)
    write(tmp_path, "ccg/dev.tsv", CCG_DEV)
    task = get_intermediate_task("ccg")
    train = task.load(tmp_path, "train")
    assert len(train.examples) == 2 and isinstance(train.examples[0], TaggingExample)
    assert train.labels[-1] == UNK_TAG and list(train.labels[:-1]) == sorted(train.labels[:-1])
    first = train.examples[0]
    assert first.tokens[:2] == ("Pierre", "Vinken")
    assert [train.labels[t] for t in first.tags][:3] == ["N/N", "N", "(S[dcl]\\NP)/(S[b]\\NP)"]
    dev = task.load(tmp_path, "dev", labels=train.labels)
    assert dev.labels == train.labels
    names = [train.labels[t] for t in dev.examples[0].tags]
    assert names == ["N", "(S[dcl]\\NP)/NP", UNK_TAG, "."]  # S[adj]\NP is unseen in train
    # without labels=, dev still indexes the training split's tag set
    assert task.load(tmp_path, "dev").examples == dev.examples
    # training on the dev rows alone (no train file): the set comes from dev
    (tmp_path / "ccg" / "train.tsv").unlink()
    alone = task.load(tmp_path, "dev")
    assert alone.labels == ("(S[dcl]\\NP)/NP", ".", "N", "S[adj]\\NP", UNK_TAG)


def test_tagging_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "ccg/train.tsv", "A\tN\nB\n\nC\tN\n")
    with pytest.raises(DataError) as exc:
        get_intermediate_task("ccg").load(tmp_path, "train")
    assert "missing tag for token 'B'" in one_line_error(exc, path, 2)
    loaded = get_intermediate_task("ccg").load(tmp_path, "train", skip_bad_rows=True)
    assert [ex.tokens for ex in loaded.examples] == [("C",)] and loaded.n_skipped == 1
    path = write(tmp_path, "xglue/NER/en.train", "EU B-ORG\nrejects O\nGerman B-NAT\n\n")
    with pytest.raises(DataError) as exc:
        get_intermediate_task("xglue-ner").load(tmp_path, "train")
    assert "label 'B-NAT' is not in the label set" in one_line_error(exc, path, 3)


# --------------------------------------------------------------------------- official formats

MNLI_GLUE = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    "0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tPremise one.\tHypo one.\t"
    "neutral\tneutral\n"
    "1\t101457\t101457e\ttelephone\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tPremise two.\tHypo two.\t"
    "entailment\tentailment\n"
)
XNLI_OFFICIAL = (
    "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tpromptID\tpairID\tgenre\tsentence1_tokenized\t"
    "sentence2_tokenized\tmatch\n"
    "de\tcontradiction\t\t\t\t\tDer Satz.\tEin anderer.\t1\t1\tfacetoface\tx\ty\tTrue\n"
    "en\tneutral\t\t\t\t\tThe sentence.\tAnother.\t1\t1\tfacetoface\tx\ty\tTrue\n"
    "de\tentailment\t\t\t\t\tNoch einer.\tJa.\t2\t2\tfacetoface\tx\ty\tTrue\n"
)
TYDI_OFFICIAL = json.dumps(
    {
        "version": "1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Helsinki on Suomen pääkaupunki.",
                        "qas": [
                            {
                                "id": "finnish-1-0",
                                "question": "Mikä?",
                                "answers": [{"text": "Helsinki", "answer_start": 0}],
                            }
                        ],
                    },
                    {
                        "context": "Москва — столица.",
                        "qas": [
                            {
                                "id": "russian-2-0",
                                "question": "Что?",
                                "answers": [{"text": "Москва", "answer_start": 0}],
                            }
                        ],
                    },
                ],
            }
        ],
    }
)

# (task, split, langs, {relative path: content}, expected examples, check)
OFFICIAL = [
    (
        "mnli",
        "train",
        None,
        {"mnli/train.tsv": MNLI_GLUE},
        2,
        lambda ex: ex[0].uid == "en:31193n" and ex[1].label == 0 and ex[0].text_b == "Hypo one.",
    ),
    (
        "qqp",
        "test",
        None,
        {"qqp/test.tsv": "id\tquestion1\tquestion2\n0\tA?\tB?\n"},
        1,
        lambda ex: ex[0].label == UNLABELLED and ex[0].text_b == "B?",
    ),
    (
        "qqp",
        "train",
        None,
        {
            "qqp/train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
            "7\t1\t2\tA?\tB?\t1\n"
        },
        1,
        lambda ex: ex[0].label == 1 and ex[0].uid == "en:7",
    ),
    (
        "xnli",
        "dev",
        ["de"],
        {"xnli/xnli.dev.tsv": XNLI_OFFICIAL},
        2,
        lambda ex: [e.label for e in ex] == [2, 0] and ex[1].text_a == "Noch einer.",
    ),
    (
        "xnli",
        "train",
        ["fr"],
        {"xnli/multinli.train.fr.tsv": "premise\thypo\tlabel\nP.\tH.\tcontradictory\n"},
        1,
        lambda ex: ex[0].label == 2 and ex[0].lang == "fr",
    ),
    (
        "pawsx",
        "dev",
        ["ja"],
        {
            "pawsx/ja/dev_2k.tsv": "id\tsentence1\tsentence2\tlabel\n"
            "1\t文A\t文B\t1\n2\t文C\t文D\t0\n"
        },
        2,
        lambda ex: [e.label for e in ex] == [1, 0] and ex[0].uid == "ja:1",
    ),
    (
        "pawsx",
        "train",
        ["de"],
        {"pawsx/de/translated_train.tsv": "id\tsentence1\tsentence2\tlabel\n5\tA\tB\t0\n"},
        1,
        lambda ex: ex[0].label == 0,
    ),
    (
        "hellaswag",
        "dev",
        None,
        {
            "hellaswag/hellaswag_val.jsonl": json.dumps(
                {
                    "ind": 24,
                    "activity_label": "Roof shingle removal",
                    "ctx_a": "A man.",
                    "ctx_b": "he",
                    "ctx": "A man. he",
                    "endings": ["a", "b", "c", "d"],
                    "label": 3,
                }
            )
        },
        1,
        lambda ex: ex[0].context == "Roof shingle removal: A man. he" and ex[0].label == 3,
    ),
    (
        "commonsenseqa",
        "train",
        None,
        {
            "commonsenseqa/train_rand_split.jsonl": json.dumps(
                {
                    "answerKey": "C",
                    "id": "x",
                    "question": {
                        "question_concept": "c",
                        "stem": "Where?",
                        "choices": [{"label": k, "text": k.lower()} for k in "ABCDE"],
                    },
                }
            )
        },
        1,
        lambda ex: ex[0].label == 2 and ex[0].context == "Where?" and ex[0].choices[4] == "e",
    ),
    (
        "siqa",
        "train",
        None,
        {
            "siqa/train.jsonl": json.dumps(
                {"context": "C.", "question": "Q?", "answerA": "a", "answerB": "b", "answerC": "c"}
            )
            + "\n",
            "siqa/train-labels.lst": "3\n",
        },
        1,
        lambda ex: ex[0].label == 2,
    ),
    (
        "cosmosqa",
        "test",
        None,
        {
            "cosmosqa/test.jsonl": json.dumps(
                {
                    "id": "t",
                    "context": "S.",
                    "question": "Q?",
                    "answer0": "a",
                    "answer1": "b",
                    "answer2": "c",
                    "answer3": "d",
                }
            )
        },
        1,
        lambda ex: ex[0].label == UNLABELLED,
    ),
    (
        "xcopa",
        "test",
        ["qu"],
        {
            "xcopa/qu/test.qu.jsonl": json.dumps(
                {
                    "premise": "P.",
                    "choice1": "a",
                    "choice2": "b",
                    "question": "cause",
                    "label": 1,
                    "idx": 3,
                }
            )
        },
        1,
        lambda ex: ex[0].label == 1 and ex[0].uid == "qu:3",
    ),
    (
        "tydiqa",
        "dev",
        ["ru", "fi"],
        {"tydiqa/tydiqa-goldp-v1.1-dev.json": TYDI_OFFICIAL},
        2,
        lambda ex: [e.lang for e in ex] == ["ru", "fi"] and ex[0].answers == ((0, "Москва"),),
    ),
    (
        "xglue-qadsm",
        "dev",
        ["de"],
        {"xglue_full_dataset/QADSM/xglue.qadsm.de.dev": "query\tAd title\tAd text\tGood\n"},
        1,
        lambda ex: ex[0].label == 1 and ex[0].text_b == "Ad title Ad text",
    ),
    (
        "xglue-wpr",
        "train",
        None,
        {"xglue/WPR/xglue.wpr.en.train": "q\tt\ts\t4\n"},
        1,
        lambda ex: ex[0].label == 4,
    ),
    (
        "xglue-nc",
        "test",
        ["fr"],
        {"xglue/NC/xglue.nc.fr.test": "Titre\tCorps\n"},
        1,
        lambda ex: ex[0].label == UNLABELLED,
    ),
    (
        "xglue-pos",
        "dev",
        ["zh"],
        {"xglue/POS/zh.dev": "我 PRON\n来 VERB\n\n好 ADJ\n"},
        2,
        lambda ex: ex[0].tokens == ("我", "来") and ex[0].tags == (10, 15),
    ),
    (
        "xglue-mlqa",
        "dev",
        ["hi"],
        {
            "xglue/MLQA/MLQA_V1/dev/dev-context-hi-question-hi.json": _squad_doc(
                [{"text": "दिल्ली", "answer_start": 0}], "दिल्ली भारत की राजधानी है।"
            )
        },
        1,
        lambda ex: ex[0].answers == ((0, "दिल्ली"),),
    ),
]


@pytest.mark.parametrize(
    ("name", "split", "langs", "files", "n", "check"),
    OFFICIAL,
    ids=[f"{t}-{s}-{next(iter(f))}" for t, s, _, f, *_ in OFFICIAL],
)
def test_official_formats(
    tmp_path: Path, name: str, split: str, langs, files: dict[str, str], n: int, check
) -> None:
    for rel, text in files.items():
        write(tmp_path, rel, text)
    loaded = get_intermediate_task(name).load(tmp_path, split, langs)
    assert len(loaded.examples) == n
    kinds = {TextExample, ChoiceExample, SpanExample, TaggingExample}
    assert {type(ex) for ex in loaded.examples} <= kinds
    assert check(loaded.examples)


def test_sidecar_labels_must_match_rows(tmp_path: Path) -> None:
    write(
        tmp_path,
        "siqa/dev.jsonl",
        '{"context": "C", "question": "Q", "answerA": "a", "answerB": "b", "answerC": "c"}\n',
    )
    label_path = write(tmp_path, "siqa/dev-labels.lst", "1\n2\n")
    with pytest.raises(DataError, match=f"{label_path}: 2 labels for 1 rows"):
        get_intermediate_task("siqa").load(tmp_path, "dev")
