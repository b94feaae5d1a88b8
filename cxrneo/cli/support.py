"""What every cxrneo command shares: the settings built once, and one-line errors."""

import inspect
import os
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer

from cxrneo.errors import CxrneoError, InputError

if TYPE_CHECKING:
    from cxrneo.filters import QueryFilter
from cxrneo.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if present), cpu or cuda.")]

def settings(ctx: typer.Context) -> Settings:
    """The settings built once in the callback."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def _debug() -> bool:
    """CXRNEO_DEBUG, as the settings read it (the environment when settings failed to build)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, Settings):
        return obj.debug
    return os.environ.get("CXRNEO_DEBUG", "").lower() in ("1", "true", "yes")


def friendly(fn: F) -> F:
    """Turn cxrneo errors into one clear line and exit code 1 (traceback with CXRNEO_DEBUG=1)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CxrneoError as e:
            if _debug():
                raise
            typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def filter_flags(graph: bool = True) -> Callable[[F], F]:
    """A command's filter flags, made from the table of filter fields (cxrneo.filters.FIELDS): they take
    the place of the command's `where` parameter, and the command gets the validated QueryFilter
    there (None when no flag is given). ``graph``: also the fields only a stored graph has."""
    flags = _flags(graph)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        params = [q for p in signature.parameters.values() for q in (flags if p.name == "where" else [p])]

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {p.name: kwargs.pop(p.name, None) for p in flags}
            return fn(*args, where=_filter_of(given), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**{k: v for k, v in fn.__annotations__.items() if k != "where"},
                                   **{p.name: p.annotation for p in flags}}
        return wrapper  # type: ignore[return-value]

    return decorate


def _flags(graph: bool) -> list[inspect.Parameter]:
    """One keyword parameter per flag; two bounds of one column share a range flag."""
    from cxrneo.filters import COLUMN, FIELDS

    out: dict[str, inspect.Parameter] = {}
    for f in FIELDS:
        if f.stored_graph_only and not graph:
            continue
        name = f.option
        one = f.op in ("min", "max") or bool(f.choices)
        kind: Any = str if one else list[int] if COLUMN[f.column].kind == "int" else list[str]
        out.setdefault(name, inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                               annotation=Annotated[kind | None, typer.Option(f.flag, help=f.flag_help)]))
    return list(out.values())


def _filter_of(given: dict[str, Any]) -> "QueryFilter | None":
    """The validated filter of the flags given (None when none is)."""
    from cxrneo.filters import FIELDS, QueryFilter
    from cxrneo.service.request import parse

    data: dict[str, Any] = {}
    for f in FIELDS:
        value = given.get(f.option)
        if value in (None, [], ()):
            continue
        data[f.name] = _bound(f.flag, str(value), f.op) if f.op in ("min", "max") else value
    where = parse(QueryFilter, data)
    return None if where.empty() else where


def _bound(flag: str, text: str, op: str) -> int | None:
    """One end of a range flag: "40-60", "60-" or "-40" (inclusive)."""
    low, sep, high = text.strip().partition("-")
    try:
        if not sep:
            raise ValueError
        end = low if op == "min" else high
        return int(end) if end.strip() else None
    except ValueError:
        raise InputError(f"{flag} takes a range such as 40-60, 60- or -40, got {text!r}") from None
