"""The Neo4j-backed and the in-memory retrieval give identical answers on the same graph."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import CODE_WIDTH, Codes
from cxrneo.db import snapshot
from cxrneo.db.communities import assignments, detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, ingest, reset
from cxrneo.db.meta import graph_meta
from cxrneo.db.stored import StoredGraph
from cxrneo.errors import ConfigError, NotFoundError, NotReadyError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.records import ImageRecord
from cxrneo.retrieval import MemoryGraph, Method, Retriever
from cxrneo.retrieval.question import Question

pytestmark = pytest.mark.neo4j
T = 0.55


def clustered(n: int, seed: int = 3) -> Codes:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, CODE_WIDTH)).astype(np.float32)
    which = rng.integers(0, 5, n)
    x = centres[which] + 0.9 * rng.standard_normal((n, CODE_WIDTH)).astype(np.float32)
    images = tuple(
        ImageRecord(id=f"im{i:03d}", patient_id=f"p{i // 3}", labels=(f"L{which[i]}",)) for i in range(n)
    )
    return Codes(codes=x.astype(np.float32), images=images)


def load(db: Database, codes: Codes) -> None:
    ingest(db, codes, similarity_edges(normalise(codes.codes), T), T)
    detect(db)


def in_memory(db: Database, codes: Codes) -> Retriever:
    unit = normalise(codes.codes)
    com = assignments(db)
    view = MemoryGraph.build(codes.ids, similarity_edges(unit, T), [com[i] for i in codes.ids])
    return Retriever(view, unit, codes.ids, T)


def same(a: list, b: list) -> None:  # type: ignore[type-arg]
    assert [(h.rank, h.image_id, h.community, h.fallback) for h in a] == [
        (h.rank, h.image_id, h.community, h.fallback) for h in b
    ]
    assert np.allclose([h.cosine for h in a], [h.cosine for h in b], atol=1e-6)
    assert [h.gain is None for h in a] == [h.gain is None for h in b]
    assert np.allclose([h.gain or 0.0 for h in a], [h.gain or 0.0 for h in b], rtol=1e-9, atol=1e-15)


def _agree(mem: Retriever, neo: Retriever) -> None:
    rng = np.random.default_rng(0)
    queries = [(mem.code_of(i), frozenset({i})) for i in ("im000", "im017", "im042")]
    queries += [(rng.standard_normal(CODE_WIDTH).astype(np.float32), frozenset())]
    queries += [
        (mem.code_of("im005") + 0.3 * rng.standard_normal(CODE_WIDTH).astype(np.float32), frozenset())
    ]
    for q, exclude in queries:
        for method in Method:
            for strict in (False, True):
                for k in (1, 7, 25):
                    same(
                        mem.query(q, Question(k, method=method, strict=strict, exclude=exclude)),
                        neo.query(q, Question(k, method=method, strict=strict, exclude=exclude)),
                    )


def test_stored_and_memory_agree(clean_db: Database, tmp_path: Path) -> None:
    codes = clustered(60)
    build(clean_db, codes, threshold=T, snapshot_dir=tmp_path)  # ingest writes the snapshot
    detect(clean_db)
    mem = in_memory(clean_db, codes)
    meta = graph_meta(clean_db)
    assert meta is not None and meta.graphId and (tmp_path / meta.graphId / "g1" / "manifest.json").is_file()
    from_ingest = StoredGraph(clean_db, tmp_path)
    from_neo4j = StoredGraph(clean_db, None)  # no cache: read from Neo4j (codes as float32 bytes)
    for graph in (from_ingest, from_neo4j):
        neo = graph.retriever()
        view = neo.graph.view
        assert view.total_edges == mem.graph.view.total_edges
        assert dict(view.community_stats()) == dict(mem.graph.view.community_stats())
        stored = {int(r["id"]): (r["n"], r["l"], r["d"]) for r in clean_db.read("read_community_stats")}
        assert stored == {c: (s.n, s.l, s.d) for c, s in view.community_stats().items()}  # = Community nodes
        for c in view.community_stats():
            assert dict(view.between(c)) == dict(mem.graph.view.between(c))
            assert sorted(view.members(c)) == sorted(mem.graph.view.members(c))
        assert np.array_equal(np.asarray(neo.codes), mem.codes[np.argsort(codes.ids)])
        _agree(mem, neo)
        assert graph.retriever() is neo  # kept while the graph is unchanged
        assert graph.current().patient_images("im000") == {"im000", "im001", "im002"}
        assert graph.records(["im004"])["im004"].labels == codes.images[4].labels
    snap = snapshot.read(clean_db, meta)  # what Neo4j holds equals what ingest saved, bit for bit
    saved = snapshot.load(tmp_path, meta)
    assert saved is not None and saved.ids == snap.ids and saved.patients == snap.patients
    assert np.array_equal(np.asarray(saved.unit), snap.unit) and np.array_equal(np.asarray(saved.indices), snap.indices)
    assert saved.columns == snap.columns and set(snap.columns) >= {"labels", "view", "sex", "age", "split"}  # filters'

    reset(clean_db)  # a rebuilt graph is another graph: the old one's snapshot goes when the new one's is saved
    build(clean_db, codes, threshold=T, snapshot_dir=tmp_path)
    fresh = graph_meta(clean_db)
    assert fresh is not None and fresh.graphId != meta.graphId
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [fresh.graphId]


def test_a_snapshot_that_does_not_match_graphmeta_is_not_used(clean_db: Database, tmp_path: Path) -> None:
    codes = clustered(30)
    build(clean_db, codes, threshold=T, snapshot_dir=tmp_path)
    meta = graph_meta(clean_db)
    assert meta is not None and snapshot.load(tmp_path, meta) is not None
    assert snapshot.load(tmp_path, meta.model_copy(update={"dataGeneration": 2})) is None
    assert snapshot.load(tmp_path, meta.model_copy(update={"edges": meta.edges + 1})) is None
    assert snapshot.load(tmp_path, meta.model_copy(update={"graphId": "6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"})) is None
    unit = snapshot.folder(tmp_path, meta) / "unit.npy"
    damaged = bytearray(unit.read_bytes())
    damaged[-3] ^= 0x40  # one flipped bit in a code: same size and shape, only the checksum sees it
    unit.write_bytes(bytes(damaged))
    assert snapshot.load(tmp_path, meta) is None  # a damaged file is ignored, and the graph read again
    detect(clean_db)
    meta = graph_meta(clean_db)
    assert len(StoredGraph(clean_db, tmp_path).retriever()) == 30
    assert snapshot.load(tmp_path, meta) is not None  # ... and the damaged snapshot was replaced
    (snapshot.folder(tmp_path, meta) / "indices.npy").write_bytes(b"truncated")
    assert snapshot.load(tmp_path, meta) is None


def test_cache_follows_ingest_and_errors_are_clear(clean_db: Database, tmp_path: Path) -> None:
    codes = clustered(40)
    load(clean_db, codes.subset(list(range(30))))
    graph = StoredGraph(clean_db, tmp_path)
    first = graph.retriever()
    assert len(first) == 30
    ingest(clean_db, codes, similarity_edges(normalise(codes.codes), T), T)
    with pytest.raises(ConfigError, match="communities"):
        graph.retriever()  # stale communities are refused, not silently used
    detect(clean_db)
    second = graph.retriever()
    assert second is not first and len(second) == 40
    with pytest.raises(NotFoundError, match="nope"):
        second.row_of("nope")
    with pytest.raises(ConfigError, match="at least 1"):
        second.query(second.code_of("im001"), Question(0))
    with pytest.raises(ConfigError, match="holds only 39"):
        second.query(second.code_of("im001"), Question(40, exclude=frozenset({"im001"})))


class _Borrowed(Database):
    """The test session's connection, lent to the CLI (which closes what it connects)."""

    def close(self) -> None:
        pass


def test_cli_query(clean_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from cxrneo.cli.main import app

    load(clean_db, clustered(30))
    lent = _Borrowed(clean_db._driver, clean_db.database, clean_db.uri, clean_db.user)
    monkeypatch.setattr(Database, "connect", classmethod(lambda cls, s, **_: lent))
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    run = CliRunner().invoke
    out = run(app, ["query", "im004", "-k", "5", "--json", "--exclude-patient"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [h["rank"] for h in doc["hits"]] == [1, 2, 3, 4, 5] and doc["query_ms"] >= 0
    assert not {h["image_id"] for h in doc["hits"]} & {"im003", "im004", "im005"}  # patient p1
    table = run(app, ["query", "im004", "-k", "3", "--method", "knn"])
    assert table.exit_code == 0 and "cosine" in table.output
    for args, message in (
        (["query", "nope", "-k", "3"], "neither an image id"),
        (["query", "im004", "-k", "0"], "k: Input should be greater than or equal to 1, got 0"),
        (["query", "im004", "-k", "30"], "holds only 29"),
    ):
        bad = run(app, args)
        assert bad.exit_code == 1 and message in bad.output, bad.output
    picture = tmp_path / "x.png"
    picture.write_bytes(b"not a png")
    bad = run(app, ["query", str(picture)])
    assert bad.exit_code == 1 and "--checkpoint" in bad.output


def test_example_queries_are_the_best_connected_images_with_findings(clean_db: Database) -> None:
    from cxrneo.db.stored import example_queries

    codes = clustered(60)
    edges = similarity_edges(normalise(codes.codes), T)
    ingest(clean_db, codes, edges, T)
    degree = np.bincount(np.concatenate([edges.src, edges.dst]), minlength=len(codes))
    expected = sorted((i for i in range(len(codes)) if degree[i] > 0), key=lambda i: (-degree[i], codes.ids[i]))
    assert example_queries(clean_db, 4) == [codes.ids[i] for i in expected[:4]]


def test_communities_read_while_a_community_run_writes_are_refused_not_kept(clean_db: Database, tmp_path: Path) -> None:
    """A reader whose read of Image.community overlaps a community run refuses (retry), and caches nothing."""
    codes = clustered(30)
    build(clean_db, codes, threshold=T, snapshot_dir=tmp_path)
    detect(clean_db)
    meta = graph_meta(clean_db)
    snap = snapshot.load(tmp_path, meta)
    assert snap is not None

    class Racing:
        """The database, with a whole community run landing right after the communities are read."""

        def read(self, name: str, **params: object) -> list[dict[str, object]]:
            rows = clean_db.read(name, **params)
            if name == "read_image_communities":
                detect(clean_db)
            return rows

    with pytest.raises(NotReadyError, match="changed while its communities were read"):
        snapshot.communities(Racing(), snap, tmp_path, meta)  # type: ignore[arg-type]
    assert not list(snapshot.folder(tmp_path, meta).glob("community-*.npy"))
    now = graph_meta(clean_db)
    assert len(snapshot.communities(clean_db, snap, tmp_path, now)) == 30  # the next read is clean
