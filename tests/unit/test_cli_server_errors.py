"""`cxrneo db start|stop|reset` and `ingest --bulk` refuse bad situations in one line, changing nothing."""

import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.archive.codes import Codes, save
from cxrneo.cli.main import app
from cxrneo.records import ImageRecord


def _one_error(output: str, words: str) -> None:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], output
    assert "Traceback" not in output


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings of a local server that was never assembled, on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CXRNEO_NEO4J_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_db_start_without_a_password_assembles_nothing(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXRNEO_NEO4J_PASSWORD", raising=False)
    result = CliRunner().invoke(app, ["db", "start"])
    assert result.exit_code == 1
    _one_error(result.output, "no Neo4j password")
    assert not nowhere.exists()  # nothing was assembled or written


def test_db_stop_when_nothing_runs_says_so(nowhere: Path) -> None:
    result = CliRunner().invoke(app, ["db", "stop"])
    assert result.exit_code == 0 and result.output.strip() == "Neo4j was not running"


def test_db_reset_needs_yes_and_a_reachable_database(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "whatever-pass")
    refused = CliRunner().invoke(app, ["db", "reset"])
    assert refused.exit_code == 1
    _one_error(refused.output, "add --yes")
    dead = CliRunner().invoke(app, ["db", "reset", "--yes"])
    assert dead.exit_code == 1
    _one_error(dead.output, "cannot reach Neo4j")


def test_bulk_ingest_refuses_a_server_it_does_not_run(nowhere: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "whatever-pass")
    codes = tmp_path / "codes.npz"
    rng = np.random.default_rng(0)
    save(codes, Codes(codes=rng.standard_normal((4, 1024)).astype(np.float32),
                      images=tuple(ImageRecord(id=f"i{i}") for i in range(4))))
    with socket.socket() as other:  # something else listens on the configured Bolt port
        other.bind(("127.0.0.1", 0))
        other.listen()
        monkeypatch.setenv("CXRNEO_NEO4J_URI", f"bolt://127.0.0.1:{other.getsockname()[1]}")
        result = CliRunner().invoke(app, ["ingest", str(codes), "--bulk", "--threshold", "0.5"])
    assert result.exit_code == 1
    _one_error(result.output, "--bulk works on that local server only")
    assert not nowhere.exists()
    other_db = CliRunner().invoke(app, ["ingest", str(codes), "--bulk", "--threshold", "0.5"],
                                  env={"CXRNEO_NEO4J_DATABASE": "archive"})
    assert other_db.exit_code == 1
    _one_error(other_db.output, "bulk import writes the database 'neo4j'")


def test_serve_beyond_loopback_without_authentication_refuses_to_start(nowhere: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXRNEO_API_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        result = CliRunner().invoke(app, ["serve", "--host", host, "--port", "1"])
        assert result.exit_code == 1, host
        _one_error(result.output, f"refusing to serve on {host} without authentication")


@pytest.mark.parametrize(("flags", "words"), [
    (["--oidc-issuer", "https://idp.example"], "both --oidc-issuer and --oidc-audience"),
    (["--tls-cert", "/nonexistent.pem"], "both --tls-cert and --tls-key"),
    (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "is not a file"),
    (["--allowed-host", "evil.example:80"], "--allowed-host takes a host name"),
])
def test_serve_refuses_half_given_access_options(nowhere: Path, flags: list[str], words: str) -> None:
    result = CliRunner().invoke(app, ["serve", *flags])
    assert result.exit_code == 1
    _one_error(result.output, words)
