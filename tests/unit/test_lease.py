"""Who may take over a writer lease: only a provably dead holder on this host (or the TTL)."""

import os
import socket
import subprocess
import sys

from cxrneo.db import lease


def _owner(pid: int, start: str | None, host: str | None = None) -> dict[str, object]:
    return {"owner": f"{host or lease.process_table()}:{pid}:{start}:abc123", "command": "ingest", "pid": pid,
            "host": host, "since": 1_000, "heartbeat": 4_000, "now": 6_000}


def test_a_live_process_on_this_host_is_not_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not lease.holder_is_dead(_owner(child.pid, lease._start_time(child.pid)))
    finally:
        child.kill()
        child.wait()
    assert lease.holder_is_dead(_owner(child.pid, "whatever"))  # gone


def test_a_reused_pid_is_dead() -> None:
    me = os.getppid()  # alive, but started at another time than the lease says
    assert lease.holder_is_dead(_owner(me, "1"))


def test_another_host_is_never_presumed_dead() -> None:
    assert not lease.holder_is_dead(_owner(1, "1", host="some-other-host"))


def test_the_same_hostname_in_another_pid_namespace_is_not_judged_by_our_pids() -> None:
    """Two containers sharing a hostname: a holder's pid means nothing in our process table, so a
    pid that is dead (or someone else) here must not make the holder look dead."""
    host, boot, namespace = lease.process_table().split("/")
    assert host == socket.gethostname() and namespace.isdigit() and boot != "?"
    elsewhere = f"{host}/{boot}/{int(namespace) + 1}"
    assert not lease.holder_is_dead(_owner(1, "1", host=elsewhere))  # pid 1 here started at another time
    assert not lease.holder_is_dead(_owner(999_999, "1", host=elsewhere))  # no such pid here
    assert not lease.holder_is_dead(_owner(999_999, "1", host=socket.gethostname()))  # the old format
    assert lease.holder_is_dead(_owner(999_999, "1"))  # the same process table: provably gone


def test_a_dropped_lease_of_this_process_is_dead_a_held_one_is_not() -> None:
    row = _owner(os.getpid(), lease._start_time(os.getpid()))
    assert lease.holder_is_dead(row)
    lease._ACTIVE.add(str(row["owner"]))
    try:
        assert not lease.holder_is_dead(row)
    finally:
        lease._ACTIVE.discard(str(row["owner"]))


def test_the_holder_is_described_in_one_line() -> None:
    text = lease.describe(_owner(42, "1", host="h"))
    assert text == "`cxrneo ingest` (pid 42 on host h, for 5 s, last heartbeat 2 s ago)"
