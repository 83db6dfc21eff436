"""Hidden-state selections: the one parser for ``--layer``/``--layers`` and spec ``layers:``.

Hidden-state index convention (used everywhere in xstilts): ``hidden_states[0]`` is the
embedding output and ``hidden_states[i]`` the output of transformer layer ``i``; a 12-layer
model has 13 hidden states, 0..12.

A selection is ``"all"`` (every hidden state, from one forward pass) or a list of indices in
which negative numbers count from the end as in Python: ``last`` is ``-1``, so a selection can
say "the last one" before the model is known. ``"8,12"``, ``[8, 12]``, ``"last"``, ``"8,last"``
and ``12`` are all accepted, on the command line and in specs alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from xstilts.errors import UsageError

LayerSelection = Literal["all"] | list[int]
LAST = -1


def parse_layers(value: object, *, option: str = "--layer") -> LayerSelection:
    """Normalise a selection: ``"all"``, or a list of indices (``last`` -> -1), duplicates
    dropped in order. Anything else is a one-line usage error naming ``option``."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, bool):
        raise UsageError(f"{option} {value!r}: expected 'all', 'last' or indices like 8,12")
    items: Sequence[object]
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [s for s in value.split(",") if s.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise UsageError(f"{option} {value!r}: expected 'all', 'last' or indices like 8,12")
    out: list[int] = []
    for item in items:
        text = str(item).strip().lower()
        if text == "last":
            out.append(LAST)
            continue
        try:
            out.append(int(text))
        except ValueError:
            raise UsageError(
                f"{option} {value!r}: expected 'all', 'last' or hidden-state indices like 8 or 8,12"
            ) from None
    if not out:
        raise UsageError(f"{option}: no hidden state given (e.g. 'last', '8,12' or 'all')")
    return list(dict.fromkeys(out))


def resolve_layers(selection: LayerSelection | None, num_hidden_states: int) -> list[int]:
    """Concrete, validated indices of a selection for a model with ``num_hidden_states``."""
    if selection is None or selection == "all":
        return list(range(num_hidden_states))
    resolved = [i + num_hidden_states if i < 0 else i for i in selection]
    bad = [o for o, i in zip(selection, resolved, strict=True) if not 0 <= i < num_hidden_states]
    if bad:
        raise UsageError(
            f"layer {bad[0]} out of range: this model has hidden states 0..{num_hidden_states - 1}"
        )
    return list(dict.fromkeys(resolved))


def describe_layers(selection: LayerSelection) -> str:
    """The selection as a user writes it (``all``, ``last``, ``8,12``)."""
    if selection == "all":
        return "all"
    return ",".join("last" if i == LAST else str(i) for i in selection)
