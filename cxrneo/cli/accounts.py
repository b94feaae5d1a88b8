"""`cxrneo users`: named users and their API keys (kept in CXRNEO_DATA_DIR/users.json; see
cxrneo.access.users). This module is not called users.py: the package keeps one module per name."""

from typing import TYPE_CHECKING, Annotated

import typer

from cxrneo.cli.support import friendly, settings

if TYPE_CHECKING:
    from datetime import datetime

    from cxrneo.access.users import UserStore

users_app = typer.Typer(help="Named users and their API keys (once a user exists, the service asks for a key).",
                        no_args_is_help=True)


def _store(ctx: typer.Context) -> "UserStore":
    from cxrneo.access.users import UserStore

    return UserStore(settings(ctx).users_file)


def _show_key(what: str, key: str) -> None:
    """A line of explanation, then the key alone on the last line of stdout (`| tail -1` gets it)."""
    typer.echo(f"{what}; the key is shown only this once and kept nowhere, store it now:")
    typer.echo(key)


@users_app.command("add")
@friendly
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="1-64 letters, digits or . _ @ -")],
    role: Annotated[str, typer.Option("--role", help="monitor (metrics only), viewer, curator or admin.")],
) -> None:
    """Add a user and print its new API key."""
    from cxrneo.access.users import parse_role

    level = parse_role(role)
    key = _store(ctx).add(name, level)
    _show_key(f"user {name} added as {level.label}", key)


@users_app.command("rotate")
@friendly
def users_rotate(ctx: typer.Context, name: Annotated[str, typer.Argument(help="An active user.")]) -> None:
    """Give a user a new API key; the old key stops working."""
    key = _store(ctx).rotate(name)
    _show_key(f"new key for {name}, the old one no longer works", key)


@users_app.command("revoke")
@friendly
def users_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="An active user.")]) -> None:
    """Revoke a user: its key stops working; it stays listed as revoked."""
    _store(ctx).revoke(name)
    typer.echo(f"user {name} revoked")


@users_app.command("list")
@friendly
def users_list(ctx: typer.Context) -> None:
    """List the users: name, role, created, state (no keys)."""
    users = _store(ctx).list()
    if not users:
        typer.echo("no users (the service asks for no key while there are none)")
        return
    rows = [("NAME", "ROLE", "CREATED", "STATE")]
    for u in users:
        state = (f"revoked {_when(u.revoked)}" if u.revoked else
                 f"active, key rotated {_when(u.rotated)}" if u.rotated else "active")
        rows.append((u.name, u.role.label, _when(u.created), state))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[3])


def _when(t: "datetime | None") -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")
