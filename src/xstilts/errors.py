"""User-facing errors.

Anything a user can cause (a bad file, an unknown language, a path that is not a model) raises
:class:`XstiltsError` with one line that says what and where. The CLI prints that line and exits
with code 2; programming errors still raise normally so they are not hidden.
"""

from __future__ import annotations

import difflib


class XstiltsError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""

    exit_code = 2


class DataError(XstiltsError):
    """A data file is missing, malformed, empty or inconsistent with its partner file."""


class ModelError(XstiltsError):
    """A model reference that cannot be resolved or loaded."""


class OutputError(XstiltsError):
    """A result cannot be written (a directory in the way, a read-only folder, a full disk)."""


class UsageError(XstiltsError, ValueError):
    """An option value that is invalid for this model or task (a layer out of range, ...)."""


def closest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """Return a ' (did you mean ...?)' hint for an unknown name, or '' when nothing is close."""
    hits = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(hits)}?)" if hits else ""
