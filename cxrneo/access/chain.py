"""The audit trail's file format, and reading it back: one JSON entry per line, each chained to the one
before by a SHA-256 hash, so that an entry edited, removed or moved shows (`verify`).

An entry is the caller's fields (for the HTTP service: user, role, auth, client, method, route, query,
ids, patients, status, request) plus four the writer sets:

* ``seq``: 1, 2, 3, ... in file order, no gaps;
* ``time``: UTC, ISO-8601 with milliseconds ("2025-01-31T09:15:02.123Z"), unless the caller gave one;
* ``prev``: the previous entry's ``hash`` (64 zeros for the first entry);
* ``hash``: SHA-256 (hex) of the entry's canonical JSON without ``hash``.

Canonical JSON: sorted keys, no spaces, UTF-8 (not escaped), no NaN. A line is the canonical JSON of
the whole entry and a newline. A last line without its newline is a write a crash cut short (never
acknowledged to anyone): `verify` reports it but does not fail, and the writer cuts it away on open.

The chain proves the file was not changed in its middle; an edit of the last entry shows too (its own
hash). Removing or re-hashing the last entries cannot show in the file alone: the copy sent to syslog
(cxrneo.access.relay) is the witness for those.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxrneo.errors import CxrneoError, InputError, NotFoundError

GENESIS = "0" * 64  # the ``prev`` of the first entry
WRITER_FIELDS = ("seq", "prev", "hash")  # set by the writer only


class AuditError(CxrneoError):
    """The audit trail cannot be opened or written: in use by another service, unreadable, a write
    that failed. A service that cannot keep its access record must not serve patient data."""


@dataclass(frozen=True)
class Verdict:
    """What `verify` found. ``first_bad`` is the 1-based line number of the first bad entry (None when
    the chain is intact); ``reason`` says what is wrong, naming the entry by its seq."""

    ok: bool
    entries: int
    first_bad: int | None
    reason: str

    @property
    def summary(self) -> str:
        """One line for people: "ok: N entries, chain intact" or the finding."""
        return f"ok: {self.entries} entries, {self.reason}" if self.ok else self.reason


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical JSON of an entry (sorted keys, compact, UTF-8)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(entry: dict[str, Any]) -> str:
    """SHA-256 hex of the entry's canonical JSON without its ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def now() -> str:
    """The current UTC time as entries carry it (ISO-8601, milliseconds, "Z")."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time ("2025-01-31", "2025-01-31T09:15", "...+01:00"); without a zone it is
    UTC, as the trail's times are. InputError for anything else."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"not an ISO date or time: {text!r} (e.g. 2025-01-31 or 2025-01-31T09:15)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """One line's entry (without its newline), or None when it is not a JSON object with an integer
    ``seq`` and string ``prev`` and ``hash``."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    seq = entry.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    if not isinstance(entry.get("prev"), str) or not isinstance(entry.get("hash"), str):
        return None
    return entry


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without newline, whether it ended in a newline) of the file; no lock."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFoundError(f"no audit trail at {path}") from None
    except OSError as e:
        raise AuditError(f"cannot read the audit trail {path}: {e.strerror or e}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            whole = raw.endswith(b"\n")
            yield number, raw[:-1] if whole else raw, whole


class _Checker:
    """The chain as far as read: the next seq expected and the hash it must link to."""

    def __init__(self) -> None:
        self.expected = 1
        self.prev = GENESIS

    def check(self, number: int, entry: dict[str, Any], next_seq: int | None) -> tuple[int, str] | None:
        """The first bad line and what is wrong (None when this entry continues the chain);
        ``next_seq`` is the seq on the following line, which tells a swap from a removal."""
        problem = self._problem(number, entry, next_seq)
        if problem is None:
            self.expected, self.prev = entry["seq"] + 1, entry["hash"]
            return None
        return problem

    def _problem(self, number: int, entry: dict[str, Any], next_seq: int | None) -> tuple[int, str] | None:
        seq: int = entry["seq"]
        if digest(entry) != entry["hash"]:
            return number, f"entry {seq} was edited" if seq == self.expected else \
                f"entry at line {number} (seq {seq}, expected {self.expected}) was edited"
        if seq > self.expected and next_seq is not None and next_seq < seq:
            return number, f"entries out of order at line {number} (seq {seq} before {next_seq})"
        if seq > self.expected:
            after = f"after {self.expected - 1}" if self.expected > 1 else "at the start"
            gone = f"entry {self.expected} is" if seq == self.expected + 1 else \
                f"entries {self.expected} to {seq - 1} are"
            return number, f"{gone} missing ({after})"
        if seq < self.expected:
            return number, f"entries out of order at line {number} (seq {seq} after {self.expected - 1})"
        if entry["prev"] != self.prev:  # the entry before was edited and its hash recomputed
            return (number - 1, f"entry {seq - 1} was edited (entry {seq} links to another hash)") if seq > 1 \
                else (number, "entry 1 does not start the chain (its prev is not zeros)")
        return None


def verify(path: Path) -> Verdict:
    """Check the whole chain: each hash, each prev link, seq continuity, every line parses. Names the
    FIRST entry edited, removed or reordered. A torn last line (no newline) is reported, not failed."""
    checker = _Checker()
    lines = _lines(path)
    current = next(lines, None)
    entries = 0
    while current is not None:
        following = next(lines, None)
        number, raw, whole = current
        if not whole:  # only the last line can lack its newline
            return Verdict(True, entries, None, f"chain intact, last line torn by a crash: {len(raw)} bytes")
        entry = parse_line(raw)
        if entry is None:
            return Verdict(False, entries, number, f"line {number} is not a valid entry")
        after = parse_line(following[1]) if following is not None and following[2] else None
        problem = checker.check(number, entry, after["seq"] if after is not None else None)
        if problem is not None:
            return Verdict(False, entries, *problem)
        entries += 1
        current = following
    return Verdict(True, entries, None, "chain intact")


def _matches(entry: dict[str, Any], user: str | None, patient: str | None, since: datetime | None) -> bool:
    """Whether an entry passes the filters of `read`."""
    if user is not None and entry.get("user") != user:
        return False
    if patient is not None:
        patients = entry.get("patients")
        if not isinstance(patients, list) or patient not in {str(p) for p in patients}:
            return False
    if since is not None:
        try:
            when = parse_time(str(entry.get("time", "")))
        except InputError:
            return False
        return when >= since
    return True


def read(path: Path, user: str | None = None, patient: str | None = None,
         since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The entries, in file order, that match every filter given: ``user`` exactly, ``patient`` one of
    the entry's ``patients`` (compared as text), ``since`` at or after that time (naive: UTC). Needs no
    lock (a torn last line, a write in progress, is skipped); AuditError for a line that is not an
    entry (`cxrneo audit verify` says more)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for number, raw, whole in _lines(path):
        if not whole:
            return
        entry = parse_line(raw)
        if entry is None:
            raise AuditError(f"line {number} of {path} is not a valid entry: run cxrneo audit verify")
        if _matches(entry, user, patient, since):
            yield entry
