"""GDS Louvain on a real Neo4j: planted communities, exact statistics, determinism, reseeding."""

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from cxrneo.archive.codes import Codes
from cxrneo.archive.synthetic import synthesise
from cxrneo.db.communities import assignments, detect, projection, stats_from_pairs
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, ingest
from cxrneo.graph import Edges
from cxrneo.records import ImageRecord
from cxrneo.retrieval.modularity import coarse_modularity

pytestmark = pytest.mark.neo4j


def _planted(groups: int = 4, size: int = 40, p_in: float = 0.3, p_out: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = groups * size
    truth = np.repeat(np.arange(groups), size)
    i, j = np.triu_indices(n, k=1)
    p = np.where(truth[i] == truth[j], p_in, p_out)
    keep = rng.random(len(i)) < p
    edges = Edges(i[keep].astype(np.int64), j[keep].astype(np.int64), np.ones(keep.sum(), np.float32))
    x = rng.standard_normal((n, 1024)).astype(np.float32)
    recs = tuple(ImageRecord(id=f"n{k:03d}") for k in range(n))
    return Codes(codes=x, images=recs), edges, truth


def test_louvain_recovers_a_planted_partition(clean_db: Database) -> None:
    codes, edges, truth = _planted()
    ingest(clean_db, codes, edges, 0.0)
    rep = detect(clean_db)
    found = assignments(clean_db)
    pred = np.array([found[i] for i in codes.ids])
    assert normalized_mutual_info_score(truth, pred) >= 0.9
    assert rep.communities == len(set(pred.tolist())) and rep.modularity > 0.5


def test_materialised_statistics_equal_a_recount(clean_db: Database) -> None:
    codes, edges, _ = _planted(groups=5, size=30, p_out=0.03, seed=1)
    ingest(clean_db, codes, edges, 0.0)
    rep = detect(clean_db)
    comm = assignments(clean_db)
    c = np.array([comm[i] for i in codes.ids])
    stored = {r["id"]: (r["n"], r["l"], r["d"]) for r in clean_db.read("match_communities")}
    want: dict[int, list[int]] = {}
    for k in set(c.tolist()):
        members = c == k
        internal = int((members[edges.src] & members[edges.dst]).sum())
        degree = int(members[edges.src].sum() + members[edges.dst].sum())
        want[k] = [int(members.sum()), internal, degree]
    assert stored == {k: tuple(v) for k, v in want.items()}
    linked = {(r["a"], r["b"]): r["edges"] for r in clean_db.read("match_linked")}
    cross: dict[tuple[int, int], int] = {}
    for a, b in zip(c[edges.src].tolist(), c[edges.dst].tolist(), strict=True):
        if a != b:
            key = (min(a, b), max(a, b))
            cross[key] = cross.get(key, 0) + 1
    assert linked == cross
    stats, _ = stats_from_pairs({k: v[0] for k, v in want.items()}, [])
    recount = {k: s.model_copy(update={"l": want[k][1], "d": want[k][2]}) for k, s in stats.items()}
    assert coarse_modularity(recount, len(edges)) == pytest.approx(rep.modularity, abs=1e-6)


def test_same_input_same_communities(clean_db: Database) -> None:
    codes, edges, _ = _planted(p_out=0.05, seed=2)
    ingest(clean_db, codes, edges, 0.0)
    detect(clean_db, seed_from_existing=False)
    first = assignments(clean_db)
    detect(clean_db, seed_from_existing=False)
    assert assignments(clean_db) == first


def test_reseeded_update_keeps_old_communities(clean_db: Database) -> None:
    recs = [ImageRecord(id=f"i{k:03d}", labels=(("Mass",), ("Effusion",), ())[k % 3], patient_id=f"p{k}",
                        view="PA") for k in range(200)]
    codes = synthesise(recs, noise=0.8, seed=0)
    build(clean_db, codes.subset(np.arange(170)), mean_degree=10)
    detect(clean_db)
    before = assignments(clean_db)
    build(clean_db, codes)
    rep = detect(clean_db)
    after = assignments(clean_db)
    assert rep.seeded and rep.old_images == 170 and len(after) == 200
    changed = sum(after[i] != c for i, c in before.items()) / len(before)
    assert rep.changed_fraction == pytest.approx(changed) and changed < 0.2
    meta = clean_db.read("fetch_graph_meta")[0]
    assert meta["communityGeneration"] == meta["generation"] == 4  # 2 ingests + 2 community runs


def test_projection_is_dropped_on_error(clean_db: Database) -> None:
    codes, edges, _ = _planted(groups=2, size=10)
    ingest(clean_db, codes, edges, 0.0)
    with pytest.raises(RuntimeError), projection(clean_db) as name:
        assert name in {r["graphName"] for r in clean_db.read("list_projections")}
        raise RuntimeError("boom")
    assert name not in {r["graphName"] for r in clean_db.read("list_projections")}
