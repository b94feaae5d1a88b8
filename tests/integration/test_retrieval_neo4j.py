"""The Neo4j-backed and the in-memory retrieval give identical answers on the same graph."""

import numpy as np
import pytest

from cxrneo.codes import CODE_WIDTH, Codes
from cxrneo.db.communities import assignments, detect
from cxrneo.db.connection import Database
from cxrneo.db.graphview import Neo4jGraph
from cxrneo.db.ingest import ingest
from cxrneo.errors import ConfigError, NotFoundError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.records import ImageRecord
from cxrneo.retrieval import MemoryGraph, Retriever

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
    ingest(db, codes, similarity_edges(normalise(codes.codes), T), T, progress=False)
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


def test_neo4j_and_memory_agree(clean_db: Database) -> None:
    codes = clustered(60)
    load(clean_db, codes)
    mem = in_memory(clean_db, codes)
    graph = Neo4jGraph(clean_db)
    neo = graph.retriever()
    assert graph.total_edges == mem.graph.view.total_edges
    assert dict(graph.community_stats()) == dict(mem.graph.view.community_stats())
    for c in graph.community_stats():
        assert dict(graph.between(c)) == dict(mem.graph.view.between(c))
        assert sorted(graph.members(c)) == sorted(mem.graph.view.members(c))
    rng = np.random.default_rng(0)
    queries = [(mem.code_of(i), frozenset({i})) for i in ("im000", "im017", "im042")]
    queries += [(rng.standard_normal(CODE_WIDTH).astype(np.float32), frozenset())]
    queries += [
        (mem.code_of("im005") + 0.3 * rng.standard_normal(CODE_WIDTH).astype(np.float32), frozenset())
    ]
    for q, exclude in queries:
        for method in ("community", "hybrid", "knn"):
            for strict in (False, True):
                for k in (1, 7, 25):
                    same(
                        mem.query(q, k, method=method, strict=strict, exclude=exclude),  # type: ignore[arg-type]
                        neo.query(q, k, method=method, strict=strict, exclude=exclude),  # type: ignore[arg-type]
                    )
    assert graph.retriever() is neo  # cached while the graph is unchanged
    assert graph.patient_images("p0") == {"im000", "im001", "im002"}
    assert graph.records(["im004"])["im004"].labels == codes.images[4].labels


def test_cache_follows_ingest_and_errors_are_clear(clean_db: Database) -> None:
    codes = clustered(40)
    load(clean_db, codes.subset(list(range(30))))
    graph = Neo4jGraph(clean_db)
    first = graph.retriever()
    assert len(first) == 30
    ingest(clean_db, codes, similarity_edges(normalise(codes.codes), T), T, progress=False)
    with pytest.raises(ConfigError, match="communities"):
        graph.retriever()  # stale communities are refused, not silently used
    detect(clean_db)
    second = graph.retriever()
    assert second is not first and len(second) == 40
    with pytest.raises(NotFoundError, match="nope"):
        second.row_of("nope")
    with pytest.raises(ConfigError, match="at least 1"):
        second.query(second.code_of("im001"), 0)
    with pytest.raises(ConfigError, match="holds only 39"):
        second.query(second.code_of("im001"), 40, exclude=frozenset({"im001"}))


class _Borrowed(Database):
    """The test session's connection, lent to the CLI (which closes what it connects)."""

    def close(self) -> None:
        pass


def test_cli_query(clean_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from cxrneo.cli import app

    load(clean_db, clustered(30))
    lent = _Borrowed(clean_db._driver, clean_db.database, clean_db.uri, clean_db.user)
    monkeypatch.setattr(Database, "connect", classmethod(lambda cls, s: lent))
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
        (["query", "im004", "-k", "0"], "at least 1"),
        (["query", "im004", "-k", "30"], "holds only 29"),
    ):
        bad = run(app, args)
        assert bad.exit_code == 1 and message in bad.output, bad.output
    picture = tmp_path / "x.png"
    picture.write_bytes(b"not a png")
    bad = run(app, ["query", str(picture)])
    assert bad.exit_code == 1 and "--checkpoint" in bad.output


def test_example_queries_are_the_best_connected_images_with_findings(clean_db: Database) -> None:
    from cxrneo.db.graphview import example_queries

    codes = clustered(60)
    edges = similarity_edges(normalise(codes.codes), T)
    ingest(clean_db, codes, edges, T, progress=False)
    degree = np.bincount(np.concatenate([edges.src, edges.dst]), minlength=len(codes))
    expected = sorted((i for i in range(len(codes)) if degree[i] > 0), key=lambda i: (-degree[i], codes.ids[i]))
    assert example_queries(clean_db, 4) == [codes.ids[i] for i in expected[:4]]
