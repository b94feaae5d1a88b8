"""The optional vector index against a real Neo4j: off by default, built on request before the
command returns, kept by later ingests, rebuilt in one go by a first load, dropped on request."""

import numpy as np
import pytest

from cxrneo.archive.codes import CODE_WIDTH, Codes
from cxrneo.cli import jobs
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, reset
from cxrneo.db.schema import VECTOR_INDEX, drop_vector_index, vector_index_state
from cxrneo.db.stored import StoredGraph
from cxrneo.errors import DatabaseError
from cxrneo.graph import normalise
from cxrneo.records import ImageRecord
from cxrneo.retrieval import Method
from cxrneo.retrieval.question import Question
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
T = 0.3


def _codes(n: int, start: int = 0, seed: int = 5) -> Codes:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, CODE_WIDTH)).astype(np.float32)
    rng = np.random.default_rng(seed + start)
    which = rng.integers(0, 4, n)
    x = centres[which] + 0.8 * rng.standard_normal((n, CODE_WIDTH)).astype(np.float32)
    images = tuple(ImageRecord(id=f"v{start + i:03d}", patient_id=f"p{start + i}", labels=(f"L{which[i]}",))
                   for i in range(n))
    return Codes(codes=x, images=images)


def _index_answers(db: Database, codes: Codes, row: int) -> list[str]:
    """The ids db.index.vector.queryNodes gives for a stored code (itself first, as the Browser guide's query)."""
    return [r["id"] for r in db.read("query_image_code_index", code=codes.codes[row].tolist(), k=5)]


def _exact(codes: Codes, row: int, k: int) -> list[str]:
    unit = normalise(codes.codes)
    cos = unit @ unit[row]
    return [codes.ids[i] for i in np.lexsort((np.array(codes.ids), -cos))[:k]]


@pytest.fixture
def no_index(clean_db: Database) -> Database:
    """An empty graph without the vector index (another test may have left one)."""
    drop_vector_index(clean_db)
    return clean_db


def test_by_default_there_is_no_vector_index_and_queries_answer(no_index: Database) -> None:
    codes = _codes(60)
    _, rep = build(no_index, codes, threshold=T)
    assert rep.vector_index == "none" and vector_index_state(no_index) is None
    detect(no_index)  # the communities' schema step leaves it out too
    assert VECTOR_INDEX not in {r["name"] for r in no_index.auto("show_indexes")}
    with pytest.raises(DatabaseError, match="no such vector schema index"):  # as the Browser guide says
        _index_answers(no_index, codes, 0)
    neo = StoredGraph(no_index, None).retriever()  # the service's reader: codes from Neo4j, no index needed
    for row in (0, 17, 42):
        hits = neo.query(codes.codes[row], Question(5, method=Method.KNN))
        assert [h.image_id for h in hits] == _exact(codes, row, 5)
    more = Codes(codes=np.concatenate([codes.codes, _codes(10, 60).codes]), images=codes.images + _codes(10, 60).images)
    _, rep = build(no_index, more)  # a watch batch on a graph without the index does not create it
    assert rep.vector_index == "none" and vector_index_state(no_index) is None


def test_an_ingest_asked_for_the_index_returns_with_it_online(no_index: Database) -> None:
    codes = _codes(60)
    _, rep = build(no_index, codes, threshold=T, vector_index=True)
    assert rep.vector_index == "built" and vector_index_state(no_index) == "ONLINE"  # right on return
    for row in (3, 30):
        assert _index_answers(no_index, codes, row)[0] == codes.ids[row]
    more = Codes(codes=np.concatenate([codes.codes, _codes(10, 60).codes]), images=codes.images + _codes(10, 60).images)
    _, rep = build(no_index, more)  # no flag: a graph that has the index keeps it up to date
    assert rep.vector_index == "kept" and vector_index_state(no_index) == "ONLINE"
    assert _index_answers(no_index, more, 65)[0] == "v065"


def test_a_first_load_rebuilds_an_index_left_by_a_reset(no_index: Database) -> None:
    codes = _codes(40)
    build(no_index, codes, threshold=T, vector_index=True)
    reset(no_index)  # the graph goes, the index stays: the next first load wants it again
    assert vector_index_state(no_index) == "ONLINE"
    _, rep = build(no_index, codes, threshold=T)
    assert rep.vector_index == "built" and vector_index_state(no_index) == "ONLINE"
    assert _index_answers(no_index, codes, 7)[0] == "v007"


def test_the_db_command_builds_and_drops_it(no_index: Database, neo4j_settings: Settings) -> None:
    codes = _codes(40)
    build(no_index, codes, threshold=T)
    assert jobs.vector_index(neo4j_settings, build=True)[0]  # built, and online on return
    assert vector_index_state(no_index) == "ONLINE" and _index_answers(no_index, codes, 9)[0] == "v009"
    assert not jobs.vector_index(neo4j_settings, build=True)[0]  # already there: nothing to do
    assert jobs.vector_index(neo4j_settings, build=False)[0] and vector_index_state(no_index) is None
    assert not jobs.vector_index(neo4j_settings, build=False)[0]
