"""The generation contract against the real statements: each write moves exactly what
cxrneo/db/generations.py says, through a graph's life (new, communities, incremental ingest, rerun); and
a reader's side of it: an answer is computed on the generation open in memory and settled by one
statement (GraphMeta and the hits' records together), computed again when a write moved the graph."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.db import generations as gen
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build, reset
from cxrneo.db.lease import claim, release
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.errors import NotFoundError, NotReadyError
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import GENERATION_RETRIES, QueryAnswer, Searcher
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


class Counted(Database):
    """The real database, noting the name of every read statement it runs; `before(name)` runs first (a
    concurrent write, made at that moment through another handle)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db._driver, db.database, db.uri, db.user, db.retry_seconds)
        self.ran: list[str] = []
        self.before: Callable[[str], None] | None = None

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        self.ran.append(name)
        if self.before is not None:
            self.before(name)
        return super().read(name, **params)


ANSWER = "fetch_meta_and_images"  # the one statement of an answer: GraphMeta and the hits' records


def _hits(answer: QueryAnswer) -> list[tuple[str, float, str | None]]:
    return [(h.image_id, h.cosine, h.patient_id) for h in answer.hits]


def _graph(db: Database, n: int = 120) -> Codes:
    codes = make_codes(160, seed=6)
    build(db, codes.subset(np.arange(n)), mean_degree=8)
    detect(db)
    return codes


def _served(db: Database, tmp_path: Path) -> tuple[Counted, Searcher]:
    """A warm service over `db` whose statements are counted."""
    counted = Counted(db)
    searcher = Searcher.open(counted, tmp_path / "served")
    searcher.warm()
    return counted, searcher


def test_an_answer_is_one_statement_graph_meta_and_its_records_together(clean_db: Database, tmp_path: Path) -> None:
    codes = _graph(clean_db)
    counted, searcher = _served(clean_db, tmp_path)
    fresh = Searcher.open(clean_db, tmp_path / "fresh")
    asks = [lambda s, m: s.by_id("img0007", QueryOptions(k=6, method=m, exclude_patient=True)),
            lambda s, m: s.by_code(codes.codes[130], QueryOptions(k=5, method=m)),
            lambda s, m: s.by_examples(["img0003", "img0050"], ["img0090"], QueryOptions(k=7, method=m))]
    for method in ("knn", "community", "hybrid", "diffusion"):
        for ask in asks:
            counted.ran.clear()
            got = ask(searcher, method)
            assert counted.ran == [ANSWER], (method, counted.ran)
            assert _hits(got) == _hits(ask(fresh, method)) and got.hits and all(h.patient_id for h in got.hits)
    counted.ran.clear()
    with pytest.raises(NotFoundError):  # an id the open generation lacks: GraphMeta read to be sure, once
        searcher.by_id("no-such-image", QueryOptions(k=3, method="knn"))
    assert counted.ran == ["fetch_graph_meta"]


def test_a_write_between_the_answer_and_its_statement_answers_again_on_the_new_generation(
    clean_db: Database, tmp_path: Path
) -> None:
    _graph(clean_db)
    counted, searcher = _served(clean_db, tmp_path)
    opened = _meta(clean_db)
    writes = []

    def community_run_once(name: str) -> None:
        if name == ANSWER and not writes:
            writes.append(detect(clean_db))  # moves the generation after the answer was computed on the old one

    counted.before = community_run_once
    counted.ran.clear()
    got = searcher.by_id("img0011", QueryOptions(k=6, method="community"))
    moved = _meta(clean_db)
    assert moved.generation > opened.generation and writes
    assert (got.generation, got.communityGeneration) == (moved.generation, moved.communityGeneration)
    assert counted.ran[0] == ANSWER and counted.ran[-1] == ANSWER and counted.ran.count(ANSWER) == 2
    assert "read_image_communities" in counted.ran  # between them: the new generation's communities read
    want = Searcher.open(clean_db, tmp_path / "fresh").by_id("img0011", QueryOptions(k=6, method="community"))
    assert _hits(got) == _hits(want)


def test_an_answer_gives_up_clearly_when_every_statement_finds_a_newer_generation(
    clean_db: Database, tmp_path: Path
) -> None:
    _graph(clean_db)
    counted, searcher = _served(clean_db, tmp_path)
    counted.before = lambda name: detect(clean_db) if name == ANSWER else None  # a write before every check
    counted.ran.clear()
    with pytest.raises(NotReadyError, match="changed 4 times while this query was answered"):
        searcher.by_id("img0011", QueryOptions(k=6, method="knn"))
    assert counted.ran.count(ANSWER) == GENERATION_RETRIES + 1 == 4


def test_an_id_ingested_after_the_generation_opened_is_answered_on_the_new_one(
    clean_db: Database, tmp_path: Path
) -> None:
    codes = _graph(clean_db)
    searcher = Searcher.open(clean_db, tmp_path / "served")
    searcher.warm()
    build(clean_db, codes)  # the other 40 images; then their communities
    detect(clean_db)
    got = searcher.by_id("img0150", QueryOptions(k=5, method="knn"))
    assert got.generation == _meta(clean_db).generation and got.hits
