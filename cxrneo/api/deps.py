"""The one seam between the routes and the rest: everything a route needs arrives as a FastAPI
dependency read from the app's state, so that a test overrides it (`app.dependency_overrides`) and
the next concern (roles, the audit trail) is one more dependency.

* `Archive`: the shared Searcher (it follows the graph's generations per request).
* `Config`: the service's settings (token, upload limit, links).
* `Work`: the bounded workers for heavy work, with the request deadline.
* `Caller`: who is asking; a route that reads the archive depends on it (401 without the token).
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cxrneo.api.gate import authorised
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import Workers


@dataclass(frozen=True)
class ApiSettings:
    """How this service answers: its token, its upload limit and the links it offers the page."""

    token: str | None = None
    max_upload_bytes: int = 20 << 20
    browser_url: str | None = None
    viewer_url: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who is asking: with a token set, a caller that presented it; without one, anyone (loopback)."""

    name: str
    authenticated: bool


def searcher(request: Request) -> Searcher:
    found: Searcher = request.app.state.searcher
    return found


def settings(request: Request) -> ApiSettings:
    found: ApiSettings = request.app.state.settings
    return found


def workers(request: Request) -> Workers:
    found: Workers = request.app.state.workers
    return found


def identity(request: Request, config: Annotated[ApiSettings, Depends(settings)]) -> Identity | None:
    """The caller, or None when a token is set and the request does not carry it."""
    if not config.token:
        return Identity("anyone", authenticated=False)
    return Identity("token holder", authenticated=True) if authorised(dict(request.headers), config.token) else None


def caller(who: Annotated[Identity | None, Depends(identity)]) -> Identity:
    """The caller of a route that reads the archive (401 without the token)."""
    if who is None:
        raise HTTPException(401, "missing or wrong bearer token")
    return who


Archive = Annotated[Searcher, Depends(searcher)]
Config = Annotated[ApiSettings, Depends(settings)]
Work = Annotated[Workers, Depends(workers)]
Caller = Annotated[Identity, Depends(caller)]
MaybeCaller = Annotated[Identity | None, Depends(identity)]
