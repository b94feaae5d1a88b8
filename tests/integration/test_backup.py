"""`cxrneo db dump` / `load` on a private local server: build, dump, reset, load, the same answers."""

import json
from pathlib import Path

import pytest

from cxrneo.db import aside, backup, server
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, reset
from cxrneo.db.meta import graph_meta
from cxrneo.errors import ConfigError, DatabaseError, InputError
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_bulk import _codes, private_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.neo4j


def _answers(s: Settings, ids: list[str]) -> dict[str, list[str]]:
    with Database.connect(s) as db:
        searcher = Searcher.open(db, None)
        return {f"{i}/{m}": [h.image_id for h in searcher.by_id(i, QueryOptions(k=8, method=m)).hits]
                for i in ids for m in ("knn", "community")}


def test_dump_reset_load_gives_back_the_same_graph_and_answers(
    private_server: tuple[Settings, server.ServerConfig], tmp_path: Path,  # noqa: F811
) -> None:
    s, cfg = private_server
    server.start(cfg, s.password())
    codes = _codes(120)
    with Database.connect(s) as db:
        build(db, codes, mean_degree=6)
        detect(db)
        before_meta = graph_meta(db)
    ids = codes.ids[:4]
    before = _answers(s, ids)
    out = tmp_path / "graph.dump"
    recorded = backup.dump(s, cfg, out)
    assert out.stat().st_size > 0 and len(recorded.probes) == backup.PROBES
    assert json.loads(backup.manifest_path(out).read_text())["meta"]["nodes"] == 120
    with pytest.raises(ConfigError, match="never overwritten"):
        backup.dump(s, cfg, out)
    with Database.connect(s) as db:
        reset(db)
        assert graph_meta(db) is None
    loaded = backup.load(s, cfg, out)
    assert loaded == recorded
    with Database.connect(s) as db:
        after_meta = graph_meta(db)
    assert after_meta == before_meta and _answers(s, ids) == before  # the same graph, the same answers

    record = json.loads(backup.manifest_path(out).read_text())
    first = next(iter(record["probes"]))
    record["probes"][first]["knn"] = list(reversed(record["probes"][first]["knn"]))  # another dump's record
    backup.manifest_path(out).write_text(json.dumps(record))
    with pytest.raises(DatabaseError, match="differs from the dump's record"):
        backup.load(s, cfg, out)
    backup.manifest_path(out).unlink()
    with pytest.raises(InputError, match="missing"):
        backup.load(s, cfg, out)


def test_a_damaged_or_mismatched_dump_leaves_the_old_graph_answering(
    private_server: tuple[Settings, server.ServerConfig], tmp_path: Path,  # noqa: F811
) -> None:
    s, cfg = private_server
    server.start(cfg, s.password())
    with Database.connect(s) as db:
        build(db, _codes(120), mean_degree=6)
        detect(db)
    out = tmp_path / "graph.dump"
    recorded = backup.dump(s, cfg, out)
    assert recorded.size == out.stat().st_size and recorded.sha256 is not None and len(recorded.sha256) == 64
    assert out.stat().st_mode & 0o777 == 0o600 == backup.manifest_path(out).stat().st_mode & 0o777
    other = _codes(60)  # the graph served now: another one
    with Database.connect(s) as db:
        reset(db)
        build(db, other, mean_degree=5)
        detect(db)
        served = graph_meta(db)
    ids = other.ids[:3]
    answers = _answers(s, ids)

    def still_served() -> None:
        with Database.connect(s) as db:
            assert graph_meta(db) == served and not db.read("fetch_writer_lease")
        assert _answers(s, ids) == answers and not aside.aside_dir(cfg).exists()

    damaged = tmp_path / "damaged.dump"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    damaged.write_bytes(bytes(data))
    backup.manifest_path(damaged).write_text(backup.manifest_path(out).read_text())
    with pytest.raises(InputError, match="does not match its record .*nothing was changed"):
        backup.load(s, cfg, damaged)
    still_served()

    record = json.loads(backup.manifest_path(out).read_text())
    wrong = json.loads(json.dumps(record))
    wrong["meta"]["nodes"] = 121  # a record that says another graph; the file itself is the one it hashed
    backup.manifest_path(out).write_text(json.dumps(wrong))
    with pytest.raises(DatabaseError, match="differs from the dump's record .*previous database is back"):
        backup.load(s, cfg, out)
    still_served()

    for key in ("size", "sha256", "lease"):  # the record of an older cxrneo
        del record[key]
    backup.manifest_path(out).write_text(json.dumps(record))
    said: list[str] = []
    backup.load(s, cfg, out, said.append)
    assert len(said) == 1 and said[0].startswith("warning: ") and "could not be checked" in said[0]
    with Database.connect(s) as db:
        loaded = graph_meta(db)
    assert loaded is not None and loaded.nodes == 120 and not aside.aside_dir(cfg).exists()
