"""GDS Louvain for `cxrneo evaluate`, beside the served graph: a projection that lives only for
the evaluation, built from the rows the evaluation holds; the database is never written.

The bound: the projection takes the whole graph in one statement (GDS's Cypher aggregation builds
one graph per query, it cannot be fed in batches), the edge list travelling as two integer
parameter lists (about 10 bytes an edge on the wire). Evaluations of tens of thousands of images
fit: 40,000 images and 1,000,000 edges projected and ran Louvain in 31 s on the 2-core VM with a
4 GiB heap. Far larger ones need a larger heap (or `--no-neo4j`).
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from cxrneo.archive.codes import Codes
from cxrneo.db.connection import Database
from cxrneo.db.ingest import oriented
from cxrneo.errors import DatabaseError
from cxrneo.graph import Edges

if TYPE_CHECKING:
    from cxrneo.evaluation.evaluate import CommunitiesFn

# Not `cxrneo-`: a community run drops stale `cxrneo-*` projections, never a live evaluation's.
PREFIX = "cxrneo_eval-"


@contextmanager
def evaluation_projection(db: Database, ids: list[str], edges: Edges) -> Iterator[str]:
    """A uniquely named undirected projection of rows 0..n-1 (entered in image-id order, as the
    served projection enters Image nodes) and `edges`, each pair once from its smaller id;
    dropped on exit, error or not."""
    a, b, _, rank = oriented(ids, edges)
    nodes = np.empty(len(ids), np.int64)
    nodes[rank] = np.arange(len(ids))
    name = f"{PREFIX}{uuid.uuid4().hex}"
    try:
        got = db.auto("project_evaluation_graph", graph=name, nodes=nodes.tolist(),
                      src=a.tolist(), dst=b.tolist())[0]
        if int(got["nodeCount"]) != len(ids):
            raise DatabaseError(f"the evaluation's projection holds {got['nodeCount']} nodes, expected {len(ids)}")
        yield name
    finally:
        db.auto("drop_projection", graph=name)


def louvain_beside(db: Database, ids: list[str], edges: Edges, concurrency: int = 1) -> np.ndarray:
    """Community of each row of `ids` by GDS Louvain (docs/method.md, section 4: unweighted, the
    served run's defaults) on an evaluation-only projection; the database is left as it was."""
    community = np.full(len(ids), -1, np.int64)
    with evaluation_projection(db, ids, edges) as graph:
        for r in db.auto("stream_louvain", graph=graph, config={"concurrency": concurrency}):
            community[int(r["nodeId"])] = int(r["communityId"])
    missing = np.flatnonzero(community < 0)
    if len(missing):
        raise DatabaseError(f"{len(missing)} database images got no community (e.g. {ids[int(missing[0])]})")
    return community


def gds_communities(db: Database) -> "CommunitiesFn":
    """communities_fn for cxrneo.evaluation.evaluate (docs/method.md, section 6): GDS Louvain on a projection
    of the database split, beside (never into) the graph the database serves."""

    def communities(db_codes: Codes, edges: Edges, threshold: float) -> np.ndarray:
        return louvain_beside(db, db_codes.ids, edges)

    return communities
