"""What every cxrneo command shares: the settings built once, and one-line errors."""

import os
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer

from cxrneo.errors import CxrneoError

if TYPE_CHECKING:
    from cxrneo.request import QueryFilter
from cxrneo.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if present), cpu or cuda.")]

# The filter flags, one set for every command that narrows a search (query, evaluate).
FindingOpt = Annotated[list[str] | None, typer.Option("--finding", help=(
    "Only images that show this finding (repeatable: all of them; 'No Finding' for none)."))]
AnyFindingOpt = Annotated[list[str] | None, typer.Option("--any-finding", help=(
    "Only images that show at least one of these findings (repeatable)."))]
WithoutOpt = Annotated[list[str] | None, typer.Option("--without", help="Never images that show this finding (repeatable).")]
SexOpt = Annotated[str | None, typer.Option("--sex", help="Only this patient sex: M or F.")]
AgeOpt = Annotated[str | None, typer.Option("--age", help="Only patients of this age range: 40-60, 60- or -40.")]
ViewOpt = Annotated[list[str] | None, typer.Option("--view", help="Only this view position (repeatable: any of; PA, AP).")]
SplitOpt = Annotated[list[str] | None, typer.Option("--split", help="Only this dataset split (repeatable: any of).")]
PatientOpt = Annotated[list[str] | None, typer.Option("--patient", help="Only this patient's images (repeatable).")]
NotPatientOpt = Annotated[list[str] | None, typer.Option("--not-patient", help="Never this patient's images (repeatable).")]
CommunityOpt = Annotated[list[int] | None, typer.Option("--community", help="Only this community (repeatable).")]


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


def where(**flags: Any) -> "QueryFilter | None":
    """The filter of the shared filter flags (finding, any_finding, without, sex, age, view, split,
    patient, not_patient, community), validated; None when none is given."""
    from cxrneo.request import filter_of

    names = {"finding": "findings", "any_finding": "any_findings", "view": "views", "split": "splits",
             "patient": "patients", "not_patient": "not_patients", "community": "communities"}
    return filter_of(**{names.get(k, k): v for k, v in flags.items()})
