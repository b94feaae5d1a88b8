"""`cxrneo db dump` / `load` on a private local server: build, dump, reset, load, the same answers."""

import json
from pathlib import Path

import pytest

from cxrneo.db import backup, server
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
