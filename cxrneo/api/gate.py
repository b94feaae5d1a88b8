"""The door of `cxrneo serve`: what can be decided from a request's headers is decided here, before any
route runs or any byte of its body is read, so a refused request costs the server nothing.

* **Host**: a request naming a host the service does not answer for (DNS rebinding: a web page
  reaching the loopback service through its own name) gets 400.
* **Who**: every path but the page's own files and /health needs a bearer credential
  (cxrneo/access/authenticate.py); without a good one, 401 at once, and the refusal is audited.
* **Size**: a declared Content-Length above the limit is answered 413 at once; a body without one
  (chunked) is counted while it streams and cut off at the limit.
* **Record**: a request that shows patient data (cxrneo/api/notes.py) has its audit entry on disk
  before the first byte of its answer leaves; if the trail cannot take it, 503 and no data.
* **Browser rules**: every answer carries nosniff, no-referrer, a Content-Security-Policy allowing only
  the service's own scripts, styles and images and no framing, and (but the page's static files)
  ``Cache-Control: no-store``.

Refusals are the service's one-line JSON errors.
"""

import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from fastapi import HTTPException

from cxrneo.access.authenticate import Authenticator
from cxrneo.access.identity import Identity
from cxrneo.api.notes import Note, Trail, audited, entry
from cxrneo.errors import AuthError, CxrneoError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/", "/health")  # the page itself and the liveness answer
OPEN_PREFIXES = ("/static/",)  # the page's scripts, styles and vendored library: no data
DOCS = ("/docs", "/redoc", "/docs/oauth2-redirect")  # FastAPI's documentation pages load their library from a CDN
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class BodyTooLarge(HTTPException):
    """Raised into the route that reads past the limit (rendered as the service's 413 JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request larger than {limit} bytes")


def host_of(header: str) -> str:
    """The host name of a Host header, without its port or IPv6 brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _browser_rules(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The answer's headers with the browser rules set (replacing any the route set)."""
    ours = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"no-referrer",
            b"content-security-policy": (DOCS_CSP if path in DOCS else CSP).encode()}
    if not path.startswith(OPEN_PREFIXES):
        ours[b"cache-control"] = b"no-store"
    return [(k, v) for k, v in headers if k.lower() not in ours] + list(ours.items())


async def _reply(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """ASGI middleware: host, credential and size checks from the headers, a counted body, the audit
    entry before the answer, the browser rules on every answer; see the module docstring."""

    def __init__(self, app: ASGIApp, access: Authenticator, max_body: int, hosts: frozenset[str] = LOOPBACK_NAMES,
                 trail: Trail | None = None) -> None:
        self.app, self.access, self.max_body, self.hosts, self.trail = app, access, max_body, hosts, trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = scope.get("path", ""), _headers(scope)
        state = scope.setdefault("state", {})
        state["request"] = uuid.uuid4().hex[:16]
        send = self._ruled(path, send)
        if host_of(headers.get("host", "")) not in self.hosts:
            await _reply(send, 400, "this service does not answer for that Host (serve --allowed-host)")
            return
        who, why, status = (None, None, 401) if path.startswith(OPEN_PREFIXES) else \
            await self._identify(headers.get("authorization", ""))
        state["identity"] = who
        if who is None and not (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)):
            await self._record(scope, None, status, None, why)
            await _reply(send, status, why or "missing bearer credential",
                         {"www-authenticate": "Bearer"} if status == 401 else None)
            return
        declared = headers.get("content-length", "").strip()  # a malformed one never gets here: the server refuses it
        if declared.isdigit() and int(declared) > self.max_body:
            await _reply(send, 413, f"request larger than {self.max_body} bytes")
            return
        if audited(path) and self.trail is not None:
            state["audit"] = Note()
            send = self._recorded(scope, who, send)
        await self.app(scope, self._counted(receive), send)

    async def _identify(self, authorization: str) -> tuple[Identity | None, str | None, int]:
        """(the caller, or None with why and the status: 401 a bad credential, 503 the service cannot check)."""
        try:
            return await anyio.to_thread.run_sync(self.access.identify, authorization), None, 200
        except AuthError as e:
            return None, str(e), 401
        except CxrneoError as e:  # e.g. an unreadable user list: nobody is let in
            return None, f"cannot check credentials now: {e}", 503

    async def _record(self, scope: Scope, who: Identity | None, status: int, note: Note | None,
                      refused: str | None = None) -> int | None:
        if self.trail is None:
            return None
        return await self.trail.append(entry(dict(scope), who, status, note, refused))

    def _ruled(self, path: str, send: Send) -> Send:
        async def ruled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _browser_rules(path, list(message.get("headers", [])))
            await send(message)
        return ruled

    def _recorded(self, scope: Scope, who: Identity | None, send: Send) -> Send:
        """``send`` that writes the request's audit entry before its answer starts; when the trail cannot
        take it, the answer is replaced by a 503 and its body dropped."""
        withheld = False

        async def recorded(message: Message) -> None:
            nonlocal withheld
            if message["type"] == "http.response.start":
                try:
                    seq = await self._record(scope, who, int(message["status"]), scope["state"].get("audit"))
                except Exception as e:  # noqa: BLE001 - any failure to record withholds the answer
                    withheld = True
                    await _reply(send, 503, f"the audit trail cannot record this request, answer withheld: {e}"
                                 .splitlines()[0])
                    return
                message["headers"] = [*message.get("headers", []), (b"x-audit-entry", str(seq).encode())]
            elif withheld:
                return
            await send(message)
        return recorded

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message
        return counted
