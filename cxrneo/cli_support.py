"""What every cxrneo command shares: the settings built once, and one-line errors."""

import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import click
import typer

from cxrneo.errors import CxrneoError
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
