"""Louvain communities by GDS, written to Image.community, materialised as Community/LINKED."""

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from pydantic import BaseModel

from cxrneo.db.connection import Database
from cxrneo.db.lease import Lease, writer_lease
from cxrneo.db.meta import graph_meta
from cxrneo.db.schema import ensure_schema
from cxrneo.errors import ConfigError, DatabaseError, NotFoundError
from cxrneo.records import CommunityStats

WRITE_BATCH = 10_000
PREFIX = "cxrneo-"
MAX_CONCURRENCY = 4  # OpenGDS runs at most 4 threads


class CommunityReport(BaseModel):
    """What one Louvain run found."""

    communities: int
    modularity: float
    levels: int
    size_min: int
    size_median: float
    size_max: int
    top_sizes: list[int]
    linked_pairs: int
    concurrency: int
    seeded: bool
    old_images: int
    changed_fraction: float | None
    generation: int
    louvain_seconds: float
    seconds: float
    stale_projections: int = 0
    recovered: bool = False  # an interrupted community run was finished


@contextmanager
def projection(db: Database, seeded: bool = False) -> Iterator[str]:
    """A uniquely named undirected projection of Image/SIMILAR (nodes in id order), dropped on
    exit, error or not; `seeded` carries the stored communities as node property 'community'."""
    name = f"{PREFIX}{uuid.uuid4().hex}"
    try:
        db.auto("project_similarity_graph", graph=name, seeded=seeded)
        yield name
    finally:
        db.auto("drop_projection", graph=name)


def assignments(db: Database) -> dict[str, int]:
    """Image id -> community, for every image that has one."""
    return {r["id"]: int(r["community"]) for r in db.read("match_assignments")}


def stats_from_pairs(
    sizes: dict[int, int], pairs: list[tuple[int, int, int]]
) -> tuple[dict[int, CommunityStats], dict[tuple[int, int], int]]:
    """Community n, l, d and between-community edge counts from (community a, community b, edges)
    rows of directed SIMILAR edges; LINKED keys are (smaller id, larger id)."""
    l_: Counter[int] = Counter()
    d: Counter[int] = Counter()
    linked: Counter[tuple[int, int]] = Counter()
    for a, b, e in pairs:
        d[a] += e
        d[b] += e
        if a == b:
            l_[a] += e
        else:
            linked[(min(a, b), max(a, b))] += e
    stats = {c: CommunityStats(id=c, n=n, l=l_[c], d=d[c]) for c, n in sizes.items()}
    return stats, dict(linked)


def _materialise(
    db: Database, lease: Lease
) -> tuple[dict[int, CommunityStats], dict[tuple[int, int], int]]:
    sizes = {int(r["community"]): int(r["n"]) for r in db.read("count_community_sizes")}
    pairs = [(int(r["a"]), int(r["b"]), int(r["edges"])) for r in db.read("count_community_pairs")]
    stats, linked = stats_from_pairs(sizes, pairs)
    lease.check()
    db.auto("drop_communities")
    rows = [s.model_dump() for s in stats.values()]
    for s in range(0, len(rows), WRITE_BATCH):
        lease.check()
        db.write("create_communities", rows=rows[s : s + WRITE_BATCH])
    links = [{"a": a, "b": b, "edges": e} for (a, b), e in sorted(linked.items())]
    for s in range(0, len(links), WRITE_BATCH):
        lease.check()
        db.write("create_linked_edges", rows=links[s : s + WRITE_BATCH])
    return stats, linked


def drop_stale_projections(db: Database) -> int:
    """Drop `cxrneo-*` projections left in memory by killed runs (call with the lease held)."""
    stale = [r["graphName"] for r in db.read("list_projections") if str(r["graphName"]).startswith(PREFIX)]
    for name in stale:
        db.auto("drop_projection", graph=name)
    return len(stale)


PALETTE = 12  # colour labels for Neo4j Browser, see cypher/style.grass


def detect(db: Database, concurrency: int = 1, seed_from_existing: bool = True) -> CommunityReport:
    """Run GDS Louvain (write mode) and materialise Community nodes and LINKED edges.

    With `seed_from_existing`, when new images arrived since the last run, images that already
    carry a community seed Louvain with it, so community ids stay stable across incremental
    updates; a graph whose every image has a community is recomputed unseeded. Concurrency 1 is deterministic and,
    nodes being projected in id order, independent of the order the graph was loaded in.
    Holds the writer lease; readers refuse from the first write until the verified end.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be 1 to {MAX_CONCURRENCY} (OpenGDS's limit), got {concurrency}")
    with writer_lease(db, "communities") as lease:
        return _detect(lease.db, concurrency, seed_from_existing, lease)


def _detect(db: Database, concurrency: int, seed_from_existing: bool, lease: Lease) -> CommunityReport:
    t0 = time.perf_counter()
    meta = graph_meta(db)
    if meta is None:
        raise NotFoundError("the database holds no complete graph (no GraphMeta): run `cxrneo ingest` first")
    if meta.storedNodes == 0:
        raise NotFoundError("the graph holds no images: run `cxrneo ingest` first")
    meta.require_graph()  # an interrupted ingest or counts that differ from GraphMeta: refused
    stale = drop_stale_projections(db)
    ensure_schema(db)
    before = assignments(db)
    recovered = meta.writing == "communities"
    interrupted_unseeded = recovered and meta.communitySeeded is False
    # Seeds keep community ids stable when new images arrived (some have no community yet).
    # A graph whose every image has a community is recomputed from scratch: deterministic, the
    # communities of a clean build (a seeded rerun could move a few images). Partial assignments
    # of an interrupted unseeded run are no seed either.
    new_images = len(before) < int(meta.storedNodes or 0)
    # and a graph with no finished community run (after a reset: stale properties) has no seeds
    finished_before = meta.communities is not None
    seeded = (seed_from_existing and bool(before) and new_images and finished_before
              and not interrupted_unseeded)
    config: dict[str, object] = {"writeProperty": "community", "concurrency": concurrency}
    if seeded:
        config["seedProperty"] = "community"
    lease.check()
    # readers refuse from here (generation moves on, writing = 'communities') until the verified end
    db.write("begin_graph_write", writing="communities", seeded=seeded)
    with projection(db, seeded) as graph:
        t1 = time.perf_counter()
        run = db.auto("write_louvain", graph=graph, config=config)[0]
        t_louvain = time.perf_counter() - t1
    after = assignments(db)
    stats, linked = _materialise(db, lease)
    db.auto("write_palette_labels", colours=PALETTE)
    check = db.read("count_communities")[0]
    if (check["communities"], check["linked"], check["unassigned"]) != (len(stats), len(linked), 0):
        raise DatabaseError(
            f"after the community run the database holds {check['communities']} communities, "
            f"{check['linked']} LINKED edges and {check['unassigned']} images without a community; "
            f"expected {len(stats)}, {len(linked)} and 0: rerun `cxrneo communities`"
        )
    lease.check()
    generation = db.write("write_community_generation", communities=len(stats), linked=len(linked))
    changed = sum(1 for i, c in before.items() if after.get(i) != c)
    sizes = np.array(sorted((s.n for s in stats.values()), reverse=True))
    return CommunityReport(
        communities=len(stats),
        modularity=float(run["modularity"]),
        levels=int(run["ranLevels"]),
        size_min=int(sizes.min()),
        size_median=float(np.median(sizes)),
        size_max=int(sizes.max()),
        top_sizes=[int(x) for x in sizes[:10]],
        linked_pairs=len(linked),
        concurrency=concurrency,
        seeded=seeded,
        old_images=len(before),
        changed_fraction=changed / len(before) if before else None,
        generation=int(generation[0]["generation"]) if generation else 0,
        louvain_seconds=t_louvain,
        seconds=time.perf_counter() - t0,
        stale_projections=stale,
        recovered=recovered,
    )
