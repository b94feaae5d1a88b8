"""The one seam between the routes and the rest: everything a route needs arrives as a FastAPI
dependency read from the app's state, so that a test overrides it (`app.dependency_overrides`).

* `Archive`: the shared Searcher (it follows the graph's generations per request).
* `Config`: the service's settings (upload limit, links).
* `Work`: the bounded workers for heavy work, with the request deadline.
* `Monitoring`: the app's Prometheus metrics (cxrneo/api/monitor.py).
* `Caller`: who is asking (the gate identified them, cxrneo/api/gate.py); `MaybeCaller` on open routes.
* `Audit`: the note a route fills for the audit trail (what it showed).
* `need(role)`: a router's dependency that lets only callers of that role or above in (403 otherwise),
  the one place roles are checked; `permit(permission)` the same for a permission (cxrneo.access.identity).
* `Writer`: the PACS a route may store in, when the service was started with `--dicomweb` and
  `--pacs-write` (403 otherwise: the PACS link is read-only by default).

Each is a coroutine function although none awaits: FastAPI runs a plain function dependency in a worker
thread, a round trip per dependency and request, where these only read the app's or the request's state.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cxrneo.access.identity import Identity, Permission, Role
from cxrneo.api.monitor import Monitor
from cxrneo.api.notes import Note
from cxrneo.pacs.dicomweb import DicomWeb
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import Workers


@dataclass(frozen=True)
class ApiSettings:
    """How this service answers: its upload limit and the links it offers the page."""

    max_upload_bytes: int = 20 << 20
    browser_url: str | None = None
    viewer_url: str | None = None
    pacs_write: bool = False  # `serve --pacs-write`: key objects may be stored in the PACS of --dicomweb


async def searcher(request: Request) -> Searcher:
    found: Searcher = request.app.state.searcher
    return found


async def settings(request: Request) -> ApiSettings:
    found: ApiSettings = request.app.state.settings
    return found


async def workers(request: Request) -> Workers:
    found: Workers = request.app.state.workers
    return found


async def monitor(request: Request) -> Monitor:
    found: Monitor = request.app.state.monitor
    return found


async def identity(request: Request) -> Identity | None:
    """The caller as the gate identified them (None: no good credential, on an open route)."""
    found: Identity | None = getattr(request.state, "identity", None)
    return found


async def caller(who: Annotated[Identity | None, Depends(identity)]) -> Identity:
    """The caller of a route that needs one (401 without; the gate answers first, this guards the rest)."""
    if who is None:
        raise HTTPException(401, "missing or wrong bearer credential")
    return who


async def note(request: Request) -> Note:
    """The route's audit note (a fresh, unrecorded one where the service keeps no trail)."""
    found: Note | None = getattr(request.state, "audit", None)
    return found if found is not None else Note()


def need(role: Role) -> Callable[[Identity], Awaitable[Identity]]:
    """A dependency that admits callers of ``role`` or above (403 otherwise)."""
    async def admitted(who: Annotated[Identity, Depends(caller)]) -> Identity:
        if who.role < role:
            raise HTTPException(403, f"{who.name} has the {who.role.label} role; this needs {role.label}")
        return who
    return admitted


def permit(permission: Permission) -> Callable[[Identity], Awaitable[Identity]]:
    """A dependency that admits callers whose role is granted ``permission`` (403 otherwise)."""
    async def admitted(who: Annotated[Identity, Depends(caller)]) -> Identity:
        if not who.may(permission):
            raise HTTPException(403, f"{who.name} has the {who.role.label} role; {permission.value} needs "
                                     f"{permission.role.label} or above")
        return who
    return admitted


async def writer(request: Request) -> DicomWeb:
    """The PACS this service may store in (403 when it was not started to write to one)."""
    found: DicomWeb | None = getattr(request.app.state.searcher, "pacs", None)
    if found is None or not (await settings(request)).pacs_write:
        raise HTTPException(403, "this service does not write to the PACS: start it with --dicomweb URL --pacs-write")
    return found


Archive = Annotated[Searcher, Depends(searcher)]
Config = Annotated[ApiSettings, Depends(settings)]
Work = Annotated[Workers, Depends(workers)]
Monitoring = Annotated[Monitor, Depends(monitor)]
Caller = Annotated[Identity, Depends(caller)]
MaybeCaller = Annotated[Identity | None, Depends(identity)]
Audit = Annotated[Note, Depends(note)]
Writer = Annotated[DicomWeb, Depends(writer)]
