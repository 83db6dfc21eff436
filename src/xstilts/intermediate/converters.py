"""Record -> example converters shared by the task families, and their field helpers.

A converter (:data:`~xstilts.intermediate.schema.Converter`) receives one record from a reader
(:mod:`xstilts.intermediate.formats`), the :class:`~xstilts.intermediate.schema.ConvertContext`
of its file and the record's position, and returns an example or raises
:class:`~xstilts.intermediate.formats.BadRow` saying what is wrong. One converter per *example
shape*: :func:`pair` for (sentence-pair) classification, :func:`choice` for multiple choice
(given a dataset's own ``parse``), :func:`squad` for extractive QA, :func:`tagged` for tagging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xstilts.intermediate.formats import BadRow, Record
from xstilts.intermediate.schema import (
    UNLABELLED,
    ChoiceExample,
    ConvertContext,
    Converter,
    SpanExample,
    TaggingExample,
    TextExample,
)

DIGITS = tuple(str(i) for i in range(10))  # label names of choices indexed 0, 1, 2, ...


def text_field(rec: Record, name: str) -> str:
    """A field that must be present and hold text."""
    value = rec.get(name)
    if value is None:
        raise BadRow(f"missing field {name!r}")
    if not isinstance(value, str):
        raise BadRow(f"field {name!r} is not text: {value!r}")
    return value


def _joined(rec: Record, names: str | tuple[str, ...]) -> str:
    """One field, or several joined by a space (an ad's title + description)."""
    if isinstance(names, str):
        return text_field(rec, names)
    return " ".join(text_field(rec, n) for n in names)


def pair(
    a: str | tuple[str, ...],
    b: str | tuple[str, ...] | None,
    label: str,
    uid: str | None = None,
) -> Converter:
    """Classification converter reading text(s) and the label from the named fields."""

    def convert(rec: Record, ctx: ConvertContext, k: int) -> TextExample:
        return TextExample(
            uid=ctx.uid(rec.get(uid) if uid else None, k),
            lang=ctx.lang,
            text_a=_joined(rec, a),
            text_b=_joined(rec, b) if b is not None else None,
            label=ctx.label(rec.get(label)) if ctx.labelled else UNLABELLED,
        )

    return convert


# A multiple-choice parser returns (native id, context, choices, raw label, label names).
ChoiceParts = tuple[Any, str, list[str], Any, tuple[str, ...]]


def choice(parse: Callable[[Record], ChoiceParts]) -> Converter:
    """Multiple-choice converter: a format-specific ``parse`` plus shared label validation."""

    def convert(rec: Record, ctx: ConvertContext, k: int) -> ChoiceExample:
        native, context, choices, raw, names = parse(rec)
        if ctx.labelled:
            if raw is None or not str(raw).strip():
                raise BadRow("missing label")
            key = str(raw).strip()
            if key not in names:
                raise BadRow(f"label {raw!r} is not in the label set (valid: {', '.join(names)})")
            label = names.index(key)
        else:
            label = UNLABELLED
        return ChoiceExample(ctx.uid(native, k), ctx.lang, context, tuple(choices), label)

    return convert


def squad(rec: Record, ctx: ConvertContext, k: int) -> SpanExample:
    """SQuAD v1.1 question; every answer must be found at its ``answer_start``. Empty answer
    texts are hidden answers (XTREME's test copies blank them) and are dropped."""
    question = text_field(rec, "question")
    context = text_field(rec, "context")
    raw = rec.get("answers") or []
    if not isinstance(raw, list):
        raise BadRow(f"question {rec.get('id')!r}: 'answers' is not a list")
    answers: list[tuple[int, str]] = []
    for ans in raw:
        text, start = (
            (ans.get("text"), ans.get("answer_start")) if isinstance(ans, dict) else (None, None)
        )
        if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
            raise BadRow(
                f"question {rec.get('id')!r}: answer needs 'text' and integer 'answer_start'"
            )
        if not text:
            continue
        found = context[start : start + len(text)]
        if found != text:
            raise BadRow(
                f"question {rec.get('id')!r}: answer {text!r} not found at answer_start {start} "
                f"in the context (found {found!r})"
            )
        answers.append((start, text))
    if ctx.labelled and not answers:
        raise BadRow(f"question {rec.get('id')!r}: missing answers")
    return SpanExample(ctx.uid(rec.get("id"), k), ctx.lang, question, context, tuple(answers))


def tagged(rec: Record, ctx: ConvertContext, k: int) -> TaggingExample:
    """A tagged sentence; each tag is validated on its own line."""
    tags = tuple(
        ctx.label(tag, line=line) for tag, line in zip(rec["tags"], rec["tag_lines"], strict=True)
    )
    return TaggingExample(ctx.uid(None, k), ctx.lang, tuple(rec["tokens"]), tags)
