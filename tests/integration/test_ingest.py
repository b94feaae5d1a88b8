"""Ingest against a real Neo4j: counts, orientation, no-op repeats, resume, increments, refusals."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.archive.synthetic import read_nih_table, synthesise
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, ingest
from cxrneo.db.meta import graph_meta
from cxrneo.errors import ConfigError, DatabaseError, InputError
from cxrneo.graph import Edges, normalise, similarity_edges, threshold_for_degree
from cxrneo.records import ImageRecord

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[2]


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
    clean_db.auto("drop_image_code_index")  # another test may have left the optional vector index
    stats, rep = build(clean_db, codes, mean_degree=8)
    indexes = {r["name"]: (r["type"], r["state"]) for r in clean_db.auto("show_indexes")}
    assert indexes["image_community"] == ("RANGE", "ONLINE") and "image_code" not in indexes  # not asked for
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
    build(clean_db, codes, mean_degree=8)
    before = (_counts(clean_db), graph_meta(clean_db))
    _, rep = build(clean_db, codes)
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
        ingest(_Interrupt(clean_db, 3), codes, edges, t, batch=200)
    assert graph_meta(clean_db) is None and 0 < _counts(clean_db)[1] < len(edges)
    rep = ingest(clean_db, codes, edges, t, batch=200)
    assert _counts(clean_db) == (150, len(edges)) and rep.sources_skipped > 0 and rep.generation == 1


def test_incremental_ingest_adds_new_images(clean_db: Database) -> None:
    codes = _codes(160)
    first = codes.subset(np.arange(100))
    _, rep1 = build(clean_db, first, mean_degree=8)
    stats, rep2 = build(clean_db, codes)
    assert rep2.nodes_written == 60 and rep2.generation == 2 and rep2.edges_merged > 0
    full = similarity_edges(normalise(codes.codes), rep1.threshold)
    assert _counts(clean_db) == (160, len(full)) == (160, stats.edges)


def test_a_different_threshold_is_refused(clean_db: Database) -> None:
    codes = _codes()
    _, rep = build(clean_db, codes, threshold=0.3)
    before = (_counts(clean_db), graph_meta(clean_db))
    with pytest.raises(ConfigError, match="stored threshold"):
        build(clean_db, codes, threshold=0.35)
    with pytest.raises(ConfigError):
        build(clean_db, codes, mean_degree=5)
    assert (_counts(clean_db), graph_meta(clean_db)) == before


def test_codes_file_missing_stored_images_is_refused(clean_db: Database) -> None:
    codes = _codes()
    build(clean_db, codes, threshold=0.3)
    with pytest.raises(InputError, match="combined codes file"):
        build(clean_db, codes.subset(np.arange(50)))


def _state(db: Database) -> tuple[tuple[int, int], object, list[dict[str, object]]]:
    """Counts, GraphMeta and every stored edge: what a refused ingest must leave untouched."""
    return _counts(db), graph_meta(db), db.read("match_similar_edges")


def _stored(codes: Codes, t: float, db: Database) -> Edges:
    edges = similarity_edges(normalise(codes.codes), t)
    assert build(db, codes, threshold=t)[1].edges == len(edges) > 0
    return edges


def test_edges_below_the_threshold_are_refused_by_the_database_check(clean_db: Database) -> None:
    codes = _codes()
    _stored(codes, 0.3, clean_db)
    before = _state(clean_db)
    looser = similarity_edges(normalise(codes.codes), 0.2)  # valid rows, cosines below the stored T
    with pytest.raises(InputError, match="below the threshold 0.3"):
        ingest(clean_db, codes, looser, 0.3)
    assert _state(clean_db) == before


def test_codes_of_another_checkpoint_are_refused(clean_db: Database) -> None:
    codes = _codes()
    _stored(codes, 0.3, clean_db)
    before = _state(clean_db)
    other = synthesise(list(codes.images), seed=1)  # same images, another "model"
    assert other.checkpoint_sha256 != codes.checkpoint_sha256
    with pytest.raises(InputError, match="codes of different models do not mix"):
        build(clean_db, other)
    assert _state(clean_db) == before


def test_codes_without_a_checkpoint_hash_keep_the_stored_one(clean_db: Database) -> None:
    codes = _codes()
    build(clean_db, codes.subset(np.arange(100)), mean_degree=6)
    stored = graph_meta(clean_db).codesSha256
    assert stored == codes.checkpoint_sha256 != ""
    unhashed = Codes(codes=codes.codes, images=codes.images)  # a codes file that names no checkpoint
    build(clean_db, unhashed)
    meta = graph_meta(clean_db)
    assert meta.nodes == 120 and meta.codesSha256 == stored  # the model check stays on


def test_a_graph_id_that_is_not_a_uuid_never_becomes_a_path(tmp_path: Path) -> None:
    from cxrneo.db import snapshot
    from cxrneo.db.meta import GraphMeta
    from cxrneo.errors import NotReadyError

    meta = GraphMeta(threshold=0.5, nodes=1, edges=0, generation=1, communityGeneration=1,
                     graphId="0f4c7b1e-8a5e-4c2a-9a55-3b1f7d9e2c10")
    assert snapshot.folder(tmp_path, meta) == tmp_path / meta.graphId / "g1"
    for bad in ("../../etc", "/tmp/x", "0F4C7B1E-8A5E-4C2A-9A55-3B1F7D9E2C10", "abc"):
        with pytest.raises(NotReadyError, match="not a UUID"):
            snapshot.folder(tmp_path, meta.model_copy(update={"graphId": bad}))


def test_edges_that_contradict_the_stored_graph_are_refused(clean_db: Database) -> None:
    """Edges the loader accepts, but an image already holds more stored edges than they give it."""
    codes = _codes()
    edges = _stored(codes, 0.3, clean_db)
    before = _state(clean_db)
    src = edges.src  # ids sort like rows here: an edge is stored out of its src image
    keep = np.delete(np.arange(len(edges)), 0)  # one stored out-edge of one image too many: the least that is refused
    fewer = Edges(edges.src[keep], edges.dst[keep], edges.cosine[keep])
    with pytest.raises(DatabaseError, match=f"image {codes.ids[src[0]]} has more stored SIMILAR edges"):
        ingest(clean_db, codes, fewer, 0.3)
    assert _state(clean_db) == before  # refused before the first write: readers were never stopped


def test_a_count_mismatch_after_ingest_is_refused_and_left_for_readers_to_refuse(clean_db: Database) -> None:
    """A duplicated edge passes every check before writing, but MERGE stores it once: the final
    count check catches it, GraphMeta stays marked as being written, and a correct rerun heals it."""
    codes = _codes()
    full = similarity_edges(normalise(codes.codes), 0.3)
    src = full.src  # ids sort like rows here: an edge is stored out of its src image
    out_of_first = np.flatnonzero(src == src[0])
    assert out_of_first.size >= 2
    partial = np.setdiff1d(np.arange(len(full)), out_of_first[:1])  # one edge of that image missing
    ingest(clean_db, codes, Edges(full.src[partial], full.dst[partial], full.cosine[partial]), 0.3)
    twice = np.concatenate([partial, out_of_first[1:2]])  # ... and another one of its edges given twice
    with pytest.raises(DatabaseError, match="after ingest the graph holds"):
        ingest(clean_db, codes, Edges(full.src[twice], full.dst[twice], full.cosine[twice]), 0.3)
    meta = graph_meta(clean_db)
    assert meta is not None and meta.writing == "ingest" and meta.edges == len(full) - 1
    rep = ingest(clean_db, codes, full, 0.3)
    assert rep.edges_merged > 0 and _counts(clean_db) == (120, len(full))
    meta = graph_meta(clean_db)
    assert meta is not None and meta.writing is None and meta.edges == len(full)


def test_a_label_table_feeds_the_stored_records_and_a_bad_one_is_refused(clean_db: Database, tmp_path: Path) -> None:
    table = REPO / "examples" / "nih-sample" / "Data_Entry_2017.csv"
    records = read_nih_table(table)
    assert len(records) > 100
    codes = synthesise(records[:40], seed=0)
    build(clean_db, codes, threshold=0.3)
    stored = {r["id"]: r for r in clean_db.read("match_image_records")}
    first = table.read_text().splitlines()[1].split(",")  # 00000075_000.png,Cardiomegaly,0,75,61,F,PA,...
    got = stored[first[0]]
    assert (got["labels"], got["patientId"], got["age"], got["sex"], got["view"]) == (
        first[1].split("|"), first[3], int(first[4]), first[5], first[6])
    before = _state(clean_db)
    path = tmp_path / "t.csv"
    path.write_text("Image Index,Finding Labels,Patient ID,Patient Age,View Position\na.png,Mass,1,50,PA\n")
    with pytest.raises(InputError, match="Patient Gender"):
        read_nih_table(path)
    assert _state(clean_db) == before
