"""The ``xstilts`` application: the command groups, the ``--debug`` switch and the one place
where errors become one line and an exit code.

User errors (:class:`xstilts.errors.XstiltsError`) print one ``error:`` line and exit with
code 2; anything unexpected prints one line naming the command and the exception and exits
with code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from xstilts.cli import evaluate, experiment, report, resources, scale, train
from xstilts.cli.console import err
from xstilts.errors import XstiltsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Intermediate-task training and zero-shot cross-lingual retrieval evaluation.",
)
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr, force=True
    )


for _module in (evaluate, train, experiment, report, scale, resources):
    _module.register(app)


def _command_name(argv: list[str]) -> str:
    """The command (group) the user ran, for the last-resort error line."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in ("data", "models", "cache") else words[0]


def main() -> None:
    """Console entry point: user errors are one line and exit code 2; any other failure is one
    line naming the command and the exception, exit code 1 (``--debug``: the traceback)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except XstiltsError as exc:
        if _state["debug"]:
            raise
        err.print(f"error: {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a raw traceback by default
        if _state["debug"]:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        err.print(
            f"error: xstilts {_command_name(sys.argv)}: unexpected {type(exc).__name__}"
            + (f": {first}" if first else "")
            + " (this is a bug in xstilts, or an input it does not check yet: rerun with "
            "--debug for the traceback and report it)",
            soft_wrap=True,
        )
        sys.exit(1)
