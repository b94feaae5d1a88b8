"""`cxrneo audit`: check and read the service's audit trail (cxrneo.access.audit). Reading takes no
lock: it works while the service writes. (The module is auditing.py: module names are unique in the
package, and access/audit.py holds the trail.)"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cxrneo.cli.support import friendly, settings

audit_app = typer.Typer(help="Check and read the audit trail: who was shown which patient's data.",
                        no_args_is_help=True)

COLUMNS = ("time", "user", "role", "client", "route", "status", "#ids", "patients")


@audit_app.command("verify")
@friendly
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="The trail file (e.g. CXRNEO_DATA_DIR/audit/audit.jsonl).")],
) -> None:
    """Check the hash chain: exit 0 and "ok: N entries, chain intact", or exit 1 and the first entry
    that was edited, removed or reordered."""
    from cxrneo.access.audit import verify

    verdict = verify(file)
    if not verdict.ok:
        typer.secho(verdict.summary, fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(verdict.summary)


@audit_app.command("show")
@friendly
def show_cmd(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(
        help="The trail file (default: CXRNEO_DATA_DIR/audit/audit.jsonl).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's requests.")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Only requests that showed this patient.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only entries at or after this ISO date or time (UTC unless a zone is given).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry a line instead of a table.")] = False,
) -> None:
    """List the trail's entries, oldest first, filtered by user, patient and time."""
    from cxrneo.access.audit import read
    from cxrneo.access.chain import parse_time

    start = parse_time(since) if since is not None else None
    entries = read(file or settings(ctx).audit_file, user=user, patient=patient, since=start)
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        return
    rows = [_row(e) for e in entries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    for row in [list(COLUMNS), *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _row(entry: dict[str, Any]) -> list[str]:
    """An entry's cells in the table (an event such as a crash recovery shows in the route column)."""
    ids = entry.get("ids")
    patients = entry.get("patients")
    route = entry.get("route") or (f"({entry['event']})" if "event" in entry else "")
    return [str(entry.get("time", "")), str(entry.get("user", "")), str(entry.get("role", "")),
            str(entry.get("client", "")), f"{entry.get('method', '')} {route}".strip(),
            str(entry.get("status", "")), str(len(ids)) if isinstance(ids, list) else "",
            ",".join(map(str, patients)) if isinstance(patients, list) else ""]
