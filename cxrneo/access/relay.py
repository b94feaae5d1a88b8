"""A copy of each audit entry for a syslog server (a SIEM, or the hospital's central log): the witness
that the file alone cannot be (an attacker who can rewrite the file cannot recall what was sent).

Messages are RFC 5424: facility authpriv (10, "security/authorization messages (private)"; rsyslog's
usual rules keep it in a restricted file), APP-NAME ``cxrneo``, MSGID ``audit``, no structured data,
and the entry as MSG (its canonical JSON with non-ASCII characters escaped, so the MSG needs no BOM).
Severity: info for an answered request (status below 400), notice for other refusals, warning for a
failed authentication or authorization (401, 403) and for a trail recovered after a crash.

``udp://host:port`` sends one datagram per entry (an entry over the datagram limit is an error);
``tcp://host:port`` uses octet-counting framing (RFC 6587). The link is plain: point it at a local or
loopback syslog that forwards over TLS. Sending never holds up the audit writer: entries wait in a
bounded queue for a thread of their own; when it is full they are dropped and counted (``dropped``),
and failed sends are counted too (``errors``).
"""

import json
import os
import queue
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from cxrneo.errors import ConfigError

FACILITY = 10  # authpriv
QUEUE = 10_000  # entries waiting to be sent, at most
TIMEOUT_S = 2.0  # connect / send timeout of the TCP link


def severity(entry: dict[str, Any]) -> int:
    """The RFC 5424 severity of an entry: 4 warning, 5 notice, 6 info."""
    status = entry.get("status")
    if status in (401, 403) or entry.get("event") == "recovered":
        return 4
    if isinstance(status, int) and status >= 400:
        return 5
    return 6


def message(entry: dict[str, Any], host: str, pid: int) -> bytes:
    """The RFC 5424 message of an entry (without transport framing)."""
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    stamp = str(entry.get("time") or "-")
    return f"<{FACILITY * 8 + severity(entry)}>1 {stamp} {host} cxrneo {pid} audit - {body}".encode("ascii")


def _address(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``udp://host:port`` or ``tcp://host:port``; ConfigError otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or not port or parts.path not in ("", "/"):
        raise ConfigError(f"bad syslog address {url!r}: use udp://host:port or tcp://host:port")
    return parts.scheme, parts.hostname, port


def _hostname() -> str:
    """This machine's name as RFC 5424 allows it (printable ASCII, no spaces), or "-"."""
    name = socket.gethostname()
    ok = name and len(name) <= 255 and all(33 <= ord(c) <= 126 for c in name)
    return name if ok else "-"


class Relay:
    """Sends entries to one syslog server from a thread of its own; `offer` never blocks."""

    def __init__(self, url: str) -> None:
        self.scheme, self.host, self.port = _address(url)
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE)
        self._socket: socket.socket | None = None
        self._me = (_hostname(), os.getpid())
        self._thread = threading.Thread(target=self._run, name="cxrneo-audit-syslog", daemon=True)
        self._thread.start()

    def offer(self, entry: dict[str, Any]) -> None:
        """Queue an entry for sending; dropped (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def close(self, wait_s: float = TIMEOUT_S) -> None:
        """Send what is queued (for at most about ``wait_s`` seconds more) and stop."""
        try:
            self._queue.put(None, timeout=wait_s)
        except queue.Full:
            pass
        self._thread.join(wait_s)
        self._disconnect()

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            try:
                self._send(message(entry, *self._me))
                self.sent += 1
            except (OSError, ValueError):
                self.errors += 1
                self._disconnect()

    def _send(self, data: bytes) -> None:
        if self._socket is None:
            self._socket = self._connect()
        if self.scheme == "udp":
            self._socket.send(data)
        else:
            self._socket.sendall(b"%d " % len(data) + data)

    def _connect(self) -> socket.socket:
        if self.scheme == "tcp":
            return socket.create_connection((self.host, self.port), timeout=TIMEOUT_S)
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
        return sock

    def _disconnect(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
