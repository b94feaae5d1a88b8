"""Bulk import (neo4j-admin) into a private throwaway local server: same graph as plain ingest."""

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.archive.synthetic import synthesise
from cxrneo.db import bulk, server
from cxrneo.db.connection import Database
from cxrneo.db.meta import graph_meta
from cxrneo.errors import ConfigError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.records import ImageRecord
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _codes(n: int = 200) -> Codes:
    labels = [("Effusion",), ("Mass",), (), ("Nodule", "Mass")]
    recs = [
        ImageRecord(id=f'img,{k:04d}' + ('"q"' if k % 7 == 0 else ""), labels=labels[k % 4],
                    patient_id=f"p{k // 2}", view="PA" if k % 3 else "", sex="F",
                    age=None if k % 5 == 0 else 40 + k % 30, path=f"dir,a/img{k:04d}.png", split="db")
        for k in range(n)
    ]
    return synthesise(recs, seed=1)


@pytest.fixture
def private_server(
    tmp_path: Path, assembled: server.ServerConfig
) -> Iterator[tuple[Settings, server.ServerConfig]]:
    """A stopped, never-started local instance of its own (not the shared test server)."""
    dist = assembled.dist
    bolt, http = _free_port(), _free_port()
    cfg = server.ServerConfig(data_dir=tmp_path, bolt_port=bolt, http_port=http, heap="1g", pagecache="512m")
    cfg.dist.symlink_to(dist, target_is_directory=True)
    s = Settings(neo4j_uri=f"bolt://127.0.0.1:{bolt}", http_port=http, data_dir=tmp_path,
                 neo4j_password=secrets.token_urlsafe(16))
    yield s, cfg
    server.stop(cfg)


def test_bulk_import_leaves_the_graph_plain_ingest_would(private_server: tuple[Settings, server.ServerConfig]) -> None:
    settings, cfg = private_server
    codes = _codes()
    stats, rep = bulk.bulk_build(settings, codes, mean_degree=8, threads=2, cfg=cfg, vector_index=True)
    unit = normalise(codes.codes)
    expected = similarity_edges(unit, rep.threshold)
    assert (rep.nodes, rep.edges, rep.generation) == (200, len(expected), 1) and stats.edges == len(expected)
    ids = codes.ids
    want = {(min(ids[a], ids[b]), max(ids[a], ids[b])): float(c)
            for a, b, c in zip(expected.src.tolist(), expected.dst.tolist(), expected.cosine.tolist(), strict=True)}
    with Database.connect(settings) as db:
        assert db.read("count_graph")[0] == {"nodes": 200, "edges": len(expected)}
        stored = {(r["a"], r["b"]): r["cosine"] for r in db.read("match_similar_edges")}
        assert stored == want  # same pairs, smaller id -> larger, the very doubles ingest stores
        images = db.read("match_image_records")
        meta = graph_meta(db)
        constraints = {(r["type"], tuple(r["labelsOrTypes"]), tuple(r["properties"]))
                       for r in db.auto("show_constraints")}
        indexes = {r["name"]: (r["type"], r["state"]) for r in db.auto("show_indexes")}
        with pytest.raises(ConfigError, match="GraphMeta"):  # a second bulk load is refused
            bulk.bulk_build(settings, codes, mean_degree=8, cfg=cfg)
    by_id = {r.id: (r, codes.codes[i]) for i, r in enumerate(codes.images)}
    assert len(images) == 200
    for got in images:
        rec, code = by_id[got["id"]]
        assert (got["path"], got["labels"], got["patientId"], got["view"], got["sex"], got["age"], got["split"]) == (
            rec.path, list(rec.labels), rec.patient_id, rec.view, rec.sex, rec.age, rec.split)
        assert np.array_equal(np.array(got["code"], dtype=np.float32), code)
    assert meta is not None
    assert (meta.threshold, meta.nodes, meta.edges, meta.generation, meta.communityGeneration, meta.codesSha256) == (
        rep.threshold, 200, len(expected), 1, 0, codes.checkpoint_sha256)
    assert ("UNIQUENESS", ("Image",), ("id",)) in constraints
    assert indexes["image_code"] == ("VECTOR", "ONLINE") and indexes["image_community"][1] == "ONLINE"  # asked for
