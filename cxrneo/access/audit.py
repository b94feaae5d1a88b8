"""The audit trail: the record, kept by the service, of who was shown which patient's data.

`AuditTrail` is the one writer of a trail file (an exclusive lock says so). Every `append` returns only
once its entry is on disk (written and fsync'd): a request is answered only after its access is on
record. Entries of many concurrent requests are group-committed: one writer thread takes every entry
pending, numbers and chains them, writes them with one write() and one fsync(), and then wakes all
their callers; ``batches`` counts those rounds. The file format and `verify` / `read` are in
cxrneo.access.chain; the optional syslog copy in cxrneo.access.relay.
"""

import asyncio
import errno
import fcntl
import os
import stat
import threading
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from types import TracebackType
from typing import Any

from cxrneo.access.chain import (
    GENESIS,
    WRITER_FIELDS,
    AuditError,
    Verdict,
    canonical,
    digest,
    now,
    parse_line,
    read,
    verify,
)
from cxrneo.access.relay import Relay

__all__ = ["AuditError", "AuditTrail", "Verdict", "read", "verify"]

CHUNK = 65536  # bytes read at a time when looking for the last line


def _open_locked(path: Path) -> int:
    """The trail file opened for appending and exclusively locked; its folder made 0700 and the file
    0600 when they are new. A symbolic link is refused (the trail is where the settings say)."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
            os.chmod(path.parent, 0o700)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        why = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror or str(e)
        raise AuditError(f"cannot open the audit trail {path}: {why}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AuditError(f"cannot open the audit trail {path}: not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AuditError(f"audit trail {path} is in use by another process") from None
        os.fchmod(fd, 0o600)
        _sync_folder(path.parent)
    except OSError as e:
        os.close(fd)
        raise AuditError(f"cannot open the audit trail {path}: {e.strerror or e}") from None
    except AuditError:
        os.close(fd)
        raise
    return fd


def _sync_folder(folder: Path) -> None:
    """Make a new file's name in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _line_start(fd: int, end: int) -> int:
    """Where the line holding byte ``end - 1`` starts: just after the last newline before ``end``."""
    pos = end
    while pos > 0:
        step = min(CHUNK, pos)
        found = os.pread(fd, step, pos - step).rfind(b"\n")
        if found >= 0:
            return pos - step + found + 1
        pos -= step
    return 0


def _torn_tail(fd: int, size: int) -> int | None:
    """Where a torn last line starts (no newline, or not an entry), or None when the tail is whole."""
    if os.pread(fd, 1, size - 1) != b"\n":
        return _line_start(fd, size)
    start = _line_start(fd, size - 1)
    return start if parse_line(os.pread(fd, size - 1 - start, start)) is None else None


def _recover(fd: int, path: Path) -> tuple[int, str, int, int]:
    """(last seq, last hash, file size, bytes cut) of an opened trail, a torn last line (a batch a crash
    cut short, never acknowledged) cut away first."""
    size = os.fstat(fd).st_size
    cut = _torn_tail(fd, size) if size else None
    dropped = 0
    if cut is not None:
        os.ftruncate(fd, cut)
        os.fsync(fd)
        dropped, size = size - cut, cut
    if size == 0:
        return 0, GENESIS, 0, dropped
    start = _line_start(fd, size - 1)
    entry = parse_line(os.pread(fd, size - 1 - start, start))
    if entry is None:
        raise AuditError(f"the audit trail {path} ends in a damaged entry: see `cxrneo audit verify {path}`")
    return int(entry["seq"]), str(entry["hash"]), size, dropped


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _settle(future: "Future[int]", seq: int | None, error: Exception | None = None) -> None:
    """Give a waiter its seq (or the error); one that gave up waiting is left alone."""
    try:
        if error is None:
            future.set_result(seq or 0)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass


class AuditTrail:
    """The writer of one trail file (see the module's docstring). Opening locks the file, continues
    its chain, and cuts away a torn last line, recording that as an entry ``{"event": "recovered",
    "dropped_bytes": N}``. ``syslog``: ``udp://host:port`` or ``tcp://host:port`` also gets a copy of
    every entry (cxrneo.access.relay). Use `close` (or ``with``) to flush and unlock."""

    def __init__(self, path: Path, syslog: str | None = None) -> None:
        self.path = path
        self.batches = 0  # write + fsync rounds so far
        self._cond = threading.Condition()
        self._pending: list[tuple[dict[str, Any], Future[int]]] = []
        self._closing = False
        self.relay = Relay(syslog) if syslog else None  # a bad address fails before the file is touched
        try:
            self._fd = _open_locked(path)
        except AuditError:
            self._stop_relay()
            raise
        try:
            self._seq, self._prev, self._size, dropped = _recover(self._fd, path)
        except (OSError, AuditError) as e:
            os.close(self._fd)
            self._stop_relay()
            if isinstance(e, OSError):
                raise AuditError(f"cannot read the audit trail {path}: {e.strerror or e}") from None
            raise
        self._thread = threading.Thread(target=self._run, name="cxrneo-audit", daemon=True)
        self._thread.start()
        if dropped:
            self.append_sync({"event": "recovered", "dropped_bytes": dropped})

    async def append(self, entry: dict[str, Any]) -> int:
        """Record an entry; returns its seq once it is durable on disk. An entry handed over is written
        even when the caller is cancelled meanwhile. AuditError when the trail cannot take it."""
        return await asyncio.shield(asyncio.wrap_future(self._submit(entry)))

    def append_sync(self, entry: dict[str, Any]) -> int:
        """`append` for callers without an event loop: blocks until the entry is durable."""
        return self._submit(entry).result()

    def close(self) -> None:
        """Write what is pending, stop the writer (and the syslog copy), unlock the file."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._stop_relay()
        os.close(self._fd)

    def __enter__(self) -> "AuditTrail":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _submit(self, entry: dict[str, Any]) -> "Future[int]":
        """Check an entry and queue it for the writer thread."""
        reserved = [k for k in WRITER_FIELDS if k in entry]
        if reserved:
            raise AuditError(f"an audit entry may not set {', '.join(reserved)}: the trail sets them")
        fields = dict(entry)
        try:
            canonical(fields)
        except (TypeError, ValueError) as e:
            raise AuditError(f"an audit entry must be plain JSON: {e}") from None
        future: Future[int] = Future()
        with self._cond:
            if self._closing:
                raise AuditError(f"audit trail {self.path} is closed")
            self._pending.append((fields, future))
            self._cond.notify()
        return future

    def _run(self) -> None:
        """The writer thread: each round takes every pending entry and commits them together."""
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            try:
                self._commit(batch)
            except Exception as e:  # noqa: BLE001 - no waiter may hang on a writer that died
                for _, future in batch:
                    _settle(future, None, AuditError(f"could not write the audit trail {self.path}: {e}"))

    def _commit(self, batch: list[tuple[dict[str, Any], "Future[int]"]]) -> None:
        """Number, chain, write and fsync one batch, then wake its waiters."""
        entries, data, prev = [], bytearray(), self._prev
        for number, (fields, _) in enumerate(batch, start=self._seq + 1):
            entry = {"time": now(), **fields, "seq": number, "prev": prev}
            entry["hash"] = prev = digest(entry)
            entries.append(entry)
            data += canonical(entry) + b"\n"
        try:
            _write_all(self._fd, bytes(data))
            os.fsync(self._fd)
        except OSError as e:
            self._undo()
            error = AuditError(f"could not write the audit trail {self.path}: {e.strerror or e}")
            for _, future in batch:
                _settle(future, None, error)
            return
        self._seq, self._prev, self._size = self._seq + len(batch), prev, self._size + len(data)
        self.batches += 1
        for entry, (_, future) in zip(entries, batch, strict=True):
            _settle(future, int(entry["seq"]))
            if self.relay is not None:
                self.relay.offer(entry)

    def _stop_relay(self) -> None:
        if self.relay is not None:
            self.relay.close()

    def _undo(self) -> None:
        """Cut a batch that failed half-way, so the file ends where the chain does."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass
