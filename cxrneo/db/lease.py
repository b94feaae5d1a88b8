"""One writer per database: a lease node claimed in a transaction, with owner and heartbeat.

`ingest`, `communities` and `db reset` hold the lease while they write. A second writer is
refused at once with the holder's command, host, pid and age. A lease left behind by a killed
process is taken over safely: at once when its holder ran on this host and that process is gone
(pid and process start time checked), else once its heartbeat is older than the TTL (the
server's clock decides, so clocks of different hosts do not matter).

"This host" means one process table: the hostname together with the boot id and the PID
namespace, so two containers sharing a hostname never judge each other's pids.

The lease fences its writers: a holder writes through `Lease.db`, whose every write transaction
first checks, under the lease node's lock, that the holder still owns the lease (cypher/
check_writer_fence.cypher). A writer paused past the TTL whose lease was taken over cannot commit
another batch: its next write is rolled back with LeaseLostError.
"""

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cxrneo.db.connection import Database, LeaseLostError
from cxrneo.errors import DatabaseError

TTL_S = 60.0  # a holder on another host whose heartbeat is older than this is presumed dead
HEARTBEAT_S = 10.0
_ACTIVE: set[str] = set()  # owners held by this process (a dropped one of ours is stale)


def _start_time(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), None when it does not exist."""
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_table() -> str:
    """Which process table a pid belongs to: hostname, boot id and PID namespace (pids of another
    boot or another namespace, such as a container with the same hostname, are not ours to judge)."""
    def read(path: str, link: bool = False) -> str:
        try:
            return os.readlink(path) if link else open(path, encoding="ascii").read().strip()
        except OSError:
            return "?"
    namespace = "".join(ch for ch in read("/proc/self/ns/pid", link=True) if ch.isdigit()) or "?"
    boot = read("/proc/sys/kernel/random/boot_id")[:8]
    return f"{socket.gethostname()}/{boot}/{namespace}"


def _owner() -> str:
    pid = os.getpid()
    return f"{process_table()}:{pid}:{_start_time(pid) or '?'}:{uuid.uuid4().hex[:12]}"


def holder_is_dead(row: dict[str, Any]) -> bool:
    """True when the lease holder ran in this process table and is provably gone (or is a dropped
    lease of this very process). A holder elsewhere, or of an unknown format, is judged by the TTL."""
    owner = str(row.get("owner") or "")
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != process_table() or "?" in parts[0]:
        return False
    pid = int(parts[1]) if parts[1].isdigit() else -1
    if pid == os.getpid() and parts[2] == (_start_time(pid) or "?"):
        return owner not in _ACTIVE
    return pid <= 0 or _start_time(pid) != parts[2]


def describe(row: dict[str, Any]) -> str:
    """`cxrneo ingest` (pid 123 on host h, for 5 s, last heartbeat 2 s ago)."""
    now = int(row.get("now") or 0)
    age = (now - int(row.get("since") or now)) / 1e3
    beat = (now - int(row.get("heartbeat") or now)) / 1e3
    return (f"`cxrneo {row.get('command')}` (pid {row.get('pid')} on host {row.get('host')}, "
            f"for {age:.0f} s, last heartbeat {beat:.0f} s ago)")


class LeaseHeldError(DatabaseError):
    """Another writer holds the database's writer lease."""


@dataclass
class Lease:
    """A held writer lease; a daemon thread keeps its heartbeat fresh. Write through `db`: it is
    fenced by this lease (a write after a takeover raises LeaseLostError, nothing committed)."""

    db: Database
    owner: str
    command: str
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.db.write("renew_writer_lease", owner=self.owner)[0]["held"]:
                    self.lost = True
                    return
            except LeaseLostError:
                self.lost = True
                return
            except BaseException:  # noqa: BLE001 - a missed beat is retried; the TTL is 6 beats
                continue

    def check(self) -> None:
        """Raise when the lease was taken over (this writer was presumed dead): stop writing."""
        if self.lost:
            raise DatabaseError(f"`cxrneo {self.command}` lost its writer lease to another writer; stopped")


def claim(db: Database, command: str, ttl_s: float = TTL_S, dead: str = "") -> Lease:
    """Claim the writer lease or raise LeaseHeldError naming the holder. `dead`: an owner the
    caller knows is gone (the lease a dump held, found in the database loaded from that dump)."""
    db.auto("create_writer_lease_constraint")
    owner = _owner()
    held = db.read("fetch_writer_lease")
    gone = bool(held) and (holder_is_dead(held[0]) or (dead != "" and held[0]["owner"] == dead))
    stale = str(held[0]["owner"]) if gone else ""
    row = db.write("claim_writer_lease", owner=owner, command=command, host=socket.gethostname(),
                   pid=os.getpid(), stale=stale, ttlMs=int(ttl_s * 1e3))[0]
    if not row["claimed"]:
        raise LeaseHeldError(
            f"another writer holds this database: {describe(row)}; wait for it to finish "
            f"(a lease of a killed process on another host expires {ttl_s:.0f} s after its last heartbeat)"
        )
    _ACTIVE.add(owner)
    lease = Lease(db.fenced(owner), owner, command)
    threading.Thread(target=lease._beat, name="cxrneo-lease", daemon=True).start()
    return lease


def release(lease: Lease) -> None:
    lease._stop.set()
    _ACTIVE.discard(lease.owner)
    try:
        lease.db.write("release_writer_lease", owner=lease.owner)
    except DatabaseError:
        pass  # unreachable database: the lease expires, or the next writer on this host recovers it


@contextmanager
def writer_lease(db: Database, command: str, dead: str = "") -> Iterator[Lease]:
    """Hold the database's writer lease for the block (released on exit, error or not)."""
    lease = claim(db, command, dead=dead)
    try:
        yield lease
    finally:
        release(lease)
