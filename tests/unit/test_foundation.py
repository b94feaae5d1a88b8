"""Settings, the local server's configuration and the Cypher folder."""

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.db import queries, server
from cxrneo.errors import ConfigError, ServerError
from cxrneo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"\.(?:read|write|auto|write_batches)\(\s*\"([a-z0-9_]+)\"")


def test_settings_come_from_cxrneo_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", "bolt://127.0.0.1:9999")
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "s3cret-pass")
    s = Settings()
    assert s.neo4j_uri == "bolt://127.0.0.1:9999"
    assert "s3cret" not in repr(s)  # a secret never prints
    assert s.password() == "s3cret-pass"


def test_missing_password_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXRNEO_NEO4J_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="CXRNEO_NEO4J_PASSWORD"):
        Settings().password()


def test_server_listens_on_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="loopback"):
        server.ServerConfig.from_uri(tmp_path, "bolt://10.1.2.3:7687", 7474)
    cfg = server.ServerConfig.from_uri(tmp_path, "bolt://localhost:7690", 7480)
    assert (cfg.bolt_port, cfg.http_port) == (7690, 7480)
    conf = server._write_conf(cfg).joinpath("neo4j.conf").read_text()
    assert "server.default_listen_address=127.0.0.1" in conf
    assert "server.bolt.listen_address=127.0.0.1:7690" in conf
    assert "dbms.security.auth_enabled=true" in conf
    assert "password" not in conf.lower()


def test_the_vector_index_is_built_in_a_quarter_of_the_heap(tmp_path: Path) -> None:
    """Neo4j's 1 MiB default leaves one segment per population batch, merged later (docs/scale.md)."""
    assert [server.vector_build_buffer_mb(h) for h in ("4g", "1G", "2048m", "128m", "1048576k")] == [1024, 256, 512, 64, 256]
    conf = server._write_conf(server.ServerConfig(data_dir=tmp_path, heap="2g")).joinpath("neo4j.conf").read_text()
    assert "\ninternal.dbms.index.vector.population_ram_buffer_size=512\n" in conf


def test_versions_are_pinned_in_the_pom() -> None:
    neo, gds = server.pinned_versions()
    assert neo.startswith("5.26.") and gds.startswith("2.13.")


def test_every_cypher_file_has_a_header_and_is_used() -> None:
    sources = "\n".join(p.read_text() for d in ("cxrneo", "tests", "scripts") for p in (ROOT / d).rglob("*.py"))
    used = set(CALL.findall(sources)) | set(re.findall(r"cypher\(\s*\"([a-z0-9_]+)\"", sources))
    shipped = set(queries.names())
    assert used, "no Cypher call found: the pattern is stale"
    assert used <= shipped, f"named in code but missing in cypher/: {sorted(used - shipped)}"
    assert shipped <= used, f"shipped in cypher/ but never used: {sorted(shipped - used)}"
    for name in shipped:
        text = (ROOT / "cypher" / f"{name}.cypher").read_text()
        assert text.startswith("//"), f"{name}.cypher has no header comment"
        body = queries.cypher(name)
        assert "%s" not in body and "{0}" not in body, f"{name}.cypher looks string-formatted"


def test_cli_reports_a_dead_database_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrneo.cli.main import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CXRNEO_NEO4J_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "whatever-pass")
    monkeypatch.setenv("CXRNEO_DATA_DIR", "/nonexistent-cxrneo")
    result = CliRunner().invoke(app, ["communities"])
    assert result.exit_code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: cannot reach Neo4j at bolt://127.0.0.1:{port} (is it running? try `cxrneo db start`)"]
    assert "Traceback" not in result.output


def test_db_status_needs_no_password_to_say_nothing_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cxrneo.cli.main import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CXRNEO_NEO4J_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.delenv("CXRNEO_NEO4J_PASSWORD", raising=False)
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "not running" in result.output and f"nothing listens on bolt://127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(("args", "reason"), [
    (["ingest", "missing.npz", "--batch", "0"], "--batch must be at least 1"),
    (["communities", "--concurrency", "0"], "--concurrency must be 1 to 4"),
    (["communities", "--concurrency", "9"], "--concurrency must be 1 to 4"),
])
def test_bad_write_options_are_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, args: list[str], reason: str
) -> None:
    from cxrneo.cli.main import app

    monkeypatch.setenv("CXRNEO_NEO4J_URI", "bolt://127.0.0.1:1")  # nothing listens: no write possible
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "whatever-pass")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln.strip()] == [
        ln for ln in result.output.splitlines() if ln.startswith("error: ") and reason in ln
    ]


def test_heap_and_page_cache_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrneo.settings import Settings, default_memory

    assert default_memory() in {f"{g}g" for g in range(1, 5)}
    monkeypatch.setenv("CXRNEO_NEO4J_HEAP", "3g")
    monkeypatch.setenv("CXRNEO_NEO4J_PAGECACHE", "512m")
    s = Settings()
    assert (s.neo4j_heap, s.neo4j_pagecache) == ("3g", "512m")
    monkeypatch.setenv("CXRNEO_NEO4J_HEAP", "lots")
    from cxrneo.cli.main import app

    result = CliRunner().invoke(app, ["db", "status"])
    assert result.exit_code == 1 and result.output.startswith("error: bad setting: CXRNEO_NEO4J_HEAP")
