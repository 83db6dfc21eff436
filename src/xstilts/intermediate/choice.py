"""Multiple choice: HellaSwag, CosmosQA, CommonsenseQA, SocialIQA, XCOPA.

Each dataset has its own record shape, so each has a small ``parse`` returning
:data:`~xstilts.intermediate.converters.ChoiceParts`; :func:`~xstilts.intermediate.converters.
choice` adds the shared label validation.
"""

from __future__ import annotations

from functools import partial

from xstilts.intermediate.converters import DIGITS, ChoiceParts, choice, text_field
from xstilts.intermediate.formats import (
    BadRow,
    Record,
    block_reader,
    read_csv,
    read_jsonl,
    sidecar_labels_reader,
)
from xstilts.intermediate.layouts import xtreme
from xstilts.intermediate.schema import IntermediateTask, Source

XCOPA_LANGS = ("en", "et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")

_task = partial(IntermediateTask, kind="multiple_choice")


# --------------------------------------------------------------------------- record parsers


def _hellaswag_text(rec: Record) -> ChoiceParts:
    """HellaSwag text export: ``activity: context``, the label, then the four endings."""
    lines = rec["lines"]
    return None, lines[0], lines[2:], lines[1], DIGITS[: len(lines) - 2]


def _hellaswag_json(rec: Record) -> ChoiceParts:
    """Official HellaSwag jsonl; the context is rendered as in the text export."""
    endings = rec.get("endings")
    if not isinstance(endings, list) or not endings:
        raise BadRow("missing field 'endings'")
    context = f"{text_field(rec, 'activity_label')}: {text_field(rec, 'ctx')}"
    return (
        rec.get("ind"),
        context,
        [str(e) for e in endings],
        rec.get("label"),
        DIGITS[: len(endings)],
    )


def _cosmosqa(rec: Record) -> ChoiceParts:
    """CosmosQA (csv or jsonl): the question follows the story in the context segment."""
    choices = [text_field(rec, f"answer{i}") for i in range(4)]
    context = f"{text_field(rec, 'context')} {text_field(rec, 'question')}"
    return rec.get("id"), context, choices, rec.get("label"), DIGITS[:4]


def _csqa(rec: Record) -> ChoiceParts:
    """CommonsenseQA: official nested ``question.stem/choices`` or the HF flat export."""
    q = rec.get("question")
    if isinstance(q, dict):  # official: {"question": {"stem", "choices": [{"label","text"}]}}
        stem = text_field(q, "stem")
        items = q.get("choices")
        if not isinstance(items, list):
            raise BadRow("missing field 'question.choices'")
        names = tuple(str(c.get("label")) for c in items)
        texts = [str(c.get("text")) for c in items]
    else:  # HF: {"question": str, "choices": {"label": [...], "text": [...]}}
        stem = text_field(rec, "question")
        ch = rec.get("choices")
        if not isinstance(ch, dict):
            raise BadRow("missing field 'choices'")
        names = tuple(str(x) for x in ch.get("label", []))
        texts = [str(x) for x in ch.get("text", [])]
    if not texts or len(names) != len(texts):
        raise BadRow("choices: labels and texts differ in number")
    return rec.get("id"), stem, texts, rec.get("answerKey"), names


def _siqa(rec: Record) -> ChoiceParts:
    """SocialIQA: ``correct`` A/B/C (v1.4 copy) or a 1-based sidecar ``label``."""
    choices = [text_field(rec, f"answer{c}") for c in "ABC"]
    context = f"{text_field(rec, 'context')} {text_field(rec, 'question')}"
    if "correct" in rec:
        return rec.get("id"), context, choices, rec.get("correct"), ("A", "B", "C")
    return rec.get("id"), context, choices, rec.get("label"), ("1", "2", "3")


# COPA's question word rendered as a question (jiant's COPA formulation); kept in English for
# every language so translated premises are paired with the same prompt.
_COPA_QUESTION = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}


def _xcopa(rec: Record) -> ChoiceParts:
    """XCOPA / COPA: premise + question prompt, two alternatives, 0-based label."""
    q = text_field(rec, "question")
    if q not in _COPA_QUESTION:
        raise BadRow(f"question {q!r} is neither 'cause' nor 'effect'")
    context = f"{text_field(rec, 'premise')} {_COPA_QUESTION[q]}"
    choices = [text_field(rec, "choice1"), text_field(rec, "choice2")]
    return rec.get("idx"), context, choices, rec.get("label"), ("0", "1")


# --------------------------------------------------------------------------- tasks

_hs_json, _hs_text = choice(_hellaswag_json), choice(_hellaswag_text)
HELLASWAG = _task(
    name="hellaswag",
    num_choices=4,
    description="HellaSwag: pick the plausible continuation of an ActivityNet/WikiHow "
    "context (4 endings)",
    reference="Zellers et al. 2019",
    download="https://github.com/rowanz/hellaswag (data/)",
    splits={
        "train": (
            Source("hellaswag/hellaswag_train.jsonl", read_jsonl, _hs_json, "official jsonl"),
            Source("hellaswag/hellaswag_train_full.txt", block_reader(6), _hs_text, "text blocks"),
        ),
        "dev": (
            Source("hellaswag/hellaswag_val.jsonl", read_jsonl, _hs_json, "official jsonl"),
            Source("hellaswag/hellaswag_val_full.txt", block_reader(6), _hs_text, "text blocks"),
        ),
        "test": (
            Source(
                "hellaswag/hellaswag_test.jsonl",
                read_jsonl,
                _hs_json,
                "official jsonl",
                labelled=False,
            ),
        ),
    },
)

_cosmos = choice(_cosmosqa)
COSMOSQA = _task(
    name="cosmosqa",
    num_choices=4,
    description="CosmosQA: commonsense reading comprehension over blog stories (4 answers)",
    reference="Huang et al. 2019",
    download="https://github.com/wilburOne/cosmosqa (data/)",
    splits={
        "train": (
            Source("cosmosqa/train.csv", read_csv, _cosmos, "official CSV"),
            Source("cosmosqa/train.jsonl", read_jsonl, _cosmos, "jsonl"),
        ),
        "dev": (
            Source("cosmosqa/valid.csv", read_csv, _cosmos, "official CSV"),
            Source("cosmosqa/valid.jsonl", read_jsonl, _cosmos, "jsonl"),
        ),
        "test": (
            Source("cosmosqa/test.jsonl", read_jsonl, _cosmos, "official jsonl", labelled=False),
        ),
    },
)


_csqa_convert = choice(_csqa)


def _csqa_file(name: str, **kw: bool) -> tuple[Source, ...]:
    return (Source(f"commonsenseqa/{name}", read_jsonl, _csqa_convert, "official jsonl", **kw),)


COMMONSENSEQA = _task(
    name="commonsenseqa",
    num_choices=5,
    description="CommonsenseQA: ConceptNet-based commonsense questions (5 answers)",
    reference="Talmor et al. 2019",
    download="https://www.tau-nlp.org/commonsenseqa",
    splits={
        "train": _csqa_file("train_rand_split.jsonl"),
        "dev": _csqa_file("dev_rand_split.jsonl"),
        "test": _csqa_file("test_rand_split_no_answers.jsonl", labelled=False),
    },
)

_siqa_convert = choice(_siqa)
_siqa_official = sidecar_labels_reader("-labels.lst")


def _siqa_sources(v14: str, official: str | None) -> tuple[Source, ...]:
    """The SocialIQA v1.4 copy, else the official jsonl with its labels file."""
    v14_source = Source(
        f"siqa/socialIQa_v1.4_{v14}.jsonl", read_jsonl, _siqa_convert, "SocialIQA v1.4"
    )
    if official is None:
        return (v14_source,)
    return (
        v14_source,
        Source(
            f"siqa/{official}.jsonl",
            _siqa_official,
            _siqa_convert,
            "official jsonl + labels",
            sidecar="-labels.lst",
        ),
    )


SIQA = _task(
    name="siqa",
    num_choices=3,
    description="SocialIQA: reasoning about people's motivations and reactions (3 answers)",
    reference="Sap et al. 2019",
    download="https://leaderboard.allenai.org/socialiqa",
    splits={
        "train": _siqa_sources("trn", "train"),
        "dev": _siqa_sources("dev", "dev"),
        "test": _siqa_sources("tst", None),
    },
)


_xcopa_convert = choice(_xcopa)


def _xcopa_official(split: str) -> tuple[Source, ...]:
    """The XCOPA repository's files: its ``data/`` folder's content, or the folder itself."""
    return tuple(
        Source(
            f"xcopa/{root}{{lang}}/{split}.{{lang}}.jsonl",
            read_jsonl,
            _xcopa_convert,
            "XCOPA official",
        )
        for root in ("", "data/")
    )


XCOPA = _task(
    name="xcopa",
    languages=XCOPA_LANGS,
    default_langs=XCOPA_LANGS,
    num_choices=2,
    description="XCOPA: choice of plausible alternatives (cause/effect) in 11 languages + "
    "English COPA; train is English only",
    reference="Ponti et al. 2020; XTREME-R (Ruder et al. 2021)",
    download="https://github.com/cambridgeltl/xcopa (data/); English train: SuperGLUE COPA",
    splits={
        "train": (
            xtreme(
                "xcopa/train-{lang}.jsonl",
                read_jsonl,
                _xcopa_convert,
                layout="XTREME-R",
                langs=("en",),
            ),
        ),
        "dev": (
            xtreme("xcopa/val-{lang}.jsonl", read_jsonl, _xcopa_convert, layout="XTREME-R"),
            *_xcopa_official("val"),
        ),
        "test": (
            *_xcopa_official("test"),
            xtreme(
                "xcopa/test-{lang}.jsonl",
                read_jsonl,
                _xcopa_convert,
                layout="XTREME-R",
                hidden=True,
            ),
        ),
    },
)

TASKS = (HELLASWAG, COSMOSQA, COMMONSENSEQA, SIQA, XCOPA)
