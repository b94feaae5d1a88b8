"""Past one machine, through the CLI against the real Neo4j: edges computed in shards, merged and
ingested give exactly the graph of the unsharded ingest; concurrent writers keep it exact."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive import codes as codes_io
from cxrneo.db.connection import Database
from cxrneo.db.ingest import ingest
from cxrneo.db.meta import graph_meta
from cxrneo.graph import normalise, similarity_edges
from cxrneo.settings import Settings
from tests.integration.test_integrity import _cli, _counts, _errors
from tests.integration.test_service_http import clustered

pytestmark = pytest.mark.neo4j
T = 0.3


def _stored(db: Database) -> list[tuple[str, str, float]]:
    return sorted((r["a"], r["b"], r["cosine"]) for r in db.read("match_similar_edges"))


def test_sharded_edges_merged_and_ingested_equal_the_unsharded_graph(
    clean_db: Database, neo4j_settings: Settings, tmp_path: Path
) -> None:
    codes = clustered(400, seed=11)
    path = tmp_path / "codes.npz"
    codes_io.save(path, codes)
    parts = [tmp_path / f"edges-{i}.npz" for i in range(3)]
    for i, p in enumerate(parts):
        r = _cli(neo4j_settings, "edges", str(path), "--threshold", repr(T), "--shard", f"{i}/3",
                 "--device", "cpu", "--out", str(p))
        assert r.returncode == 0 and "a part" in r.stdout, r.stderr
    merged = tmp_path / "edges.npz"
    r = _cli(neo4j_settings, "merge", *map(str, reversed(parts)), "--out", str(merged))
    assert r.returncode == 0 and "3 parts of 400 rows merged" in r.stdout, r.stderr
    r = _cli(neo4j_settings, "ingest", str(path), "--edges", str(merged))
    assert r.returncode == 0, r.stderr
    sharded = _stored(clean_db)
    expected = similarity_edges(normalise(codes.codes), T)
    assert _counts(clean_db) == (400, len(expected)) and len(expected) > 2000
    meta = graph_meta(clean_db)
    assert meta is not None and meta.threshold == T and meta.writing is None

    clean_db.auto("delete_everything")
    r = _cli(neo4j_settings, "ingest", str(path), "--threshold", repr(T), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert _stored(clean_db) == sharded  # same pairs, same cosines

    # refused in one line, nothing written: a part, T beside --edges, edges of other codes
    r = _cli(neo4j_settings, "ingest", str(path), "--edges", str(parts[0]))
    assert r.returncode == 1 and _errors(r.stderr) and "`cxrneo merge` the parts first" in r.stderr
    r = _cli(neo4j_settings, "ingest", str(path), "--edges", str(merged), "--threshold", "0.4")
    assert r.returncode == 1 and "--edges fixes T" in r.stderr
    other = tmp_path / "other.npz"
    codes_io.save(other, clustered(400, seed=12))
    r = _cli(neo4j_settings, "ingest", str(other), "--edges", str(merged))
    assert r.returncode == 1 and "computed from other codes" in r.stderr
    r = _cli(neo4j_settings, "ingest", str(path), "--writers", "9")
    assert r.returncode == 1 and "--writers must be 1 to 8" in r.stderr
    assert _stored(clean_db) == sharded


@pytest.mark.parametrize("writers", [1, 4])
def test_concurrent_writers_give_the_exact_graph_and_resume(clean_db: Database, writers: int) -> None:
    """Small batches, many transactions at once: exact counts; a rerun after a partial load completes it."""
    codes = clustered(300, seed=3)
    unit = normalise(codes.codes)
    edges = similarity_edges(unit, T)
    first = codes.subset(np.arange(200))
    ingest(clean_db, first, similarity_edges(unit[:200], T), T, batch=97, writers=writers)
    assert _counts(clean_db) == (200, len(similarity_edges(unit[:200], T)))
    rep = ingest(clean_db, codes, edges, T, batch=97, writers=writers)
    assert _counts(clean_db) == (300, len(edges)) and rep.nodes_written == 100 and rep.edges_merged > 0
    pairs = [(r["a"], r["b"]) for r in clean_db.read("match_similar_edges")]
    assert len(set(pairs)) == len(pairs) == len(edges)
