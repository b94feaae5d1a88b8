"""Filters against the real Neo4j: the service's filtered kNN equals cypher/filtered_knn.cypher run by
Neo4j alone, and `cxrneo query --finding ... --sex ...` returns exactly K passing hits for every method."""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.archive.codes import Codes
from cxrneo.archive.synthetic import synthesise
from cxrneo.cli.main import app
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.filters import QueryFilter, conditions
from cxrneo.records import ImageRecord
from cxrneo.retrieval import Method
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
FINDINGS = [("Effusion",), ("Mass",), (), ("Effusion", "Nodule"), ("Atelectasis",), ("Effusion", "Mass")]


def _codes(n: int = 360) -> Codes:
    recs = [ImageRecord(id=f"f{i:04d}", labels=FINDINGS[i % 6], patient_id=f"p{i // 3}",
                        view="PA" if i % 4 else "AP", sex="F" if i % 5 < 3 else "M",
                        age=None if i % 17 == 0 else 20 + (i * 7) % 70, split="test" if i % 10 == 0 else "train")
            for i in range(n)]
    return synthesise(recs, noise=3.0, seed=11)


@pytest.fixture()
def filtered_graph(clean_db: Database, neo4j_settings: Settings, tmp_path: Path) -> Iterator[tuple[Searcher, Codes]]:
    codes = _codes()
    build(clean_db, codes, mean_degree=10)
    detect(clean_db)
    searcher = Searcher.connect(neo4j_settings.model_copy(update={"data_dir": tmp_path}))
    yield searcher, codes
    searcher.close()


FILTERS = [
    QueryFilter(findings=["Effusion"]),
    QueryFilter(findings=["Effusion"], sex="F"),
    QueryFilter(any_findings=["Mass", "Nodule"], views=["AP"]),
    QueryFilter(without=["Effusion"], age_min=40, age_max=70),
    QueryFilter(findings=["No Finding"], splits=["train"], not_patients=["p3", "p4"]),
    QueryFilter(patients=["p1", "p2", "p10", "p50"]),
    QueryFilter(age_max=30, sex="M"),
]


@pytest.mark.parametrize("where", FILTERS)
def test_the_service_and_neo4j_alone_give_the_same_filtered_knn(
    filtered_graph: tuple[Searcher, Codes], where: QueryFilter
) -> None:
    searcher, codes = filtered_graph
    for qid in codes.ids[5:300:59]:
        answer = searcher.by_id(qid, QueryOptions(k=10, method=Method.KNN, filter=where))
        retriever = searcher.graph.current().retriever
        rows = searcher.graph.db.read("filtered_knn", code=retriever.code_of(qid).tolist(), k=10, exclude=[qid],
                                conditions=conditions(where))
        assert [h.image_id for h in answer.hits] == [r["id"] for r in rows]
        assert np.allclose([h.cosine for h in answer.hits], [r["cosine"] for r in rows], atol=1e-5)
        assert answer.passing is not None and min(10, answer.passing - 1) <= len(answer.hits) <= min(10, answer.passing)


def test_the_cli_returns_k_passing_hits_for_every_method(
    filtered_graph: tuple[Searcher, Codes], neo4j_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, codes = filtered_graph
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    records = {r.id: r for r in codes.images}
    for method in Method:
        out = CliRunner().invoke(app, ["query", codes.ids[8], "--finding", "Effusion", "--sex", "F", "-k", "10",
                                       "--method", method.value, "--json"])
        assert out.exit_code == 0, out.output
        hits = json.loads(out.output)["hits"]
        assert len(hits) == 10 and codes.ids[8] not in {h["image_id"] for h in hits}
        assert all("Effusion" in records[h["image_id"]].labels and records[h["image_id"]].sex == "F" for h in hits)
    bad = CliRunner().invoke(app, ["query", codes.ids[8], "--finding", "Efusion"])
    assert bad.exit_code == 1 and "unknown finding 'Efusion'" in bad.output
    bad = CliRunner().invoke(app, ["query", codes.ids[8], "--age", "sixty"])
    assert bad.exit_code == 1 and "--age takes a range" in bad.output


def test_more_like_these_is_the_rocchio_query_and_leaves_the_examples_out(
    filtered_graph: tuple[Searcher, Codes], neo4j_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from cxrneo.service.request import NEGATIVE_WEIGHT, QueryRequest

    searcher, codes = filtered_graph
    pos, neg = [codes.ids[0], codes.ids[6], codes.ids[12]], [codes.ids[1]]
    answer = searcher.search(QueryRequest(ids=pos, not_ids=neg, k=10, method=Method.KNN))
    r = searcher.graph.current().retriever
    q = np.mean([r.code_of(i) for i in pos], axis=0)
    q = q / np.linalg.norm(q) - NEGATIVE_WEIGHT * r.code_of(neg[0])
    sims = r.codes @ (q / np.linalg.norm(q))
    order = [r.ids[i] for i in np.argsort(-sims, kind="stable") if r.ids[i] not in pos + neg][:10]
    assert [h.image_id for h in answer.hits] == order and answer.query == "3 examples, 1 unlike"
    for method in Method:
        got = searcher.search(QueryRequest(ids=pos, not_ids=neg, k=10, method=method,
                                           filter=QueryFilter(findings=["Effusion"])))
        assert len(got.hits) == 10 and not {h.image_id for h in got.hits} & set(pos + neg)
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["query", *pos, "--not", neg[0], "--method", "knn", "-k", "10", "--json"])
    assert out.exit_code == 0, out.output
    assert [h["image_id"] for h in json.loads(out.output)["hits"]] == order
