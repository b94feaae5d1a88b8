"""The service's door over real HTTP (uvicorn on loopback, raw sockets): refusals come from the headers,
before a byte of the body is read; a chunked body is cut off at the limit."""

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxrneo.access.authenticate import Authenticator
from cxrneo.api.gate import Gate
from tests.serving import Running

TOKEN = "gate-token-" + "z" * 12
LIMIT = 64 * 1024


def _app(token: str | None, seen: dict[str, int]) -> FastAPI:
    """A tiny app behind the gate, whose route counts the calls and the bytes it was given."""
    app = FastAPI()
    app.add_middleware(Gate, access=Authenticator(token=token), max_body=LIMIT)

    @app.exception_handler(StarletteHTTPException)
    async def _error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        seen["calls"] += 1
        async for chunk in request.stream():
            seen["read"] += len(chunk)
        return {"read": seen["read"]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _Server(Running):
    def __init__(self, token: str | None) -> None:
        self.seen = {"calls": 0, "read": 0}
        super().__init__(_app(token, self.seen))

    @property
    def calls(self) -> int:
        return self.seen["calls"]

    @property
    def read(self) -> int:
        return self.seen["read"]


@pytest.fixture(params=[TOKEN, None], ids=["token", "no-token"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[_Server, str | None]]:
    with _Server(request.param) as s:
        yield s, request.param


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def _send_head(port: int, path: str, extra: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n{extra}\r\n".encode())
    return sock


def test_a_huge_upload_is_refused_from_its_headers(server: tuple[_Server, str | None]) -> None:
    s, token = server
    gigabyte = 1 << 30
    cases = [("", 401 if token else 413)]  # no token (when one is set): refused before the size even matters
    if token:
        cases.append((f"Authorization: Bearer {TOKEN}\r\n", 413))
        cases.append(("Authorization: Bearer wrong\r\n", 401))
    for auth, code in cases:
        with _send_head(s.port, "/upload", f"{auth}Content-Length: {gigabyte}\r\n") as sock:  # headers only
            status, doc = _answer(sock)  # answered although not one byte of the 1 GB was sent
        assert status == code and set(doc) == {"error"} and "\n" not in doc["error"]
    assert s.calls == 0 and s.read == 0  # no route ran, nothing was read


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[_Server, str | None]) -> None:
    s, token = server
    auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
    with _send_head(s.port, "/upload", f"{auth}Transfer-Encoding: chunked\r\n") as sock:
        chunk = b"x" * 16384
        try:
            for _ in range(64):  # 1 MiB offered, 64 KiB allowed
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server stopped listening: as it should
        status, doc = _answer(sock)
    assert status == 413 and "larger than" in doc["error"]
    assert s.calls == 1 and s.read <= LIMIT  # the route never saw more than the limit


def test_small_requests_and_open_paths_pass(server: tuple[_Server, str | None]) -> None:
    s, token = server
    auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
    with _send_head(s.port, "/upload", f"{auth}Content-Length: 5\r\n") as sock:
        sock.sendall(b"hello")
        assert _answer(sock) == (200, {"read": 5})
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # no token needed
        assert _answer(sock) == (200, {"status": "ok"})
