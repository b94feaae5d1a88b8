"""The service's log as JSON lines (`cxrneo serve --log-format json`): one line per request, and the
service's own warnings and errors as lines of the same kind, on stderr or in a file (`--log-file`).

A request's line: ``time`` (UTC, when it arrived), ``request`` (the id its audit entry carries),
``route`` (the route's template, never the path asked for), ``method``, ``status``, ``ms``,
``retrieval`` (a query's method, else null) and ``user`` (null when none was identified). Nothing else:
no query string, image, patient or file name; which patient was shown is the audit trail's business
(cxrneo/access/audit.py), and its entry carries the same ``request`` id.

A warning or error: ``time``, ``level``, ``logger``, ``message`` and, with an exception, its type
and where it was raised (module and line), never its text, which may quote what was asked.
"""

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

REQUEST_FIELDS = ("time", "request", "route", "method", "status", "ms", "retrieval", "user")


def stamp(t: float) -> str:
    """A time.time() value as ISO 8601 UTC with milliseconds."""
    whole = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1000):03d}Z"


class LogSink:
    """Where the JSON lines go: a stream written one whole line at a time (safe to share between threads)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._owned = False
        self.lost = 0  # lines that could not be written

    @classmethod
    def open(cls, path: Path | None) -> "LogSink":
        """stderr, or ``path`` appended to (made readable by its owner only; a rotation that moves it
        away needs a restart, one that truncates it in place does not)."""
        if path is None:
            return cls(sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        sink = cls(os.fdopen(fd, "a", encoding="utf-8"))
        sink._owned = True
        return sink

    def write(self, doc: dict[str, Any]) -> None:
        """One line; a log that cannot be written (a full disk) loses it and counts it, the request goes on."""
        line = json.dumps(doc, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                self.lost += 1

    def request(self, start: float, request: str | None, route: str, method: str, status: int, seconds: float,
                retrieval: str | None, user: str | None) -> None:
        """One request's line (``start``: time.time() when it arrived)."""
        self.write({"time": stamp(start), "request": request, "route": route, "method": method, "status": status,
                    "ms": round(seconds * 1e3, 3), "retrieval": retrieval, "user": user})

    def close(self) -> None:
        if self._owned:
            self.stream.close()


class JsonRecords(logging.Handler):
    """The service's log records (uvicorn's, cxrneo's) as JSON lines in a sink; see the module docstring."""

    def __init__(self, sink: LogSink, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            doc: dict[str, Any] = {"time": stamp(record.created), "level": record.levelname.lower(),
                                   "logger": record.name, "message": record.getMessage()}
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                doc["error"] = type(error).__name__
                tb = error.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                if tb is not None:
                    doc["where"] = f"{tb.tb_frame.f_globals.get('__name__', '?')}:{tb.tb_lineno}"
            self.sink.write(doc)
        except Exception:  # noqa: BLE001 - logging never breaks the service
            self.handleError(record)


def install(sink: LogSink) -> JsonRecords:
    """Send every warning and error of the process (uvicorn, cxrneo, the drivers) to ``sink`` as JSON lines,
    in place of the root logger's handlers; returns the handler (remove it to undo)."""
    handler = JsonRecords(sink)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    return handler
