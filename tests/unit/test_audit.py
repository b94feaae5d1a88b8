"""The audit trail: the hash chain and what `verify` names when an entry is edited, removed or moved;
group commit under concurrent appends; one writer per file; a writer killed with SIGKILL; a torn tail
cut away and recorded; file modes; `cxrneo audit verify` / `show`; the syslog copy into a real rsyslogd."""

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cxrneo.access.audit import AuditError, AuditTrail, read, verify
from cxrneo.access.chain import GENESIS, digest
from cxrneo.cli.main import app

REPO = Path(__file__).resolve().parents[2]
RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.access("/usr/sbin/rsyslogd", os.X_OK) else None)


def _request(i: int, user: str = "ann", patients: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {"user": user, "role": "viewer", "auth": "key", "client": "127.0.0.1", "method": "GET",
            "route": "/images/{id}", "query": "", "ids": [f"img{i}"], "patients": patients or [f"p{i}"],
            "status": 200, "request": f"r{i}", **more}


def _trail(path: Path, n: int) -> Path:
    with AuditTrail(path) as trail:
        for i in range(n):
            trail.append_sync(_request(i))
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def _edit(path: Path, seq: int, rehash: bool = False, **fields: Any) -> None:
    lines = _lines(path)
    entry = json.loads(lines[seq - 1])
    entry.update(fields)
    if rehash:
        entry["hash"] = digest(entry)
    lines[seq - 1] = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    _write(path, lines)


def test_the_chain_verifies_and_links_each_entry(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 5)
    verdict = verify(path)
    assert (verdict.ok, verdict.entries, verdict.first_bad) == (True, 5, None)
    assert verdict.summary == "ok: 5 entries, chain intact"
    entries = [json.loads(line) for line in _lines(path)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert all(e["hash"] == digest(e) for e in entries)
    assert entries[0]["time"].endswith("Z") and entries[0]["user"] == "ann"


def test_an_edited_entry_is_named(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 30)
    _edit(path, 17, patients=["someone-else"])
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad, verdict.reason) == (False, 17, "entry 17 was edited")


def test_an_edit_with_its_hash_recomputed_is_named(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 30)
    _edit(path, 17, rehash=True, user="mallory")
    verdict = verify(path)
    assert not verdict.ok and verdict.first_bad == 17
    assert verdict.reason.startswith("entry 17 was edited")


def test_the_last_entry_edited_is_caught(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 10)
    _edit(path, 10, status=404)
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad, verdict.reason) == (False, 10, "entry 10 was edited")


def test_a_removed_entry_is_named(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 30)
    lines = _lines(path)
    del lines[17]  # seq 18
    _write(path, lines)
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad, verdict.reason) == (False, 18, "entry 18 is missing (after 17)")


def test_a_removed_first_entry_is_named(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 5)
    _write(path, _lines(path)[1:])
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad, verdict.reason) == (False, 1, "entry 1 is missing (at the start)")


def test_swapped_entries_are_named(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 30)
    lines = _lines(path)
    lines[19], lines[20] = lines[20], lines[19]  # seq 20 and 21
    _write(path, lines)
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad) == (False, 20)
    assert verdict.reason == "entries out of order at line 20 (seq 21 before 20)"


def test_a_line_that_is_not_an_entry_fails(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 5)
    lines = _lines(path)
    lines.insert(2, "not json\n")
    _write(path, lines)
    verdict = verify(path)
    assert (verdict.ok, verdict.first_bad, verdict.reason) == (False, 3, "line 3 is not a valid entry")


def test_concurrent_appends_are_group_committed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def many(trail: AuditTrail) -> list[int]:
        return await asyncio.gather(*(trail.append(_request(i)) for i in range(200)))

    with AuditTrail(path) as trail:
        seqs = asyncio.run(many(trail))
        batches = trail.batches
    assert sorted(seqs) == list(range(1, 201))
    assert 1 <= batches < 200
    assert verify(path).entries == 200
    written = {json.loads(line)["request"]: json.loads(line)["seq"] for line in _lines(path)}
    assert written == {f"r{i}": seq for i, seq in enumerate(seqs)}  # each caller got its own entry's seq


def test_a_second_writer_is_refused_and_the_chain_continues(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 3)
    with AuditTrail(path) as trail:
        with pytest.raises(AuditError, match="is in use by another process"):
            AuditTrail(path)
        assert trail.append_sync(_request(3)) == 4
    assert verify(path).summary == "ok: 4 entries, chain intact"


def test_the_writer_sets_its_own_fields_only(tmp_path: Path) -> None:
    with AuditTrail(tmp_path / "audit.jsonl") as trail:
        with pytest.raises(AuditError, match="may not set seq"):
            trail.append_sync({"user": "ann", "seq": 7})
        with pytest.raises(AuditError, match="plain JSON"):
            trail.append_sync({"user": "ann", "when": datetime.now(UTC)})
    with pytest.raises(AuditError, match="is closed"):
        trail.append_sync({"user": "ann"})


def test_the_file_is_private(tmp_path: Path) -> None:
    path = _trail(tmp_path / "new" / "audit" / "audit.jsonl", 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = _trail(tmp_path / "real.jsonl", 1)
    (tmp_path / "link.jsonl").symlink_to(target)
    with pytest.raises(AuditError, match="symbolic link"):
        AuditTrail(tmp_path / "link.jsonl")


CHILD = """
import sys
from pathlib import Path
from cxrneo.access.audit import AuditTrail
trail = AuditTrail(Path(sys.argv[1]))
while True:
    seq = trail.append_sync({"user": "child", "ids": [str(i) for i in range(40)], "patients": ["p"]})
    print(seq, flush=True)
"""


def test_a_writer_killed_mid_stream_leaves_a_trail_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout is not None
        acknowledged = 0
        while acknowledged < 50:
            line = child.stdout.readline()
            assert line, "the child stopped before writing 50 entries"
            acknowledged = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    verdict = verify(path)
    assert verdict.ok, verdict.reason
    assert verdict.entries >= acknowledged  # everything acknowledged is there
    torn = "torn" in verdict.reason
    with AuditTrail(path) as trail:
        seq = trail.append_sync(_request(0))
    assert seq == verdict.entries + (2 if torn else 1)
    assert verify(path).summary == f"ok: {seq} entries, chain intact"


def test_a_torn_tail_is_reported_then_cut_and_recorded(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 5)
    torn = b'{"hash":"ab12","patients":["p9"],"seq":6,"ti'
    with path.open("ab") as f:
        f.write(torn)
    verdict = verify(path)
    assert verdict.ok and verdict.entries == 5
    assert verdict.summary == f"ok: 5 entries, chain intact, last line torn by a crash: {len(torn)} bytes"
    with AuditTrail(path) as trail:
        assert trail.append_sync(_request(6)) == 7
    entries = list(read(path))
    assert {k: entries[5][k] for k in ("seq", "event", "dropped_bytes")} == \
        {"seq": 6, "event": "recovered", "dropped_bytes": len(torn)}
    assert verify(path).summary == "ok: 7 entries, chain intact"


def test_an_unparsable_last_line_is_cut_and_recorded(tmp_path: Path) -> None:
    path = _trail(tmp_path / "audit.jsonl", 3)
    with path.open("ab") as f:
        f.write(b"\x00\x00\x00\n")
    assert verify(path).reason == "line 4 is not a valid entry"
    with AuditTrail(path):
        pass
    last = list(read(path))[-1]
    assert (last["seq"], last["event"], last["dropped_bytes"]) == (4, "recovered", 4)
    assert verify(path).ok


def test_read_filters(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path) as trail:
        trail.append_sync(_request(0, user="ann", patients=["p1", "p2"], time="2024-01-01T08:00:00.000Z"))
        trail.append_sync(_request(1, user="bob", patients=["p2"], time="2024-03-01T08:00:00.000Z"))
        trail.append_sync(_request(2, user="ann", patients=["p3"], time="2024-06-01T08:00:00.000Z"))
    assert [e["seq"] for e in read(path, user="ann")] == [1, 3]
    assert [e["seq"] for e in read(path, patient="p2")] == [1, 2]
    assert [e["seq"] for e in read(path, since=datetime(2024, 2, 1))] == [2, 3]
    assert [e["seq"] for e in read(path, user="ann", since=datetime(2024, 2, 1, tzinfo=UTC))] == [3]


@pytest.fixture()
def runner_env(tmp_path: Path) -> dict[str, str]:
    return {"CXRNEO_DATA_DIR": str(tmp_path / "data"), "CXRNEO_DEBUG": "0"}


def test_cli_verify_exit_codes(tmp_path: Path, runner_env: dict[str, str]) -> None:
    path = _trail(tmp_path / "audit.jsonl", 12)
    ok = CliRunner().invoke(app, ["audit", "verify", str(path)], env=runner_env)
    assert (ok.exit_code, ok.stdout.strip()) == (0, "ok: 12 entries, chain intact")
    _edit(path, 9, user="mallory")
    bad = CliRunner().invoke(app, ["audit", "verify", str(path)], env=runner_env)
    assert (bad.exit_code, bad.output.strip()) == (1, "entry 9 was edited")
    missing = CliRunner().invoke(app, ["audit", "verify", str(tmp_path / "none.jsonl")], env=runner_env)
    assert missing.exit_code == 1 and missing.output.startswith("error: no audit trail at")


def test_cli_show_filters(tmp_path: Path, runner_env: dict[str, str]) -> None:
    path = tmp_path / "data" / "audit" / "audit.jsonl"  # the default file of the settings
    with AuditTrail(path) as trail:
        trail.append_sync(_request(0, user="ann", patients=["p1"], time="2024-01-01T08:00:00.000Z"))
        trail.append_sync(_request(1, user="bob", patients=["p1", "p2"], time="2024-03-01T08:00:00.000Z"))
        trail.append_sync(_request(2, user="carol", patients=["p3"], time="2024-06-01T08:00:00.000Z"))

    def show(*args: str) -> list[str]:
        result = CliRunner().invoke(app, ["audit", "show", *args], env=runner_env)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    table = show()
    assert table[0].split() == ["time", "user", "role", "client", "route", "status", "#ids", "patients"]
    assert [row.split()[1] for row in table[1:]] == ["ann", "bob", "carol"]
    assert table[2].split()[-2:] == ["1", "p1,p2"]
    assert [json.loads(x)["user"] for x in show("--json", "--patient", "p1")] == ["ann", "bob"]
    assert [json.loads(x)["user"] for x in show("--json", "--user", "carol")] == ["carol"]
    assert [json.loads(x)["user"] for x in show("--json", "--since", "2024-02-15")] == ["bob", "carol"]
    assert [json.loads(x)["user"] for x in show(str(path), "--json", "--since", "2024-03-01T09:00+01:00")] == \
        ["bob", "carol"]
    bad = CliRunner().invoke(app, ["audit", "show", "--since", "last week"], env=runner_env)
    assert bad.exit_code == 1 and bad.output.startswith("error: not an ISO date or time")


def test_syslog_down_never_fails_a_request(tmp_path: Path) -> None:
    port = _free_port()
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path, syslog=f"tcp://127.0.0.1:{port}") as trail:
        assert [trail.append_sync(_request(i)) for i in range(5)] == [1, 2, 3, 4, 5]
        assert trail.relay is not None
    assert trail.relay.sent == 0
    assert verify(path).entries == 5


@pytest.mark.parametrize("url", ["http://x:1", "udp://host", "tcp://:514", "udp://h:99999"])
def test_a_bad_syslog_address_is_one_line(tmp_path: Path, url: str) -> None:
    with pytest.raises(Exception, match="bad syslog address") as caught:
        AuditTrail(tmp_path / "audit.jsonl", syslog=url)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "audit.jsonl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="line" type="string" string="%syslogfacility% %syslogseverity% %app-name% %msgid% %msg%\\n")
action(type="omfile" file="{out}" template="line")
"""


@pytest.fixture()
def rsyslogd(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """A private rsyslogd (udp port, tcp port, the file it writes), stopped afterwards."""
    if RSYSLOGD is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog; scripts/setup.sh does)")
    work, out = tmp_path / "rsyslog", tmp_path / "received.log"
    work.mkdir()
    udp, tcp = _free_port(), _free_port()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, udp=udp, tcp=tcp, out=out), encoding="utf-8")
    daemon = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "pid")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _await(lambda: _accepts(tcp) or daemon.poll() is not None, "rsyslogd to listen")
        assert daemon.poll() is None, "rsyslogd stopped at start"
        yield udp, tcp, out
    finally:
        daemon.terminate()
        daemon.wait(30)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _await(done: Any, what: str, limit_s: float = 30) -> None:
    """Wait (polling) until done() is true; a bound against hanging, not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _received(out: Path) -> list[str]:
    return out.read_text(encoding="utf-8").splitlines() if out.exists() else []


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_entries_reach_a_real_rsyslogd(tmp_path: Path, rsyslogd: tuple[int, int, Path], transport: str) -> None:
    udp, tcp, out = rsyslogd
    path = tmp_path / "audit.jsonl"
    port = tcp if transport == "tcp" else udp
    with AuditTrail(path, syslog=f"{transport}://127.0.0.1:{port}") as trail:
        trail.append_sync(_request(0, patients=["p-é"]))
        trail.append_sync(_request(1, status=401))
        trail.append_sync(_request(2, status=404))
    relay = trail.relay
    assert relay is not None
    _await(lambda: len(_received(out)) >= 3 and relay.sent == 3, "rsyslogd to write three messages")
    written = list(read(path))
    got = []
    for line in _received(out):
        facility, severity, app_name, msgid, msg = line.split(" ", 4)
        got.append((int(facility), int(severity), app_name, msgid, json.loads(msg)))
    assert got == [(10, 6, "cxrneo", "audit", written[0]), (10, 4, "cxrneo", "audit", written[1]),
                   (10, 5, "cxrneo", "audit", written[2])]
    assert (relay.sent, relay.errors, relay.dropped) == (3, 0, 0)
