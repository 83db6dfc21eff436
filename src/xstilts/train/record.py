"""What a training run trained on, by language: the record that decides a setting's group.

A setting is "English" or "multilingual" because of the rows it was trained on, not because of
a task's name: an ``xnli`` run restricted to English is English, an XGLUE task whose training
split is English is English, MNLI plus multilingual MLM text is mixed. The record counts, per
task and per language, the rows available and the examples and tokens actually drawn (task
batches and the auxiliary MLM text), and :func:`derive_group` reads the group off it:

* ``english``: every trained example is English;
* ``multilingual``: at least :data:`MULTILINGUAL_SHARE` (half) of the trained examples are not
  English;
* ``mixed``: otherwise (some non-English, less than half).

Examples of an unknown language (an MLM text file given without ``lang:``) count as
non-English: the group errs towards not calling a setting English.

The same rule applies to a plan (:func:`expected_counts`: the shares the sampler will draw, from
the rows alone, known before any training) and to the record of a finished run (exact draws,
recomputed from the deterministic sampler, so resuming does not change them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

ENGLISH = "en"
UNKNOWN = "und"
MULTILINGUAL_SHARE = (
    0.5  # non-English share of trained examples from which a setting is "multilingual"
)
GROUPS = ("english", "multilingual", "mixed")


def english_share(examples_by_lang: Mapping[str, float]) -> float:
    """Share of examples that are English (1.0 for an empty record)."""
    total = sum(examples_by_lang.values())
    return 1.0 if total <= 0 else examples_by_lang.get(ENGLISH, 0) / total


def derive_group(examples_by_lang: Mapping[str, float]) -> str:
    """``english``, ``multilingual`` or ``mixed`` from examples per language (module docstring)."""
    share = english_share(examples_by_lang)
    if share >= 1.0:
        return "english"
    if 1.0 - share >= MULTILINGUAL_SHARE:
        return "multilingual"
    return "mixed"


def count_by_lang(langs: Iterable[str], weights: Iterable[int] | None = None) -> dict[str, int]:
    """Counts (or summed weights) per language, sorted by language."""
    counter: Counter[str] = Counter()
    if weights is None:
        counter.update(langs)
    else:
        for lang, w in zip(langs, weights, strict=True):
            counter[lang] += int(w)
    return dict(sorted(counter.items()))


def expected_counts(
    rows: Mapping[str, Mapping[str, int]], probs: Mapping[str, float], mlm_rows: Mapping[str, int]
) -> dict[str, float]:
    """Examples per language a run is expected to draw, as shares of one example: each task is
    drawn with its sampling probability and, inside it, languages in proportion to their rows;
    the MLM objective adds one example of its own text per task example."""
    out: Counter[str] = Counter()
    for task, by_lang in rows.items():
        n = sum(by_lang.values())
        for lang, k in by_lang.items():
            out[lang] += probs.get(task, 0.0) * k / n if n else 0.0
    n_mlm = sum(mlm_rows.values())
    for lang, k in mlm_rows.items():
        out[lang] += k / n_mlm if n_mlm else 0.0
    return dict(sorted(out.items()))


def totals(record: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Examples and tokens per language over every part of a record (tasks and MLM)."""
    examples: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for part in [
        *record.get("tasks", {}).values(),
        *([record["mlm"]] if record.get("mlm") else []),
    ]:
        examples.update(part.get("examples", {}))
        tokens.update(part.get("tokens", {}))
    return {"examples": dict(sorted(examples.items())), "tokens": dict(sorted(tokens.items()))}


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Add the totals, the English share and the derived group to a record (in place).

    ``examples``/``tokens`` count the task batches (what a budget counts); ``mlm_examples`` /
    ``mlm_tokens`` the auxiliary MLM text; ``by_lang`` both, and decides the group.
    """
    tasks = record.get("tasks", {}).values()
    record["examples"] = sum(sum(t.get("examples", {}).values()) for t in tasks)
    record["tokens"] = sum(sum(t.get("tokens", {}).values()) for t in tasks)
    mlm = record.get("mlm") or {}
    record["mlm_examples"] = sum(mlm.get("examples", {}).values())
    record["mlm_tokens"] = sum(mlm.get("tokens", {}).values())
    tot = totals(record)
    record["by_lang"] = tot
    record["english_share"] = round(english_share(tot["examples"]), 6)
    record["group"] = derive_group(tot["examples"])
    return record
