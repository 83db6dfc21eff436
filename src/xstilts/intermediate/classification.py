"""GLUE-style classification: QQP (paraphrase), SST-2 (sentiment), PAWS-X (paraphrase, 7 languages).

Labels come as ``0``/``1`` in the files and map to names (index = the digit).
"""

from __future__ import annotations

from typing import Any

from xstilts.intermediate.converters import pair
from xstilts.intermediate.formats import tsv_reader
from xstilts.intermediate.layouts import GLUE, binary_aliases, glue_json, xglue, xtreme_splits
from xstilts.intermediate.schema import Converter, IntermediateTask, Source

PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")


def _binary(labels: tuple[str, str], **kw: Any) -> IntermediateTask:
    """A two-class task whose files say ``0``/``1``."""
    return IntermediateTask(
        kind="classification", labels=labels, label_aliases=binary_aliases(labels), **kw
    )


def _tsv(path: str, convert: Converter, layout: str = "GLUE TSV", **kw: Any) -> Source:
    """A TSV file with a header row (GLUE, official PAWS-X)."""
    return Source(path, tsv_reader(), convert, layout, **kw)


_qqp = pair("question1", "question2", "is_duplicate", "id")
QQP = _binary(
    ("not_duplicate", "duplicate"),
    name="qqp",
    description="Quora Question Pairs: are two questions duplicates (2 classes)",
    reference="Iyer et al. 2017; GLUE (Wang et al. 2019)",
    download=GLUE,
    splits={
        "train": (_tsv("qqp/train.tsv", _qqp), glue_json("train", "qqp")),
        "dev": (_tsv("qqp/dev.tsv", _qqp), glue_json("dev", "qqp")),
        "test": (_tsv("qqp/test.tsv", _qqp, labelled=False),),
    },
)

_sst = pair("sentence", None, "label")
SST2 = _binary(
    ("negative", "positive"),
    name="sst2",
    description="Stanford Sentiment Treebank, binary sentence sentiment",
    reference="Socher et al. 2013; GLUE (Wang et al. 2019)",
    download=GLUE,
    splits={
        "train": (
            _tsv("sst2/train_full.tsv", _sst, "GLUE TSV (full)"),
            _tsv("sst2/train.tsv", _sst),
        ),
        "dev": (_tsv("sst2/dev.tsv", _sst),),
        "test": (
            _tsv("sst2/test-labeled.tsv", _sst, "labelled test TSV"),
            _tsv("sst2/test.tsv", pair("sentence", None, "label", "index"), labelled=False),
        ),
    },
)

_paws = pair("sentence1", "sentence2", "label", "id")


def _paws_official(split_file: str, **kw: Any) -> tuple[Source, ...]:
    """Official PAWS-X (``x-final/{lang}/...``, folder renamed or not) and XGLUE's copy."""
    return tuple(
        _tsv(f"{root}{{lang}}/{split_file}", _paws, "PAWS-X official", **kw)
        for root in ("pawsx/", "pawsx/x-final/")
    ) + xglue(f"PAWSX/{{lang}}/{split_file}", tsv_reader(), _paws, **kw)


PAWSX = _binary(
    ("not_paraphrase", "paraphrase"),
    name="pawsx",
    languages=PAWSX_LANGS,
    default_langs=PAWSX_LANGS,
    description="PAWS-X: adversarial paraphrase identification in 7 languages; "
    "non-English train is machine-translated (translate-train)",
    reference="Yang et al. 2019; XTREME (Hu et al. 2020)",
    download="https://github.com/google-research-datasets/paws/tree/master/pawsx",
    splits=xtreme_splits(
        "pawsx",
        tsv_reader(("sentence1", "sentence2", "label")),
        _paws,
        train=(
            *_paws_official("train.tsv", langs=("en",)),
            *_paws_official("translated_train.tsv"),
        ),
        dev=_paws_official("dev_2k.tsv"),
        test=_paws_official("test_2k.tsv"),
    ),
)

TASKS = (QQP, SST2, PAWSX)
