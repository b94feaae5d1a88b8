"""A tiny DICOMweb server on loopback for the PACS tests: QIDO-RS answers listing the instances it is
given (whatever their UIDs, ``../../evil`` included), WADO-RS answers with their bodies, and every
request it got recorded with its headers. It may instead redirect every request to another address
(``redirect``), which is how the credential tests see what a redirect carries."""

import json
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = "/dicom-web"
MOVED = "/moved"


def _tag(tag: str, vr: str, value: str) -> dict[str, Any]:
    return {tag: {"vr": vr, "Value": [value]}}


@dataclass
class Seen:
    """One request as the server got it."""

    path: str
    headers: dict[str, str]


@dataclass
class FakePacs:
    """``instances``: (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of DX images, each answered
    over WADO-RS with ``bodies[sop]`` (default: b"DICM-<sop>") as application/dicom."""

    instances: Sequence[tuple[str, str, str]] = ()
    bodies: dict[str, bytes] = field(default_factory=dict)
    redirect: str | None = None  # an origin every request is sent on to (under /moved), with 302
    tls: ssl.SSLContext | None = None  # serve https with this server context
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> "FakePacs":
        pacs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                pacs.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, kind, body, extra = pacs.answer(self.path)
                self.send_response(status)
                for k, v in {"Content-Type": kind, "Content-Length": str(len(body)), **extra}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.origin = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.url = self.origin + ROOT
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def retrieved(self) -> list[str]:
        """The SOPInstanceUIDs asked over WADO-RS, in order."""
        return [unquote(s.path.split("/instances/")[1]) for s in self.seen if "/instances/" in s.path]

    def answer(self, raw: str) -> tuple[int, str, bytes, dict[str, str]]:
        """(status, content type, body, more headers) for a GET of ``raw``."""
        if self.redirect is not None and not raw.startswith(MOVED):
            return 302, "text/plain", b"", {"Location": self.redirect + MOVED + raw}
        path = unquote(urlsplit(raw).path).removeprefix(MOVED).removeprefix(ROOT)
        parts = path.strip("/").split("/")
        dicom_json = "application/dicom+json"
        if parts == ["studies"]:
            studies = dict.fromkeys(s for s, _, _ in self.instances)
            return 200, dicom_json, json.dumps([_tag("0020000D", "UI", s) for s in studies]).encode(), {}
        if len(parts) == 3 and parts[2] == "series":
            series = dict.fromkeys(se for s, se, _ in self.instances if s == parts[1])
            doc = [{**_tag("0020000E", "UI", se), **_tag("00080060", "CS", "DX")} for se in series]
            return 200, dicom_json, json.dumps(doc).encode(), {}
        if len(parts) == 5 and parts[4] == "instances":
            sops = [_tag("00080018", "UI", i) for s, se, i in self.instances if (s, se) == (parts[1], parts[3])]
            return 200, dicom_json, json.dumps(sops).encode(), {}
        if len(parts) >= 6 and parts[4] == "instances":
            sop = "/".join(parts[5:])
            return 200, "application/dicom", self.bodies.get(sop, f"DICM-{sop}".encode()), {}
        return 404, "text/plain", b"no such resource", {}
