"""Every answer that is not a success: one line of JSON `{"error": ...}` with its status, never a stack
trace; and the OpenAPI entries that document them."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxrneo.errors import (
    BusyError,
    ConfigError,
    CxrneoError,
    DatabaseError,
    InputError,
    NotFoundError,
    NotReadyError,
    PacsError,
    ServiceError,
    TooLargeError,
)

log = logging.getLogger("cxrneo.api")
WORDS = {400: "Bad request", 401: "Missing, wrong, expired or revoked credential",
         403: "The caller's role (or the service's set-up) does not allow this", 404: "Not found", 413: "Too large",
         422: "Invalid parameter", 502: "The PACS refused or cannot be reached",
         503: "Busy, past its deadline, or the graph is not ready"}
COMMON = (401, 422, 503)  # what any route that reads the archive may answer


class ErrorAnswer(BaseModel):
    """Every error: one line, never a stack trace."""

    error: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route may give (all ErrorAnswer)."""
    return {c: {"model": ErrorAnswer, "description": WORDS[c]} for c in codes}


def status_of(e: CxrneoError) -> int:
    """The HTTP status of one of cxrneo's errors."""
    if isinstance(e, PacsError):
        return 502
    if isinstance(e, NotReadyError | DatabaseError | ServiceError):
        return 503
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, TooLargeError):
        return 413
    if isinstance(e, ConfigError | InputError):
        return 400
    return 500


def one_line(text: str) -> str:
    return " ".join(text.split())[:500]


async def _cxrneo_error(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, CxrneoError)
    headers = {"Retry-After": str(e.retry_after)} if isinstance(e, BusyError) else None
    return JSONResponse({"error": one_line(str(e))}, status_code=status_of(e), headers=headers)


async def _http_error(_: Request, e: Exception) -> JSONResponse:
    """Ours and the router's (404, 405): one JSON line each."""
    assert isinstance(e, StarletteHTTPException)
    headers = {"WWW-Authenticate": "Bearer"} if e.status_code == 401 else None
    return JSONResponse({"error": one_line(str(e.detail))}, status_code=e.status_code, headers=headers)


async def _invalid(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError)
    first = e.errors()[0] if e.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return JSONResponse({"error": one_line(f"{where + ': ' if where else ''}{first.get('msg', 'bad request')}")},
                        status_code=422)


async def _unexpected(_: Request, e: Exception) -> JSONResponse:
    log.exception("unexpected error")
    return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as one JSON line."""
    app.add_exception_handler(CxrneoError, _cxrneo_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _unexpected)
