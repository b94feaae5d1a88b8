"""The generation contract against the real statements: each write moves exactly what
cxrneo/db/generations.py says, through a graph's life (new, communities, incremental ingest, rerun)."""

import numpy as np
import pytest

from cxrneo.db import generations as gen
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, reset
from cxrneo.db.lease import claim, release
from cxrneo.db.meta import GraphMeta, graph_meta
from tests.unit.test_evaluate import make_codes

pytestmark = pytest.mark.neo4j


def _meta(db: Database) -> GraphMeta:
    meta = graph_meta(db)
    assert meta is not None and gen.check(meta) == [], meta
    return meta


def test_each_write_moves_what_the_contract_says(clean_db: Database) -> None:
    codes = make_codes(160, seed=5)
    build(clean_db, codes.subset(np.arange(120)), mean_degree=8)
    new = _meta(clean_db)
    assert (new.generation, new.dataGeneration, new.communityGeneration, new.writing) == (1, 1, 0, None)

    lease = claim(clean_db, "communities")  # begin_graph_write alone: generation on, writer marked
    try:
        moved = lease.db.write("begin_graph_write", writing="communities", seeded=False)[0]["generation"]
    finally:
        release(lease)
    began = _meta(clean_db)
    assert (moved, began.generation, began.writing) == (2, 2, "communities")
    assert not gen.data_unchanged(new, began) and not gen.communities_unchanged(new, began)
    assert gen.data_key(began) == gen.data_key(new)  # no image or edge changed

    detect(clean_db)  # a (recovering) community run: begins again, ends verified
    done = _meta(clean_db)
    assert (done.generation, done.communityGeneration, done.writing) == (3, 3, None)
    assert gen.data_key(done) == gen.data_key(new) and gen.community_key(done) != gen.community_key(new)
    done.require_queryable()

    build(clean_db, codes)  # an incremental ingest: generation and dataGeneration move, communities stale
    grown = _meta(clean_db)
    assert (grown.generation, grown.dataGeneration, grown.communityGeneration) == (4, 4, 3)
    assert gen.data_key(grown) != gen.data_key(done) and grown.graphId == new.graphId

    build(clean_db, codes)  # nothing new: nothing moves
    assert gen.state_key(_meta(clean_db)) == gen.state_key(grown)

    detect(clean_db)
    last = _meta(clean_db)
    assert (last.generation, last.dataGeneration, last.communityGeneration) == (5, 4, 5)

    reset(clean_db)  # GraphMeta goes; the next graph is another one
    assert graph_meta(clean_db) is None
    build(clean_db, codes, mean_degree=8)
    assert _meta(clean_db).graphId != new.graphId
