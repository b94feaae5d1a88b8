"""Diffusion on the stored graph with GDS personalized PageRank (gds.pageRank.stream, sourceNodes): a
cross-check for tests and benchmarks, not part of cxrneo.

The projection (Image/SIMILAR, undirected, with the edges' cosine) is kept in the GDS catalog
under one name and reused by every query; `drop` removes it (after the graph changed).

Same definition as cxrneo.retrieval.diffusion, whose numpy iteration it matches
(tests/integration/test_diffusion_gds.py): dampingFactor = 1 - restart; GDS starts every
source at 1 - d and runs maxIterations - 1 propagation steps, so maxIterations =
iterations + 1; sinks keep their mass. Two differences: GDS gives each source the same
weight (sourceNodes takes no per-node weights in GDS 2.13), so scores equal numpy's with
uniform seed weights times the number of seeds; and GDS stops a node sending once its change
is at most `tolerance` (0 here, so it runs every step).
"""

from cxrneo.db.connection import Database
from cxrneo.errors import ConfigError, NotFoundError
from cxrneo.retrieval.diffusion import DiffusionParams

PROJECTION = "cxrneo-diffusion"


def ensure_projection(db: Database, graph: str = PROJECTION) -> tuple[int, int]:
    """Project the graph for diffusion unless the catalog holds it with the stored graph's size (a
    projection left from before an ingest is dropped and made again); its (nodes, relationships)."""
    found = db.read("check_projection", graph=graph)
    counts = db.read("count_graph")[0]
    if found and (found[0]["nodeCount"], found[0]["relationshipCount"]) != (counts["nodes"], 2 * counts["edges"]):
        drop(db, graph)
        found = []
    if not found:
        if counts["nodes"] == 0:
            raise NotFoundError("the graph holds no images: run `cxrneo ingest` first")
        found = db.auto("project_diffusion_graph", graph=graph)
    return int(found[0]["nodeCount"]), int(found[0]["relationshipCount"])


def drop(db: Database, graph: str = PROJECTION) -> None:
    """Remove the kept projection (a no-op when there is none)."""
    db.auto("drop_projection", graph=graph)


def personalized_pagerank(
    db: Database, seeds: list[str], params: DiffusionParams, limit: int = 1_000_000,
    graph: str = PROJECTION,
) -> dict[str, float]:
    """Image id -> GDS PageRank score from `seeds` (uniform), the `limit` highest positive scores."""
    if not seeds:
        raise ConfigError("personalized PageRank needs at least one seed image")
    if params.scope != "graph":
        raise ConfigError("GDS diffusion runs on the whole projection (scope 'graph') only")
    ensure_projection(db, graph)
    rows = db.read(
        "stream_personalized_pagerank", graph=graph, seeds=list(seeds), dampingFactor=params.damping,
        maxIterations=params.iterations + 1, tolerance=0.0,
        weightProperty="cosine" if params.weighting == "cosine" else None, limit=int(limit),
    )
    return {r["id"]: float(r["score"]) for r in rows}
