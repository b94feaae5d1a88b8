"""GDS personalized PageRank on the stored graph ranks as the numpy diffusion does."""

import numpy as np
import pytest

from cxrneo.archive.codes import CODE_WIDTH, Codes
from cxrneo.db.connection import Database
from cxrneo.db.ingest import ingest
from cxrneo.errors import ConfigError
from cxrneo.graph import normalise, similarity_edges, threshold_for_degree
from cxrneo.records import ImageRecord
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.diffusion import (
    DiffusionParams,
    Walk,
    adjacency,
    personalized_pagerank,
    rounding_bound,
    seed_vector,
    subgraph,
)
from tests import gds_diffusion

pytestmark = pytest.mark.neo4j


def clustered(n: int, seed: int = 5) -> Codes:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, CODE_WIDTH)).astype(np.float32)
    which = rng.integers(0, 4, n)
    x = centres[which] + 0.9 * rng.standard_normal((n, CODE_WIDTH)).astype(np.float32)
    images = tuple(ImageRecord(id=f"d{i:03d}", patient_id=f"p{i}", labels=()) for i in range(n))
    return Codes(codes=x.astype(np.float32), images=images)


@pytest.mark.parametrize("params", [
    DiffusionParams(restart=0.5, iterations=10, scope="graph"),
    DiffusionParams(restart=0.15, iterations=30, weighting="cosine", scope="graph"),
])
def test_gds_and_numpy_rank_the_same(clean_db: Database, params: DiffusionParams) -> None:
    codes = clustered(150)
    unit = normalise(codes.codes)
    t = threshold_for_degree(unit, 8)
    edges = similarity_edges(unit, t)
    ingest(clean_db, codes, edges, t)
    view = MemoryGraph.build(codes.ids, edges, [0] * len(codes))
    codes_or_none = unit if params.weighting == "cosine" else None
    walk = subgraph(Walk(adjacency(view.indptr, view.indices, codes_or_none, dtype=np.float64)))  # as GDS: float64
    nodes, rels = gds_diffusion.ensure_projection(clean_db)
    assert (nodes, rels) == (len(codes), 2 * len(edges))  # undirected: each edge both ways
    rng = np.random.default_rng(0)
    try:
        for q in rng.choice(len(codes), 4, replace=False):
            sims = unit @ unit[q]
            seeds, w = seed_vector(Cosines.of(sims), np.flatnonzero(sims >= np.float32(t)), None, "uniform")
            s = np.zeros(len(codes))
            s[seeds] = w
            ours = personalized_pagerank(walk, s, params.damping, params.iterations) * seeds.size
            theirs = gds_diffusion.personalized_pagerank(clean_db, [codes.ids[r] for r in seeds], params)
            assert set(theirs) == {codes.ids[r] for r in np.flatnonzero(ours > 0)}
            got = np.array([theirs.get(i, 0.0) for i in codes.ids])
            np.testing.assert_allclose(got, ours, rtol=1e-5, atol=1e-9)
            # GDS's order is numpy's, up to ties within the tolerance
            order = np.argsort(-got, kind="stable")
            assert (np.diff(ours[order]) <= 1e-7).all()
    finally:
        gds_diffusion.drop(clean_db)
    assert not clean_db.read("check_projection", graph=gds_diffusion.PROJECTION)


def test_gds_diffusion_ranks_like_the_retriever(clean_db: Database) -> None:
    """With uniform seeds, mix 0 and the GDS scores, the Retriever's own diffusion order comes back."""
    from cxrneo.retrieval.diffusion import diffuse

    codes = clustered(120, seed=9)
    unit = normalise(codes.codes)
    t = threshold_for_degree(unit, 6)  # sparse: no cluster is a clique, scores differ
    edges = similarity_edges(unit, t)
    ingest(clean_db, codes, edges, t)
    view = MemoryGraph.build(codes.ids, edges, [0] * len(codes))
    r = Retriever(view, unit, codes.ids, t)
    params = DiffusionParams(restart=0.3, iterations=15, seed_weights="uniform", mix=0.0, scope="graph")
    try:
        sims = r.codes @ unit[7]
        seeds = [codes.ids[i] for i in np.flatnonzero(sims >= np.float32(t))]
        theirs = gds_diffusion.personalized_pagerank(clean_db, seeds, params, limit=10)
        assert len(theirs) == 10
        blocked = np.zeros(0, np.int64)
        ours = [codes.ids[row] for row in diffuse(r, Cosines.of(sims), blocked, 10, strict=True, params=params).rows]
        score = np.array([theirs[i] for i in ours])
        # the Retriever's scores are float32: its order is GDS's up to ties within the documented bound
        eps = rounding_bound(params.iterations, int(np.diff(view.indptr).max()))
        assert set(ours) == set(theirs) and (np.diff(score) <= 2.01 * eps * score.max() + 1e-9).all()
    finally:
        gds_diffusion.drop(clean_db)


def test_gds_diffusion_refuses_bad_calls(clean_db: Database) -> None:
    with pytest.raises(ConfigError, match="seed"):
        gds_diffusion.personalized_pagerank(clean_db, [], DiffusionParams())
    with pytest.raises(ConfigError, match="scope"):
        gds_diffusion.personalized_pagerank(clean_db, ["x"], DiffusionParams(scope="communities"))
