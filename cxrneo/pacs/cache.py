"""The instances `cxrneo serve --dicomweb` retrieved to show them: a private folder bounded in bytes.

Each instance is kept as ``<sha256 of its SOPInstanceUID>.dcm`` (no UID chooses a file name), written
by `DicomWeb.retrieve` to a temporary ``.part-`` name, synced and renamed, so a crash never leaves a
partial file under a final name; a temporary file is never served, and one left by a crash is
removed once it is an hour old. A kept file that is empty or cannot be read is a miss: it is removed
and the instance fetched again.

Use is tracked by each file's access time, which the cache sets itself on every hit (whatever the
mount's atime policy); after each retrieval the least recently used files are removed until the
folder holds at most ``max_bytes`` (the file just retrieved is kept even when it alone is larger).
Several services may share the folder: every step tolerates a file removed by another one.
"""

import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

from cxrneo.errors import ConfigError
from cxrneo.pacs.dicomweb import PART, DicomWeb, Instance
from cxrneo.pacs.uid import check_uid
from cxrneo.records import CacheUse

DEFAULT_MB = 2048
STALE_SECONDS = 3600  # a temporary file older than this was left by a crash


class InstanceCache:
    """Instances of one PACS kept in ``folder`` (None: a private temporary folder, made on first use);
    safe to share between threads."""

    def __init__(self, client: DicomWeb, folder: Path | None, max_bytes: int = DEFAULT_MB << 20) -> None:
        if max_bytes < 1:
            raise ConfigError(f"the PACS instance cache needs a positive bound, got {max_bytes} bytes")
        self.client = client
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._clock = 0  # the last access time given, in ns: strictly increasing within this process
        self.hits = self.misses = self.failed = 0  # lookups kept / retrieved, and retrievals that failed
        self._held: int | None = None  # bytes in the folder after the last eviction (None: not counted yet)
        self._files = 0

    def file(self, inst: Instance) -> Path:
        """The DICOM file of ``inst``: the kept one (its use recorded), else retrieved over WADO-RS,
        after which the folder is brought back within its bound."""
        check_uid(inst.sop, "bad SOPInstanceUID")
        path = self._root() / f"{hashlib.sha256(inst.sop.encode()).hexdigest()[:32]}.dcm"
        if self._usable(path):
            self._touch(path)
            self._count("hits")
            return path
        self._count("misses")
        try:
            self.client.retrieve(inst, path)
        except BaseException:
            self._count("failed")
            raise
        self._touch(path)
        self.evict(keep=path.name)
        return path

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def use(self) -> CacheUse:
        """Bytes and instances kept against the bound (counted once on first call, then as of the last
        eviction), hits and misses (retrievals) so far."""
        if self._held is None and self.folder is not None and self.folder.is_dir():
            self.evict(remove=False)
        return CacheUse("bytes", self._held or 0, self.max_bytes, self._files, self.hits, self.misses)

    def _root(self) -> Path:
        with self._lock:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="cxrneo-pacs-"))
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            return self.folder

    def _usable(self, path: Path) -> bool:
        """Whether ``path`` is a kept instance to serve: a non-empty regular file that opens; anything
        else under that name (empty, unreadable, a link, a folder) is removed."""
        try:
            st = path.lstat()
        except FileNotFoundError:
            return False
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            try:
                with open(path, "rb") as f:
                    if f.read(1):
                        return True
            except OSError:
                pass
        _remove(path)
        return False

    def _touch(self, path: Path) -> None:
        """Record a use of ``path``: its access time set to now (later than any given before); its
        modification time is kept (the rendered PNGs are keyed by it)."""
        with self._lock:
            self._clock = max(self._clock + 1, time.time_ns())
            now = self._clock
        try:
            os.utime(path, ns=(now, path.stat().st_mtime_ns))
        except FileNotFoundError:
            pass

    def evict(self, keep: str = "", remove: bool = True) -> int:
        """Remove the least recently used instances until the folder holds at most ``max_bytes``
        (never the file named ``keep``), and temporary files left by a crash; the bytes held after
        (``remove`` false: only count them)."""
        kept: list[tuple[int, str, int]] = []
        root = self._root()
        now = time.time()
        with self._lock, os.scandir(root) as entries:
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if e.name.startswith(PART):
                    if remove and now - st.st_mtime > STALE_SECONDS:
                        _remove(root / e.name)
                elif e.name.endswith(".dcm") and stat.S_ISREG(st.st_mode):
                    kept.append((st.st_atime_ns, e.name, st.st_size))
            held = sum(size for _, _, size in kept)
            files = len(kept)
            for _, name, size in sorted(kept):
                if held <= self.max_bytes or not remove:
                    break
                if name != keep:
                    _remove(root / name)
                    held, files = held - size, files - 1
            self._held, self._files = held, files
        return held


def _remove(path: Path) -> None:
    """Remove a file, a link or a folder; gone already is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
