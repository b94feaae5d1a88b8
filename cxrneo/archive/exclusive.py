"""One `cxrneo watch` per codes file: an exclusive, non-blocking flock on a lock file beside it.

Two watches on one codes file would share its parts file (FILE-new.npz) and its appends, and could
attach codes to the wrong ids. The second is refused at once, naming the holder's pid. The lock
belongs to the open file, so the kernel drops it when its process ends, kill -9 included: no stale
lock is ever left to clear by hand (the lock file itself stays; it holds only the last pid).
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cxrneo.errors import ConfigError, InputError


def lock_path(codes_file: Path) -> Path:
    """The lock file of a codes file: beside the real file (a symlink or another spelling of the
    path finds the same lock), named by its stem as the parts file is."""
    real = Path(codes_file).expanduser().resolve()
    return real.with_name(f".{real.stem}.watch-lock")


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return text if text.isdigit() else "?"


@contextmanager
def watching(codes_file: Path) -> Iterator[Path]:
    """Hold the codes file's watch lock for the block, or raise ConfigError in one line when
    another process holds it. Yields the lock file's path."""
    lock = lock_path(codes_file)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise InputError(f"cannot open the watch lock {lock}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another cxrneo watch is using {codes_file} (pid {_holder(fd)})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield lock
    finally:
        os.close(fd)
