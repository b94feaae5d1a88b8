"""Filtered retrieval against brute-force oracles on random graphs and filters (Hypothesis), and
the filter columns' rules."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrneo.errors import InputError
from cxrneo.filters import Facets, QueryFilter, describe, passing
from cxrneo.graph import normalise, similarity_edges
from cxrneo.labels import NO_FINDING
from cxrneo.retrieval import MemoryGraph, Method, Retriever
from cxrneo.retrieval.question import Question

T = 0.55


def _world(seed: int, n: int) -> tuple[Retriever, np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, 12))
    which = rng.integers(0, 5, n)
    codes = normalise(centres[which] + 0.7 * rng.standard_normal((n, 12)))
    ids = [f"i{j:03d}" for j in range(n)]
    view = MemoryGraph.build(ids, similarity_edges(codes, T), which)
    return Retriever(view, codes, ids, T), codes, ids, which


def _oracle(codes: np.ndarray, ids: list[str], which: np.ndarray, keep: np.ndarray) -> Retriever:
    """The method's own input, built from scratch: the graph of the passing images only."""
    rows = np.flatnonzero(keep)
    sub = codes[rows]
    return Retriever(MemoryGraph.build([ids[r] for r in rows], similarity_edges(sub, T), which[rows]),
                     sub, [ids[r] for r in rows], T)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 1.0), k=st.integers(1, 40),
       method=st.sampled_from(list(Method)), exclude_query=st.booleans())
def test_a_filtered_query_is_the_method_on_the_passing_images(
    seed: int, share: float, k: int, method: Method, exclude_query: bool
) -> None:
    r, codes, ids, which = _world(seed % 7, 120)
    rng = np.random.default_rng(seed)
    keep = rng.random(len(ids)) < share
    q = int(rng.integers(len(ids)))
    exclude = frozenset({ids[q]}) if exclude_query else frozenset()
    got = [h.image_id for h in r.query(codes[q], Question(k, method=method, exclude=exclude, allowed=keep))]
    may = keep.copy()
    if exclude_query:
        may[q] = False
    assert len(got) == min(k, int(may.sum()))  # exactly min(K, passing)
    assert all(keep[ids.index(i)] for i in got) and not set(got) & exclude
    if not may.any():
        return
    want = [h.image_id for h in _oracle(codes, ids, which, keep).query(
        codes[q], Question(min(k, int(may.sum())), method=method, exclude=exclude))]
    assert got == want


def test_knn_filtered_is_exact_over_the_passing_images() -> None:
    r, codes, ids, _ = _world(1, 200)
    keep = np.arange(200) % 3 == 0
    sims = codes @ codes[4]
    order = [i for i in np.argsort(-sims, kind="stable") if keep[i]][:10]
    assert [h.image_id for h in r.query(codes[4], Question(10, method="knn", allowed=keep))] == [ids[i] for i in order]


def _facets() -> Facets:
    return Facets.from_columns({
        "labels": ["Effusion|Mass", "", "Effusion", "Nodule", "Mass"],
        "view": ["PA", "ap", "PA", "AP", "PA"], "sex": ["F", "M", "F", "M", ""], "age": [70, 45, 61, -1, 30],
        "split": ["train", "train", "test", "val", "train"], "patientId": ["p1", "p2", "p1", "p3", "p4"]})


@pytest.mark.parametrize(("f", "rows"), [
    (QueryFilter(), [0, 1, 2, 3, 4]),
    (QueryFilter(findings=["Effusion"]), [0, 2]),
    (QueryFilter(findings=["Effusion", "Mass"]), [0]),
    (QueryFilter(any_findings=["Nodule", "Mass"]), [0, 3, 4]),
    (QueryFilter(without=["Effusion"]), [1, 3, 4]),
    (QueryFilter(findings=[NO_FINDING]), [1]),
    (QueryFilter(sex="F", age_min=60), [0, 2]),
    (QueryFilter(age_max=50), [1, 4]),  # unknown ages never pass an age bound
    (QueryFilter(views=["ap"]), [1, 3]),
    (QueryFilter(splits=["train"], not_patients=["p1"]), [1, 4]),
    (QueryFilter(patients=["p1", "p3"]), [0, 2, 3]),
    (QueryFilter(communities=[7]), [2, 3]),
])
def test_each_condition(f: QueryFilter, rows: list[int]) -> None:
    assert np.flatnonzero(passing(_facets(), f, np.array([1, 1, 7, 7, 2]))).tolist() == rows


def test_an_unknown_finding_is_one_line_naming_the_label_set() -> None:
    with pytest.raises(InputError, match="unknown finding 'Efusion': this graph's findings are No Finding, Effusion"):
        passing(_facets(), QueryFilter(findings=["Efusion"]), np.zeros(5, int))


def test_the_viewers_filter_fields_are_the_query_filters_fields() -> None:
    """GET /config's "filters": one description per QueryFilter field, each kind one the page renders."""

    fields = describe()
    assert [f["name"] for f in fields] == list(QueryFilter.model_fields)
    assert {f["kind"] for f in fields} <= {"findings", "choice", "integer", "strings", "integers"}
    assert all(f["label"] and f["help"] for f in fields)


def test_a_field_of_the_table_flows_from_the_label_table_to_every_consumer(tmp_path: Path) -> None:
    """The follow-up number (one Column and two Fields in cxrneo.filters): read from the NIH table, a
    request field, a facet, a snapshot column, a Cypher condition, a CLI flag and a page control."""
    from typer.testing import CliRunner

    from cxrneo.cli import app
    from cxrneo.db import snapshot
    from cxrneo.filters import conditions, stored_properties
    from cxrneo.graph import Edges
    from cxrneo.tables import nih

    table = Path(__file__).resolve().parents[1] / "data" / "nih_v2020_first3000.csv.gz"
    records = [row.record for row in nih.read(table, tmp_path, max_rows=400)]
    visits = np.array([r.follow_up for r in records])
    assert (visits >= 0).all() and visits.max() > 3
    f = QueryFilter(follow_up_min=2, follow_up_max=5)
    mask = passing(Facets.from_records(records), f, np.zeros(len(records), int))
    assert mask.tolist() == ((visits >= 2) & (visits <= 5)).tolist() and 0 < mask.sum() < len(records)
    snap = snapshot.from_arrays(records, np.eye(len(records), 8, dtype=np.float32) + 1, Edges.empty())
    by_id = dict(zip(snap.ids, snap.columns["followUp"], strict=True))
    assert all(by_id[r.id] == r.follow_up for r in records)
    assert stored_properties(records[0])["followUp"] == records[0].follow_up
    assert {"property": "followUp", "op": "min", "normal": "", "values": [2]} in conditions(f)
    assert {d["name"] for d in describe()} >= {"follow_up_min", "follow_up_max"}
    assert "--follow-up" in CliRunner().invoke(app, ["query", "--help"], env={"COLUMNS": "200"}).output
    with pytest.raises(InputError, match="follow_up_min 5 is above follow_up_max 2"):
        from cxrneo.service.request import parse

        parse(QueryFilter, {"follow_up_min": 5, "follow_up_max": 2})
