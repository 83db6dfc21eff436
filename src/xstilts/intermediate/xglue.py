"""XGLUE's own classification tasks: NC, QADSM, WPR, QAM.

Headerless TSV, English train, dev/test per language; test labels are not distributed with
XGLUE, so the test splits load unlabelled (prediction only). XGLUE's other tasks are declared
with their families (XNLI and PAWS-X copies, MLQA, NER, POS).
"""

from __future__ import annotations

from xstilts.intermediate.converters import pair
from xstilts.intermediate.formats import tsv_reader
from xstilts.intermediate.layouts import XGLUE, xglue
from xstilts.intermediate.schema import Converter, IntermediateTask, Source

NC_LABELS = (
    "foodanddrink", "sports", "travel", "finance", "lifestyle", "news", "entertainment", "health",
    "video", "autos",
)  # fmt: skip


def _task(
    name: str,
    languages: tuple[str, ...],
    labels: tuple[str, ...],
    columns: tuple[str, ...],
    convert: Converter,
    description: str,
) -> IntermediateTask:
    """One XGLUE classification task; its files are ``{NAME}/xglue.{name}.{lang}.{split}``."""
    read = tsv_reader(columns)
    stem = f"{name.upper()}/xglue.{name}"
    splits: dict[str, tuple[Source, ...]] = {
        "train": xglue(f"{stem}.en.train", read, convert, langs=("en",)),
        "dev": xglue(f"{stem}.{{lang}}.dev", read, convert),
        "test": xglue(f"{stem}.{{lang}}.test", read, convert, labelled=False),
    }
    return IntermediateTask(
        name=f"xglue-{name}",
        kind="classification",
        languages=languages,
        labels=labels,
        description=f"XGLUE {description}",
        reference="XGLUE (Liang et al. 2020)",
        download=XGLUE,
        label_aliases={str(i): label for i, label in enumerate(labels)},
        splits=splits,
    )


TASKS = (
    _task(
        "nc",
        ("en", "de", "es", "fr", "ru"),
        NC_LABELS,
        ("title", "body", "label"),
        pair("title", "body", "label"),
        "News Classification: news title + body -> 10 categories",
    ),
    _task(
        "qadsm",
        ("en", "de", "fr"),
        ("Bad", "Good"),
        ("query", "ad_title", "ad_description", "label"),
        pair("query", ("ad_title", "ad_description"), "label"),
        "Query-Ad Matching: is an ad (title + description) relevant to a query",
    ),
    _task(
        "wpr",
        ("en", "de", "es", "fr", "it", "pt", "zh"),
        ("Bad", "Fair", "Good", "Excellent", "Perfect"),
        ("query", "title", "snippet", "label"),
        pair("query", ("title", "snippet"), "label"),
        "Web Page Ranking: query/page relevance, 5 grades (trained as 5-way classification; "
        "XGLUE reports nDCG over each query's pages, not computed here)",
    ),
    _task(
        "qam",
        ("en", "de", "fr"),
        ("False", "True"),
        ("question", "passage", "label"),
        pair("question", "passage", "label"),
        "QA Matching: does a passage answer a question",
    ),
)
