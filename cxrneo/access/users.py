"""Named users and their API keys, kept in one JSON file (`cxrneo users`; checked by the service).

A key reads ``cxrneo_<keyid>_<secret>``: the key id (8 letters and digits) finds the user, the secret
(``secrets.token_urlsafe(32)``, 256 random bits) proves it. The file keeps, per key, only a random
salt and SHA-256(salt + secret), never the key or the secret. A fast salted hash is enough here: with
256 random bits no guess list or brute force can find a secret, so a slow password hash would only
cost time on every request. Secrets are compared in constant time.

The file is written whole (a temporary file in the same folder, fsync, rename), 0600 in a folder made
0700; writers (CLI processes) take an flock on ``users.json.lock`` beside it. The service's
:meth:`UserStore.check` stats the file on each call and reads it again only when its (inode, size,
mtime_ns) changed, so a key revoked or rotated by the CLI stops working on the next request.
"""

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cxrneo.access.identity import Identity, Role
from cxrneo.errors import ConfigError, NotFoundError

PREFIX = "cxrneo_"
KEYID_LENGTH = 8
_KEYID_CHARS = string.ascii_letters + string.digits  # no "_": the key splits at the first one after the id
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_MAX_KEY = 200  # longer input is no key of ours: refused before any hashing
_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class User:
    """A user as `cxrneo users list` shows it: no key, no secret, no hash."""

    name: str
    role: Role
    created: datetime
    rotated: datetime | None  # when the current key replaced an earlier one
    revoked: datetime | None  # when the user was revoked (None: active)

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True)
class _Record:
    """A user as the file keeps it: the user, and the salted hash of its one valid key (None once revoked)."""

    user: User
    keyid: str | None
    salt: str  # hex
    digest: str  # hex SHA-256(salt + secret)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("utf-8")).hexdigest()


def _new_key() -> tuple[str, str, str, str]:
    """(key, keyid, salt hex, digest hex) of a fresh random key."""
    keyid = "".join(secrets.choice(_KEYID_CHARS) for _ in range(KEYID_LENGTH))
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return f"{PREFIX}{keyid}_{secret}", keyid, salt.hex(), _digest(salt, secret)


def _split(key: str) -> tuple[str, str] | None:
    """(keyid, secret) of a key's text, None when it is not shaped like one of ours."""
    if len(key) > _MAX_KEY or not key.startswith(PREFIX):
        return None
    keyid, sep, secret = key[len(PREFIX):].partition("_")
    if not sep or len(keyid) != KEYID_LENGTH or not secret:
        return None
    return keyid, secret


def check_name(name: str) -> str:
    """The name when it is 1-64 letters, digits or ``._@-``; ConfigError otherwise."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"bad user name {name!r}: use 1-64 letters, digits or . _ @ -")
    return name


def parse_role(role: Role | str) -> Role:
    """A Role, or a role's name turned into one; ConfigError for an unknown name."""
    if isinstance(role, Role):
        return role
    try:
        return Role.parse(role)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _record_of(item: Any) -> _Record:
    """One entry of the file; KeyError, TypeError or ValueError (ConfigError for a bad name) when it is malformed."""
    created = _time(item["created"])
    if created is None:
        raise ValueError(f"no created time for {item['name']!r}")
    user = User(name=check_name(item["name"]), role=Role.parse(item["role"]), created=created,
                rotated=_time(item["rotated"]), revoked=_time(item["revoked"]))
    keyid = item["keyid"]
    if user.active and not (isinstance(keyid, str) and len(keyid) == KEYID_LENGTH):
        raise ValueError(f"bad key id of {user.name}")
    if user.active and not (len(bytes.fromhex(item["salt"])) == 16 and len(bytes.fromhex(item["digest"])) == 32):
        raise ValueError(f"bad salt or digest of {user.name}")
    return _Record(user, keyid if user.active else None, str(item["salt"]), str(item["digest"]))


def _entry_of(r: _Record) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {"name": r.user.name, "role": r.user.role.label, "created": iso(r.user.created),
            "rotated": iso(r.user.rotated), "revoked": iso(r.user.revoked),
            "keyid": r.keyid, "salt": r.salt, "digest": r.digest}


def _parse(path: Path, text: str) -> dict[str, _Record]:
    """Name -> record of the file's text; a one-line ConfigError naming the file when it is malformed."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("users"), list):
            raise ValueError(f"not a version {_VERSION} users file")
        records = [_record_of(item) for item in data["users"]]
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"malformed users file {path}: {why}") from None
    out = {r.user.name: r for r in records}
    if len(out) != len(records):
        raise ConfigError(f"malformed users file {path}: a name appears twice")
    return out


Signature = tuple[int, int, int]


def _read(path: Path) -> tuple[Signature, dict[str, _Record]] | None:
    """The file's (inode, size, mtime_ns) and records, None when there is no file. Refuses a file that
    others may read or that another user owns (a symlink is refused too)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read users file {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"users file {path} is not a regular file")
        if st.st_uid != os.getuid():
            raise ConfigError(f"users file {path} is not owned by the current user: refused")
        if st.st_mode & 0o077:
            raise ConfigError(f"users file {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):o}): "
                              f"run chmod 600 {path}")
        text = f.read().decode("utf-8", errors="replace")
    return (st.st_ino, st.st_size, st.st_mtime_ns), _parse(path, text)


def _signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read users file {path}: {e.strerror}") from None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _write(path: Path, records: dict[str, _Record], before: Signature | None) -> None:
    """The whole file at once: temporary file (0600) in the same folder, fsync, rename, fsync the folder.

    Its mtime is set past the file it replaces (``before``), so its (inode, size, mtime_ns) differs from
    every earlier version even when the inode number is reused within one tick of the file system clock."""
    text = json.dumps({"version": _VERSION, "users": [_entry_of(r) for r in records.values()]}, indent=1)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            mtime = max(time.time_ns(), before[2] + 1 if before else 0)
            os.utime(f.fileno(), ns=(mtime, mtime))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class UserStore:
    """The users of one file (default: ``Settings.users_file``). Safe to share between the service's
    threads; any number of processes may hold one over the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: Signature | None = None
        self._keys: dict[str, _Record] = {}  # keyid -> record of an active user
        self._active = False

    # --- the service's side: cheap per request ---------------------------------------------

    def check(self, key: str) -> Identity | None:
        """The identity of a valid key of an active user, None for any other text. One stat per call;
        the file is read again only when it changed."""
        parts = _split(key)
        keys = self._current()
        if parts is None:
            return None
        keyid, secret = parts
        record = keys.get(keyid)
        if record is None:  # hash anyway: a missing id costs the same as a wrong secret
            hmac.compare_digest(_digest(b"", secret), "0" * 64)
            return None
        if not hmac.compare_digest(_digest(bytes.fromhex(record.salt), secret), record.digest):
            return None
        return Identity(name=record.user.name, role=record.user.role, kind="key")

    def has_users(self) -> bool:
        """Whether any user is active (the service then asks every request for a key)."""
        self._current()
        return self._active

    def _current(self) -> dict[str, _Record]:
        """Key id -> record, read again when the file's (inode, size, mtime_ns) differs from the last read."""
        with self._lock:
            if _signature(self.path) != self._seen or self._seen is None:
                got = _read(self.path)
                seen, records = got if got is not None else (None, {})
                self._keys = {r.keyid: r for r in records.values() if r.user.active and r.keyid}
                self._active = bool(self._keys)
                self._seen = seen
            return self._keys

    # --- the CLI's side: read, change, write under the lock ---------------------------------

    def list(self) -> list[User]:
        """Every user, revoked ones too, by name."""
        got = _read(self.path)
        return sorted((r.user for r in got[1].values()), key=lambda u: u.name) if got else []

    def add(self, name: str, role: Role | str) -> str:
        """A new user (a revoked name may come back); returns its key, which is kept nowhere."""
        check_name(name)
        level = parse_role(role)

        def change(records: dict[str, _Record]) -> str:
            old = records.get(name)
            if old is not None and old.user.active:
                raise ConfigError(f"user {name} exists: rotate its key or revoke it first")
            key, keyid, salt, digest = _new_key()
            records.pop(name, None)
            records[name] = _Record(User(name, level, _now(), None, None), keyid, salt, digest)
            return key

        return self._change(change)

    def rotate(self, name: str) -> str:
        """A new key for an active user; the old one stops working."""

        def change(records: dict[str, _Record]) -> str:
            old = self._active_record(records, name)
            key, keyid, salt, digest = _new_key()
            records[name] = _Record(replace(old.user, rotated=_now()), keyid, salt, digest)
            return key

        return self._change(change)

    def revoke(self, name: str) -> None:
        """Revoke a user: its key stops working; it stays listed as revoked."""

        def change(records: dict[str, _Record]) -> None:
            old = self._active_record(records, name)
            records[name] = _Record(replace(old.user, revoked=_now()), None, "", "")

        self._change(change)

    @staticmethod
    def _active_record(records: dict[str, _Record], name: str) -> _Record:
        record = records.get(name)
        if record is None:
            raise NotFoundError(f"no user {name!r} (see `cxrneo users list`)")
        if not record.user.active:
            raise ConfigError(f"user {name} is revoked: add it again for a new key")
        return record

    def _change(self, change: Callable[[dict[str, _Record]], T]) -> T:
        """Read the file, change its records, write it whole: all under the writers' lock."""
        with self._writing():
            got = _read(self.path)
            records = dict(got[1]) if got else {}
            out = change(records)
            _write(self.path, records, got[0] if got else None)
        return out

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The folder (made 0700 when new) and an exclusive flock on the lock file beside the users file."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"),
                         os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ConfigError(f"cannot write users file {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
