"""Command-line options generated from the settings models, so each setting is declared once.

:func:`model_options` turns the fields of a pydantic settings model (its name, type, default,
constraints and description) into typer options of a command, and hands the command one
validated model instance. A bad value is the model's own check, reported as one line naming the
option (``--batch-size 0: Input should be greater than or equal to 1``). The same models are
what experiment specs and results files use, so the command line, specs and results cannot
drift apart.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError

from xstilts.errors import UsageError


def _cli_type(annotation: Any) -> Any:
    """The type typer parses a field as (the model checks the value itself: a Literal's
    choices, a range, a layer selection)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return (_cli_type(inner[0]) if len(inner) == 1 else str) | None
    if annotation in (bool, int, float, str, Path):
        return annotation
    return str  # Literals, lists and other structured values: parsed by the model


def option_name(field: str, names: dict[str, str] | None = None) -> str:
    """The option that sets ``field`` (``max_length`` -> ``--max-length``)."""
    return (names or {}).get(field, "--" + field.replace("_", "-"))


def _default_text(value: Any) -> Any:
    if isinstance(value, list):  # e.g. a layer selection: [-1] is "last"
        return ",".join("last" if v == -1 else str(v) for v in value)
    return value


def _parameter(name: str, field: Any, option: str, default: Any) -> inspect.Parameter:
    kind = _cli_type(field.annotation)
    help_text = field.description or ""
    flags = option.split()  # "--task -t": a long name and a short one
    if kind is bool:
        flag = flags[0].removeprefix("--")
        opt = typer.Option(f"--{flag}/--no-{flag}", help=help_text)
    else:
        opt = typer.Option(*flags, help=help_text)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, opt]
    )


def validated(model: type[BaseModel], values: dict[str, Any], names: dict[str, str] | None = None):
    """``model(**values)``; a failed check is one :class:`UsageError` naming the option."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        msg = first["msg"].removeprefix("Value error, ")
        shown = values.get(field)
        where = option_name(field, names).split()[0] + (f" {shown}" if shown is not None else "")
        raise UsageError(f"{where}: {msg}") from None


def model_options(
    model: type[BaseModel],
    *,
    param: str,
    names: dict[str, str] | None = None,
    exclude: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command: every field of ``model`` (but ``exclude``) becomes an option,
    and the command receives the validated instance as its ``param`` argument.

    ``names`` renames options (``{"layers": "--layer"}``); ``defaults`` replaces a field's
    default on this command only.
    """
    skip = set(exclude)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != param]
        fields = {k: f for k, f in model.model_fields.items() if k not in skip}
        taken = {p.name for p in own} & set(fields)
        if taken:
            raise TypeError(f"{fn.__name__}: parameters {taken} clash with {model.__name__}")
        generated = []
        for name, field in fields.items():
            default = ... if field.is_required() else field.get_default(call_default_factory=True)
            default = (defaults or {}).get(name, default)
            generated.append(
                _parameter(name, field, option_name(name, names), _default_text(default))
            )

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in fields}
            return fn(**kwargs, **{param: validated(model, values, names)})

        params = [*own, *generated]
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one's
        return wrapper

    return decorate
