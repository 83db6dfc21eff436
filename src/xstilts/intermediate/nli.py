"""Natural language inference: MNLI, ANLI (per round and all rounds), XNLI.

The three share one label set (ANLI's ``e/n/c`` and XNLI-MT's ``contradictory`` are aliases),
so a multi-task run can share what they learn.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from xstilts.intermediate.converters import pair
from xstilts.intermediate.formats import Record, read_jsonl, tsv_reader
from xstilts.intermediate.layouts import GLUE, glue_json, xglue, xtreme_splits
from xstilts.intermediate.schema import IntermediateTask, Source

NLI_LABELS = ("entailment", "neutral", "contradiction")
NLI_ALIASES = {
    "e": "entailment",
    "n": "neutral",
    "c": "contradiction",
    "contradictory": "contradiction",
}
XNLI_LANGS = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip

_nli = partial(
    IntermediateTask, kind="classification", labels=NLI_LABELS, label_aliases=NLI_ALIASES
)
_glue_tsv = pair("sentence1", "sentence2", "gold_label", "pairID")  # MNLI and official XNLI
_xtreme = pair("premise", "hypothesis", "label")
_positional = tsv_reader(("premise", "hypothesis", "label"))  # XTREME's headerless TSV
_xnli_mt = pair("premise", "hypo", "label")


def _mnli(name: str, **kw: Any) -> Source:
    return Source(f"mnli/{name}", tsv_reader(), _glue_tsv, "GLUE TSV", **kw)


MNLI = _nli(
    name="mnli",
    description="MultiNLI: premise/hypothesis entailment, 3 classes (dev = matched)",
    reference="Williams et al. 2018; GLUE (Wang et al. 2019)",
    download=GLUE,
    splits={
        "train": (_mnli("train.tsv"), glue_json("train", "mnli")),
        "dev": (_mnli("dev_matched.tsv"), glue_json("dev", "mnli")),
        "dev_mismatched": (_mnli("dev_mismatched.tsv"),),
        "test": (_mnli("test_matched.tsv", labelled=False),),
        "test_mismatched": (_mnli("test_mismatched.tsv", labelled=False),),
    },
)


def _anli(name: str, rounds: tuple[str, ...], which: str) -> IntermediateTask:
    convert = pair("context", "hypothesis", "label", "uid")
    return _nli(
        name=name,
        description=f"Adversarial NLI v1.0, {which}, 3 classes",
        reference="Nie et al. 2020",
        download="https://github.com/facebookresearch/anli",
        splits={
            s: (
                Source(
                    tuple(f"anli/{r}/{s}.jsonl" for r in rounds),
                    read_jsonl,
                    convert,
                    "ANLI v1.0 jsonl",
                ),
            )
            for s in ("train", "dev", "test")
        },
    )


def _in_lang(rec: Record, lang: str) -> bool:
    return rec.get("language") == lang


def _xnli_official(split: str) -> tuple[Source, ...]:
    """XNLI 1.0: every language in one file, selected by its ``language`` column."""
    return tuple(
        Source(f"{root}xnli.{split}.tsv", tsv_reader(), _glue_tsv, "XNLI 1.0", keep=_in_lang)
        for root in ("xnli/", "xnli/XNLI-1.0/")
    )


XNLI = _nli(
    name="xnli",
    languages=XNLI_LANGS,
    default_langs=XNLI_LANGS,
    description="XNLI: MNLI-style NLI in 15 languages; train = XNLI-MT machine "
    "translations of MNLI (translate-train)",
    reference="Conneau et al. 2018; XTREME (Hu et al. 2020)",
    download="https://github.com/facebookresearch/XNLI (XNLI-1.0, XNLI-MT-1.0)",
    splits=xtreme_splits(
        "xnli",
        _positional,
        _xtreme,
        train=(
            *(
                Source(f"{root}multinli.train.{{lang}}.tsv", tsv_reader(), _xnli_mt, "XNLI-MT 1.0")
                for root in ("xnli/", "xnli/XNLI-MT-1.0/multinli/")
            ),
            *xglue("XNLI/multinli.train.en.tsv", tsv_reader(), _xnli_mt, langs=("en",)),
        ),
        dev=(*_xnli_official("dev"), *xglue("XNLI/{lang}.dev", _positional, _xtreme)),
        test=(*_xnli_official("test"), *xglue("XNLI/{lang}.test", _positional, _xtreme)),
    ),
)

TASKS = (
    MNLI,
    _anli("anli-r1", ("R1",), "round 1"),
    _anli("anli-r2", ("R2",), "round 2"),
    _anli("anli-r3", ("R3",), "round 3"),
    _anli("anli", ("R1", "R2", "R3"), "rounds 1-3 concatenated"),
    XNLI,
)
