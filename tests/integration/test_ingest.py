"""Ingest against a real Neo4j: counts, orientation, no-op repeats, resume, increments, refusals."""

import json
from pathlib import Path

import numpy as np
import pytest

from cxrneo.codes import Codes, load
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, ingest
from cxrneo.db.meta import graph_meta
from cxrneo.errors import ConfigError, InputError
from cxrneo.graph import normalise, similarity_edges, threshold_for_degree
from cxrneo.records import ImageRecord
from cxrneo.synthetic import read_nih_table, synthesise

pytestmark = pytest.mark.neo4j


def _codes(n: int = 120, seed: int = 0) -> Codes:
    labels = [("Effusion",), ("Mass",), (), ("Nodule", "Mass")]
    recs = [
        ImageRecord(id=f"img{k:04d}", labels=labels[k % 4], patient_id=f"p{k // 2}", view="PA",
                    sex="F", age=40 + k % 30, path=f"img{k:04d}.png")
        for k in range(n)
    ]
    return synthesise(recs, seed=seed)


def _counts(db: Database) -> tuple[int, int]:
    c = db.read("count_graph")[0]
    return c["nodes"], c["edges"]


def test_fresh_ingest_stores_the_schema(clean_db: Database) -> None:
    codes = _codes()
    clean_db.auto("drop_image_code_index")  # a first load builds the vector index after the codes
    stats, rep = build(clean_db, codes, mean_degree=8, progress=False)
    indexes = {r["name"]: (r["type"], r["state"]) for r in clean_db.auto("show_indexes")}
    assert indexes["image_code"] == ("VECTOR", "ONLINE")
    assert _counts(clean_db) == (120, stats.edges) and rep.edges_created == stats.edges
    stored = clean_db.read("match_similar_edges")
    assert all(r["a"] < r["b"] for r in stored)
    assert len({(r["a"], r["b"]) for r in stored}) == stats.edges
    unit = normalise(codes.codes)
    row = {x: i for i, x in enumerate(codes.ids)}
    r = stored[0]
    assert r["cosine"] == pytest.approx(float(unit[row[r["a"]]] @ unit[row[r["b"]]]), abs=1e-5)
    meta = graph_meta(clean_db)
    assert meta is not None and (meta.nodes, meta.edges, meta.generation) == (120, stats.edges, 1)
    assert meta.threshold == pytest.approx(stats.threshold)


def test_repeated_ingest_is_a_no_op(clean_db: Database) -> None:
    codes = _codes()
    build(clean_db, codes, mean_degree=8, progress=False)
    before = (_counts(clean_db), graph_meta(clean_db))
    _, rep = build(clean_db, codes, progress=False)
    assert not rep.changed and rep.nodes_written == rep.edges_created == rep.edges_merged == 0
    assert (_counts(clean_db), graph_meta(clean_db)) == before


class _Interrupt(Database):
    """The real database, interrupted after a number of writes (fault injection, not a mock)."""

    def __init__(self, db: Database, writes: int) -> None:
        super().__init__(db._driver, db.database, db.uri, db.user)
        self.left = writes

    def write(self, name: str, **params: object) -> list[dict[str, object]]:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().write(name, **params)

    def close(self) -> None:  # the session fixture owns the driver
        pass


def test_interrupted_ingest_resumes(clean_db: Database) -> None:
    codes = _codes(150)
    unit = normalise(codes.codes)
    t = threshold_for_degree(unit, 10)
    edges = similarity_edges(unit, t)
    with pytest.raises(KeyboardInterrupt):  # lease, 150 nodes in 1 batch, 1 of several edge batches
        ingest(_Interrupt(clean_db, 3), codes, edges, t, batch=200, progress=False)
    assert graph_meta(clean_db) is None and 0 < _counts(clean_db)[1] < len(edges)
    rep = ingest(clean_db, codes, edges, t, batch=200, progress=False)
    assert _counts(clean_db) == (150, len(edges)) and rep.sources_skipped > 0 and rep.generation == 1


def test_incremental_ingest_adds_new_images(clean_db: Database) -> None:
    codes = _codes(160)
    first = codes.subset(np.arange(100))
    _, rep1 = build(clean_db, first, mean_degree=8, progress=False)
    stats, rep2 = build(clean_db, codes, progress=False)
    assert rep2.nodes_written == 60 and rep2.generation == 2 and rep2.edges_merged > 0
    full = similarity_edges(normalise(codes.codes), rep1.threshold)
    assert _counts(clean_db) == (160, len(full)) == (160, stats.edges)


def test_a_different_threshold_is_refused(clean_db: Database) -> None:
    codes = _codes()
    _, rep = build(clean_db, codes, threshold=0.3, progress=False)
    before = (_counts(clean_db), graph_meta(clean_db))
    with pytest.raises(ConfigError, match="stored threshold"):
        build(clean_db, codes, threshold=0.35, progress=False)
    with pytest.raises(ConfigError):
        build(clean_db, codes, mean_degree=5, progress=False)
    assert (_counts(clean_db), graph_meta(clean_db)) == before


def test_codes_file_missing_stored_images_is_refused(clean_db: Database) -> None:
    codes = _codes()
    build(clean_db, codes, threshold=0.3, progress=False)
    with pytest.raises(InputError, match="combined codes file"):
        build(clean_db, codes.subset(np.arange(50)), progress=False)


def _bad_npz(path: Path, codes: np.ndarray, ids: list[str]) -> Path:
    meta = {"version": 1, "images": [{"id": i} for i in ids]}
    np.savez(path, codes=codes, ids=np.array(ids), meta=np.array(json.dumps(meta)))
    return path


@pytest.mark.parametrize("problem", ["width", "nan", "duplicate"])
def test_bad_codes_are_refused_before_writing(clean_db: Database, tmp_path: Path, problem: str) -> None:
    x = np.random.default_rng(0).standard_normal((5, 1024)).astype(np.float32)
    ids = [f"i{k}" for k in range(5)]
    if problem == "width":
        x = x[:, :1000]
    elif problem == "nan":
        x[2, 7] = np.nan
    else:
        ids[3] = ids[1]
    with pytest.raises(InputError):
        build(clean_db, load(_bad_npz(tmp_path / "bad.npz", x, ids)), threshold=0.5, progress=False)
    assert _counts(clean_db) == (0, 0) and graph_meta(clean_db) is None


def test_label_table_missing_a_column_is_refused(clean_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Image Index,Finding Labels,Patient ID,Patient Age,View Position\na.png,Mass,1,50,PA\n")
    with pytest.raises(InputError, match="Patient Gender"):
        read_nih_table(path)
    assert _counts(clean_db) == (0, 0)
