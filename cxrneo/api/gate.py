"""The door of `cxrneo serve`: the token and the size of a request are checked from its headers, before
any route runs or any byte of its body is read, so an unauthenticated or oversized request costs
the server nothing.

* With a token, every path but the page's own files and /health needs `Authorization: Bearer
  <token>` (OpenAPI's /docs and /openapi.json too); a request without it is answered 401 at once.
* A declared Content-Length above the limit is answered 413 at once; a body without one (chunked)
  is counted while it streams and cut off at the limit (the route sees a 413, nothing more is read).

Answers are the service's one-line JSON errors.
"""

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/", "/health")  # the page itself and the liveness answer
OPEN_PREFIXES = ("/static/",)  # the page's scripts, styles and vendored library: no data


class BodyTooLarge(HTTPException):
    """Raised into the route that reads past the limit (rendered as the service's 413 JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request larger than {limit} bytes")


def authorised(headers: dict[str, str], token: str | None) -> bool:
    """No token set, or the request carries exactly it as a bearer token (compared in constant time)."""
    if not token:
        return True
    got = headers.get("authorization", "")
    return got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _reply(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """ASGI middleware: token and size checks from the headers, a counted body; see the module docstring."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self._open(scope.get("path", "")) and not authorised(headers, self.token):
            await _reply(send, 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"})
            return
        declared = headers.get("content-length", "").strip()  # a malformed one never gets here: the server refuses it
        if declared.isdigit() and int(declared) > self.max_body:
            await _reply(send, 413, f"request larger than {self.max_body} bytes")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        await self.app(scope, counted, send)
