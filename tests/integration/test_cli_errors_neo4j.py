"""`cxrneo ingest` error paths against the real Neo4j: one `error:` line, exit 1, the graph untouched."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.archive.codes import save
from cxrneo.archive.synthetic import synthesise
from cxrneo.cli.main import app
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.db.meta import graph_meta
from cxrneo.records import ImageRecord
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j


def _state(db: Database) -> tuple[object, ...]:
    c = db.read("count_graph")[0]
    return c["nodes"], c["edges"], graph_meta(db), db.read("match_similar_edges")


def _codes(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    recs = [ImageRecord(id=f"img{k:04d}", labels=(("Mass",), ("Effusion",), ())[k % 3], patient_id=f"p{k // 2}",
                        view="PA") for k in range(n)]
    return synthesise(recs, seed=seed)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, neo4j_settings: Settings, tmp_path: Path) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_NEO4J_USER", neo4j_settings.neo4j_user)
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CXRNEO_DEBUG", raising=False)


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_a_wrong_password_is_one_line_and_writes_nothing(
    clean_db: Database, env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    build(clean_db, _codes(60), threshold=0.3)
    before = _state(clean_db)
    path = tmp_path / "more.npz"
    save(path, _codes(80))  # 20 new images that a connection would add
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "wrong-password-1")  # one failed login: no lockout
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "refused the password" in line and "wrong-password-1" not in result.output
    assert _state(clean_db) == before
    assert not (tmp_path / "data" / "snapshot").exists()


def test_codes_of_another_model_are_refused_through_the_cli(clean_db: Database, env: None, tmp_path: Path) -> None:
    build(clean_db, _codes(60), threshold=0.3)
    before = _state(clean_db)
    path = tmp_path / "other.npz"
    save(path, _codes(60, seed=1))  # same images, another checkpoint
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "codes of different models do not mix" in _one_error_line(result.output)
    assert _state(clean_db) == before


def test_ctrl_c_during_ingest_exits_130(clean_db: Database, env: None, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C before the first write (while the edges are computed): exit 130, the graph untouched."""
    import cxrneo.graph

    build(clean_db, _codes(60), threshold=0.3)
    before = _state(clean_db)
    path = tmp_path / "more.npz"
    save(path, _codes(80))

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cxrneo.graph, "similarity_edges", interrupted)  # what `--device cpu` computes with
    result = CliRunner().invoke(app, ["ingest", str(path), "--device", "cpu"])
    assert result.exit_code == 130 and "interrupted" in result.output
    assert _state(clean_db) == before
