"""Extractive question answering (SQuAD v1.1 JSON): SQuAD, XQuAD, TyDiQA-GoldP, XGLUE MLQA."""

from __future__ import annotations

from functools import partial
from typing import Any

from xstilts.intermediate.converters import squad
from xstilts.intermediate.formats import Record, read_squad
from xstilts.intermediate.layouts import XGLUE, xglue
from xstilts.intermediate.schema import IntermediateTask, Source

XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
TYDIQA_LANGS = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
# Official TyDiQA-GoldP files mix languages; ids start with the language's English name.
_TYDI_NAMES = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip

_task = partial(IntermediateTask, kind="span", metric="f1")


def _json(path: str, layout: str, **kw: Any) -> Source:
    """A SQuAD v1.1 JSON file."""
    return Source(path, read_squad, squad, layout, **kw)


SQUAD = _task(
    name="squad",
    description="SQuAD v1.1 extractive question answering over Wikipedia paragraphs",
    reference="Rajpurkar et al. 2016",
    download="https://rajpurkar.github.io/SQuAD-explorer/ (train-v1.1.json, dev-v1.1.json)",
    splits={s: (_json(f"squad/{s}-v1.1.json", "SQuAD v1.1 JSON"),) for s in ("train", "dev")},
)

XQUAD = _task(
    name="xquad",
    languages=XQUAD_LANGS,
    train_split="test",
    dev_split="test",
    description="XQuAD: 240 SQuAD v1.1 dev paragraphs / 1190 questions professionally "
    "translated; evaluation only (one split, 'test')",
    reference="Artetxe et al. 2020; XTREME (Hu et al. 2020)",
    download="https://github.com/google-deepmind/xquad",
    splits={
        "test": (
            # XQuAD-R (LAReQA) has XQuAD's contexts, questions and answers for 11 languages;
            # XTREME's copy of XQuAD has the answers blanked.
            _json("lareqa/xquad-r/{lang}.json", "XQuAD-R copy"),
            _json("xquad/xquad.{lang}.json", "XQuAD JSON"),
        )
    },
)


def _tydi_lang(rec: Record, lang: str) -> bool:
    return str(rec.get("id", "")).startswith(_TYDI_NAMES[lang] + "-")


def _tydi(split: str) -> tuple[Source, ...]:
    return (
        _json(f"tydiqa/tydiqa.goldp.{{lang}}.{split}.json", "XTREME"),
        _json(f"tydiqa/tydiqa-goldp-v1.1-{split}.json", "TyDiQA official", keep=_tydi_lang),
    )


TYDIQA = _task(
    name="tydiqa",
    languages=TYDIQA_LANGS,
    description="TyDiQA-GoldP: typologically diverse QA with the gold passage, 9 languages",
    reference="Clark et al. 2020; XTREME (Hu et al. 2020)",
    download="https://github.com/google-research-datasets/tydiqa (GoldP v1.1)",
    splits={"train": _tydi("train"), "dev": _tydi("dev")},
)

XGLUE_MLQA = _task(
    name="xglue-mlqa",
    languages=MLQA_LANGS,
    description="XGLUE MLQA: train on English SQuAD v1.1, dev/test in 7 languages "
    "(context and question in the same language)",
    reference="Lewis et al. 2020; XGLUE (Liang et al. 2020)",
    download=XGLUE,
    splits={
        "train": xglue("MLQA/squad1.1/train-v1.1.json", read_squad, squad, langs=("en",)),
        **{
            s: xglue(
                f"MLQA/MLQA_V1/{s}/{s}-context-{{lang}}-question-{{lang}}.json", read_squad, squad
            )
            for s in ("dev", "test")
        },
    },
)

TASKS = (SQUAD, XQUAD, TYDIQA, XGLUE_MLQA)
