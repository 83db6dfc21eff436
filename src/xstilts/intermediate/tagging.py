"""Token tagging: CCG supertags (tag set derived from the data), XGLUE NER and POS."""

from __future__ import annotations

from functools import partial

from xstilts.intermediate.converters import tagged
from xstilts.intermediate.formats import read_token_tags
from xstilts.intermediate.layouts import XGLUE, xglue
from xstilts.intermediate.schema import IntermediateTask, Source

NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
UPOS_LABELS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
XGLUE_NER_LANGS = ("de", "en", "es", "nl")
XGLUE_POS_LANGS = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "it", "nl", "pl", "ru", "th", "tr", "ur",
    "vi", "zh",
)  # fmt: skip

_task = partial(IntermediateTask, kind="tagging")


def _conll(root: str) -> dict[str, tuple[Source, ...]]:
    """XGLUE's tagging folders: English train, dev/test per language."""
    return {
        "train": xglue(f"{root}/en.train", read_token_tags, tagged, langs=("en",)),
        "dev": xglue(f"{root}/{{lang}}.dev", read_token_tags, tagged),
        "test": xglue(f"{root}/{{lang}}.test", read_token_tags, tagged),
    }


CCG = _task(
    name="ccg",
    description="CCG supertagging on CCGbank (token<TAB>supertag per line, blank line "
    "between sentences); tag set derived from the training data",
    reference="Hockenmaier & Steedman 2007",
    download="CCGbank, LDC2005T13 (https://catalog.ldc.upenn.edu/LDC2005T13), converted "
    "to token<TAB>tag files",
    splits={
        s: tuple(
            Source(f"ccg/{name}.tsv", read_token_tags, tagged, "token-tag")
            for name in (s, f"ccg.{s}")
        )
        for s in ("train", "dev", "test")
    },
)

XGLUE_NER = _task(
    name="xglue-ner",
    languages=XGLUE_NER_LANGS,
    labels=NER_LABELS,
    metric="entity_f1",
    description="XGLUE NER (CoNLL-2002/2003, BIO tags); train English only",
    reference="Tjong Kim Sang 2002, 2003; XGLUE (Liang et al. 2020)",
    download=XGLUE,
    splits=_conll("NER"),
)

XGLUE_POS = _task(
    name="xglue-pos",
    languages=XGLUE_POS_LANGS,
    labels=UPOS_LABELS,
    description="XGLUE POS (Universal Dependencies 2.5 UPOS); train English only",
    reference="Zeman et al. 2019; XGLUE (Liang et al. 2020)",
    download=XGLUE,
    splits=_conll("POS"),
)

TASKS = (CCG, XGLUE_NER, XGLUE_POS)
