"""The local server is locked down: LOAD CSV confined, true advertised ports, scrubbed JVM
environment, private files, and the initial password never on a command line."""

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from cxrneo.db import server
from cxrneo.db.connection import Database
from cxrneo.errors import DatabaseError
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file:///proc/self/environ",
    "file:///../../../../../etc/passwd",
    "http://127.0.0.1:1/x.csv",
    "https://example.com/x.csv",
])
def test_load_csv_reads_nothing_outside_the_import_folder(
    neo4j_db: Database, local_server: server.ServerConfig, url: str
) -> None:
    with pytest.raises(DatabaseError, match="Cannot load from URL"):
        neo4j_db.read("load_csv_rows", url=url)


def test_load_csv_still_reads_the_import_folder(neo4j_db: Database, local_server: server.ServerConfig) -> None:
    probe = local_server.home / "import" / "probe-cxrneo.csv"
    probe.write_text("a,b\n1,2\n")
    try:
        assert neo4j_db.read("load_csv_rows", url="file:///probe-cxrneo.csv") == [{"rows": 2}]
    finally:
        probe.unlink()


def test_http_discovery_advertises_the_configured_ports(local_server: server.ServerConfig) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{local_server.http_port}/", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["bolt_direct"] == f"bolt://127.0.0.1:{local_server.bolt_port}"
    assert doc["bolt_routing"] == f"neo4j://127.0.0.1:{local_server.bolt_port}"
    assert doc["transaction"].startswith(f"http://127.0.0.1:{local_server.http_port}/")


def test_the_server_jvm_gets_no_secret(local_server: server.ServerConfig, neo4j_settings: Settings) -> None:
    pid = server.running_pid(local_server)
    assert pid is not None
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert not {n for n in names if n.startswith(("CXRNEO_", "NEO4J_PASSWORD"))}
    assert neo4j_settings.password().encode() not in b"\0".join(environ)
    assert neo4j_settings.password().encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_data_and_auth_files_are_private(local_server: server.ServerConfig) -> None:
    for folder in (local_server.home, local_server.home / "data", local_server.home / "logs"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert server.auth_file(local_server).stat().st_mode & 0o777 == 0o600


def test_the_initial_password_is_never_on_a_command_line(
    tmp_path: Path, local_server: server.ServerConfig
) -> None:
    cfg = server.ServerConfig(data_dir=tmp_path, bolt_port=1, http_port=2)
    cfg.dist.parent.mkdir(parents=True, exist_ok=True)
    cfg.dist.symlink_to(local_server.dist.resolve(), target_is_directory=True)
    server._write_conf(cfg)
    password = 'pw-"probe\\ $x-' + tmp_path.name
    seen: list[bytes] = []
    done = threading.Event()

    def watch() -> None:  # sample every process's command line while neo4j-admin runs
        while not done.is_set():
            for p in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    seen.append(p.read_bytes())
                except OSError:
                    pass

    t = threading.Thread(target=watch)
    t.start()
    try:
        server._set_initial_password(cfg, password)
    finally:
        done.set()
        t.join()
    assert any(b"@" in c and b"initial-password-" in c for c in seen)  # the sampler saw neo4j-admin run
    assert not [c for c in seen if password.encode() in c]
    assert server.auth_file(cfg).stat().st_mode & 0o777 == 0o600
    assert not list((cfg.home / "run").glob("*.args"))  # the argument file is gone
