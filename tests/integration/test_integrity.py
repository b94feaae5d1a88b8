"""Integrity under concurrency and interruption, with real `cxrneo` processes against a real Neo4j:
one writer per database, kill -9 right after a named statement (CXRNEO_FAULT_AFTER), recovery."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes, save
from cxrneo.archive.synthetic import synthesise
from cxrneo.db.communities import assignments, detect
from cxrneo.db.connection import FAULT_ENV, Database, LeaseLostError
from cxrneo.db.ingest import ingest, reset
from cxrneo.db.lease import claim, release
from cxrneo.db.meta import graph_meta, queryable_meta
from cxrneo.errors import ConfigError, NotReadyError
from cxrneo.graph import Edges, normalise, similarity_edges, threshold_for_degree
from cxrneo.records import ImageRecord
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
KILLED = -signal.SIGKILL


def _codes(n: int = 400) -> Codes:
    labels = [("Effusion",), ("Mass",), (), ("Nodule", "Mass"), ("Atelectasis",)]
    recs = [ImageRecord(id=f"img{k:04d}", labels=labels[k % 5], patient_id=f"p{k // 3}", view="PA")
            for k in range(n)]
    return synthesise(recs, noise=4.0, seed=3)  # noisy enough that communities link


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Codes, float, Edges]:
    """A codes file, its threshold (mean degree 12) and its exact edges."""
    codes = _codes()
    path = tmp_path_factory.mktemp("codes") / "codes.npz"
    save(path, codes)
    unit = normalise(codes.codes)
    t = float(threshold_for_degree(unit, 12))
    return path, codes, t, similarity_edges(unit, t)


def _cli(settings: Settings, *args: str, fault: str | None = None, wait: bool = True
         ) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    env = {**os.environ, "CXRNEO_NEO4J_URI": settings.neo4j_uri, "CXRNEO_NEO4J_USER": settings.neo4j_user,
           "CXRNEO_NEO4J_PASSWORD": settings.password(), "CXRNEO_NEO4J_DATABASE": settings.neo4j_database}
    env.pop(FAULT_ENV, None)
    env.pop("CXRNEO_DEBUG", None)
    if fault:
        env[FAULT_ENV] = fault
    cmd = [sys.executable, "-m", "cxrneo.cli.main", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _counts(db: Database) -> tuple[int, int]:
    c = db.read("count_graph")[0]
    return c["nodes"], c["edges"]


def _errors(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("error:")]


def test_a_second_writer_is_refused_at_once_naming_the_holder(
    clean_db: Database, neo4j_settings: Settings, graph: tuple[Path, Codes, float, Edges]
) -> None:
    path, codes, t, edges = graph
    held = claim(clean_db, "communities")
    try:
        for args in (["ingest", str(path), "--threshold", repr(t)], ["communities"], ["db", "reset", "--yes"]):
            r = _cli(neo4j_settings, *args)
            assert r.returncode == 1, r.stderr
            (line,) = _errors(r.stderr)
            assert "another writer holds this database" in line and f"pid {os.getpid()}" in line
            assert "`cxrneo communities`" in line
        assert _counts(clean_db) == (0, 0)
    finally:
        release(held)
    r = _cli(neo4j_settings, "ingest", str(path), "--threshold", repr(t))
    assert r.returncode == 0, r.stderr
    assert _counts(clean_db) == (len(codes), len(edges))


def test_two_concurrent_ingests_then_a_rerun_give_the_exact_graph(
    clean_db: Database, neo4j_settings: Settings, graph: tuple[Path, Codes, float, Edges]
) -> None:
    path, codes, t, edges = graph
    procs = [_cli(neo4j_settings, "ingest", str(path), "--threshold", repr(t), "--batch", "300", wait=False)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 or "another writer holds this database" in err, err
    assert any(p.returncode == 0 for p in procs)
    r = _cli(neo4j_settings, "ingest", str(path), "--threshold", repr(t))
    assert r.returncode == 0, r.stderr
    assert _counts(clean_db) == (len(codes), len(edges))  # no duplicate edge
    meta = graph_meta(clean_db)
    assert meta is not None and (meta.nodes, meta.edges, meta.writing) == (len(codes), len(edges), None)


def test_a_killed_ingest_leaves_a_lease_that_the_rerun_recovers(
    clean_db: Database, neo4j_settings: Settings, graph: tuple[Path, Codes, float, Edges]
) -> None:
    path, codes, t, edges = graph
    r = _cli(neo4j_settings, "ingest", str(path), "--threshold", repr(t), "--batch", "300",
             fault="create_similar_edges:2")
    assert r.returncode == KILLED
    assert clean_db.read("fetch_writer_lease"), "the killed writer's lease is still there"
    assert 0 < _counts(clean_db)[1] < len(edges)
    with pytest.raises(NotReadyError, match="no complete"):
        queryable_meta(clean_db)
    r = _cli(neo4j_settings, "communities")
    assert r.returncode == 1 and "no complete graph" in _errors(r.stderr)[0]
    r = _cli(neo4j_settings, "ingest", str(path), "--threshold", repr(t))
    assert r.returncode == 0, r.stderr
    assert _counts(clean_db) == (len(codes), len(edges)) and not clean_db.read("fetch_writer_lease")


def test_an_interrupted_incremental_ingest_is_refused_by_readers_and_communities(
    clean_db: Database, neo4j_settings: Settings, graph: tuple[Path, Codes, float, Edges], tmp_path: Path
) -> None:
    path, codes, t, edges = graph
    first = tmp_path / "first.npz"
    save(first, codes.subset(np.arange(300)))
    assert _cli(neo4j_settings, "ingest", str(first), "--threshold", repr(t)).returncode == 0
    assert _cli(neo4j_settings, "communities").returncode == 0
    before = queryable_meta(clean_db)
    r = _cli(neo4j_settings, "ingest", str(path), fault="merge_images")
    assert r.returncode == KILLED and _counts(clean_db)[0] == len(codes)
    with pytest.raises(ConfigError, match="ingest is running or was interrupted"):
        queryable_meta(clean_db)
    with pytest.raises(ConfigError, match="ingest"):
        queryable_meta(clean_db, communities=False)  # kNN needs the whole graph too
    r = _cli(neo4j_settings, "communities")
    assert r.returncode == 1 and "ingest is running or was interrupted" in _errors(r.stderr)[0]
    assert _cli(neo4j_settings, "ingest", str(path)).returncode == 0
    with pytest.raises(ConfigError, match="communities"):
        queryable_meta(clean_db)
    assert _cli(neo4j_settings, "communities").returncode == 0
    after = queryable_meta(clean_db)
    assert after.generation > before.generation and after.nodes == len(codes)
    assert _counts(clean_db) == (len(codes), len(edges))


def _community_state(db: Database) -> tuple[dict[str, int], list[dict[str, int]], list[dict[str, int]]]:
    comm = db.read("match_communities")
    linked = db.read("match_linked")
    return assignments(db), sorted(comm, key=lambda r: r["id"]), sorted(linked, key=lambda r: (r["a"], r["b"]))


@pytest.mark.parametrize("statement", ["begin_graph_write", "project_similarity_graph", "write_louvain",
                                       "drop_communities", "create_communities", "create_linked_edges",
                                       "write_palette_labels"])
def test_a_killed_community_run_is_refused_then_finished_exactly(
    clean_db: Database, neo4j_settings: Settings, graph: tuple[Path, Codes, float, Edges], statement: str
) -> None:
    path, codes, t, edges = graph
    ingest(clean_db, codes, edges, t)
    detect(clean_db)
    clean = _community_state(clean_db)
    assert clean[2], "the test graph needs LINKED edges"
    reset(clean_db)
    ingest(clean_db, codes, edges, t)
    r = _cli(neo4j_settings, "communities", fault=statement)
    assert r.returncode == KILLED
    meta = graph_meta(clean_db)
    assert meta is not None and meta.writing == "communities" and meta.communityGeneration != meta.generation
    with pytest.raises(ConfigError, match="communities"):
        queryable_meta(clean_db)
    queryable_meta(clean_db, communities=False)  # the graph itself is complete: kNN may answer
    left = [g["graphName"] for g in clean_db.read("list_projections") if g["graphName"].startswith("cxrneo-")]
    r = _cli(neo4j_settings, "communities")
    assert r.returncode == 0, r.stderr
    assert "finished the community run that was interrupted" in r.stdout
    if left:
        assert f"dropped {len(left)} GDS projection" in r.stdout
    assert not [g for g in clean_db.read("list_projections") if g["graphName"].startswith("cxrneo-")]
    assert _community_state(clean_db) == clean  # the same communities as an uninterrupted run
    queryable_meta(clean_db)


def test_communities_refuse_counts_that_differ_from_graph_meta(
    clean_db: Database, graph: tuple[Path, Codes, float, Edges]
) -> None:
    path, codes, t, edges = graph
    ingest(clean_db, codes.subset(np.arange(100)),
           similarity_edges(normalise(codes.codes[:100]), t), t)
    clean_db.write("merge_images", rows=[{"id": "stray", "path": "", "studyUid": "", "seriesUid": "", "code": [1.0] * 1024,
                                          "codeBytes": None, "columns": {"labels": [], "patientId": ""}}])
    with pytest.raises(ConfigError, match="GraphMeta says 100"):
        detect(clean_db)
    with pytest.raises(ConfigError, match="GraphMeta says 100"):
        queryable_meta(clean_db, communities=False)


def test_communities_do_not_depend_on_the_load_order(
    clean_db: Database, graph: tuple[Path, Codes, float, Edges]
) -> None:
    _, codes, t, _ = graph
    found = []
    for order in (np.arange(len(codes)), np.random.default_rng(7).permutation(len(codes))):
        reset(clean_db)
        shuffled = codes.subset(order)
        unit = normalise(shuffled.codes)
        e = similarity_edges(unit, t)
        flip = np.random.default_rng(1).permutation(len(e))  # edges in another order too
        ingest(clean_db, shuffled, Edges(e.src[flip], e.dst[flip], e.cosine[flip]), t)
        detect(clean_db)
        found.append(_community_state(clean_db))
    assert found[0] == found[1]  # same partition, same community ids, same statistics


def test_a_writer_paused_past_the_ttl_cannot_write_after_a_takeover(
    clean_db: Database, graph: tuple[Path, Codes, float, Edges]
) -> None:
    """The lease fences its writers: every write checks the owner in its own transaction."""
    _, codes, t, edges = graph
    ingest(clean_db, codes, edges, t)
    before = graph_meta(clean_db)
    paused = claim(clean_db, "communities")
    paused._stop.set()  # paused: no heartbeat from here (as under SIGSTOP or a long GC pause)
    time.sleep(2.5)
    taker = claim(clean_db, "ingest", ttl_s=2.0)  # another writer's TTL has passed: a takeover
    try:
        assert not paused.lost  # the paused writer has not noticed: only the fence stops it
        with pytest.raises(LeaseLostError, match="lost its writer lease"):
            paused.db.write("begin_graph_write", writing="communities", seeded=False)
        with pytest.raises(LeaseLostError, match="lost its writer lease"):
            paused.db.auto("drop_communities")
        assert graph_meta(clean_db) == before  # nothing of the fenced writes was committed
        taker.db.write("begin_graph_write", writing="ingest", seeded=False)  # the holder writes
        after = graph_meta(clean_db)
        assert after is not None and before is not None
        assert after.writing == "ingest" and after.generation == before.generation + 1
    finally:
        release(taker)
        release(paused)  # a no-op for the lost lease: it cannot release the taker's
    assert not clean_db.read("fetch_writer_lease")


def test_reset_refuses_while_another_writer_holds_the_lease(clean_db: Database) -> None:
    held = claim(clean_db, "ingest")
    try:
        from cxrneo.db.lease import LeaseHeldError

        with pytest.raises(LeaseHeldError, match="`cxrneo ingest`"):
            reset(clean_db)
    finally:
        release(held)
    reset(clean_db)


def test_a_rerun_on_an_unchanged_graph_gives_the_clean_communities(
    clean_db: Database, graph: tuple[Path, Codes, float, Edges]
) -> None:
    _, codes, t, edges = graph
    ingest(clean_db, codes, edges, t)
    first = detect(clean_db)
    clean = _community_state(clean_db)
    again = detect(clean_db)  # every image has a community: no seed, the same result
    assert not first.seeded and not again.seeded
    assert _community_state(clean_db) == clean and again.generation > first.generation
