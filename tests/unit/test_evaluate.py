"""Evaluation end to end on small synthetic codes: split, graph, communities, scores, report."""

from collections.abc import Sequence

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.archive.synthetic import synthesise
from cxrneo.errors import ConfigError
from cxrneo.evaluation.evaluate import (
    EvalOptions,
    evaluate,
    louvain_in_memory,
    patient_split,
    random_results,
    retriever_searcher,
)
from cxrneo.graph import Edges, normalise, similarity_edges, threshold_for_degree
from cxrneo.records import Hit, ImageRecord

COMBOS = [("Effusion",), ("Nodule",), ("Cardiomegaly", "Edema"), (), ("Infiltration", "Mass"), ("Hernia",)]


def make_codes(n: int = 300, per_patient: int = 2, seed: int = 0) -> Codes:
    rng = np.random.default_rng(seed)
    records = [
        ImageRecord(
            id=f"img{i:04d}", path=f"/nonexistent/img{i:04d}.png",
            labels=COMBOS[int(rng.integers(len(COMBOS)))], patient_id=f"p{i // per_patient}",
            view="PA" if i % 3 else "AP",
        )
        for i in range(n)
    ]
    return synthesise(records, noise=3.0, seed=seed)


def fake_searcher(
    ids: list[str], unit: np.ndarray, edges: Edges, community: np.ndarray, threshold: float, strict: bool
):  # noqa: ANN201 - a Searcher
    """knn = exact cosine; community/hybrid = nearest neighbour's community first, by cosine."""

    def search(q: np.ndarray, k: int, method: str, exclude: frozenset[str]) -> Sequence[Hit]:
        sims = unit @ q
        allowed = np.array([i not in exclude for i in ids])
        order = [int(j) for j in np.argsort(-sims, kind="stable") if allowed[j]]
        if method != "knn":
            home = community[order[0]]
            order = [j for j in order if community[j] == home] + [j for j in order if community[j] != home]
        return [Hit(rank=r + 1, image_id=ids[j], cosine=float(sims[j])) for r, j in enumerate(order[:k])]

    return search


def test_patient_split_has_no_overlap_and_is_seeded() -> None:
    codes = make_codes(per_patient=3)
    db, q = patient_split(codes.images, 40, seed=1)
    patients = lambda rows: {codes.images[i].patient_id for i in rows}  # noqa: E731
    assert len(q) == 40 and not patients(db) & patients(q)
    # queries take whole patients (3 images each) until 40: 14 patients, 2 of the 14th left out;
    # every image of every other patient is in the database
    assert len(patients(q)) == 14
    others = [i for i, im in enumerate(codes.images) if im.patient_id not in patients(q)]
    assert db.tolist() == others and len(db) == 300 - 42
    again_db, again_q = patient_split(codes.images, 40, seed=1)
    assert np.array_equal(db, again_db) and np.array_equal(q, again_q)
    assert not np.array_equal(q, patient_split(codes.images, 40, seed=2)[1])
    small_db, _ = patient_split(codes.images, 40, seed=1, db_size=100)
    assert len(small_db) == 100 and set(small_db.tolist()) <= set(db.tolist())
    with pytest.raises(ConfigError):
        patient_split(codes.images, 1000)


def test_random_results_avoid_own_patient() -> None:
    res = random_results(10, np.array([0, 1]), np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 7, seed=0)
    assert set(res[0, :5].tolist()) == {5, 6, 7, 8, 9} and (res[0, 5:] == -1).all()
    assert (res[1, :5] < 5).all() and len(set(res[1, :5].tolist())) == 5


def test_louvain_in_memory_groups_connected_parts() -> None:
    codes = make_codes(n=6)
    edges = Edges(np.array([0, 1, 3, 4]), np.array([1, 2, 4, 5]), np.ones(4, np.float32))
    c = louvain_in_memory(codes, edges, 0.5)
    assert c[0] == c[1] == c[2] and c[3] == c[4] == c[5] and c[0] != c[3]


@pytest.fixture(scope="module")
def result():  # noqa: ANN201
    opts = EvalOptions(n_queries=60, k=10, k_max=20, mean_degree=8, n_boot=200, seed=0,
                       community_backend="networkx-louvain (test)")
    return evaluate(make_codes(), opts, louvain_in_memory)  # the real cxrneo.retrieval engine


def test_fake_searcher_can_stand_in() -> None:
    calls: dict[str, list[list[str]]] = {"knn": [], "hybrid": []}

    def spy(*args):  # type: ignore[no-untyped-def]  # the fake searcher, recording every answer
        search = fake_searcher(*args)

        def recorded(q: np.ndarray, k: int, method: str, exclude: frozenset[str]) -> Sequence[Hit]:
            assert k == 10
            hits = search(q, k, method, exclude)
            calls[method].append([h.image_id for h in hits])
            return hits

        return recorded

    codes = make_codes()
    opts = EvalOptions(n_queries=30, k=5, k_max=10, mean_degree=8, n_boot=100, methods=["knn", "hybrid"])
    res = evaluate(codes, opts, louvain_in_memory, searcher_factory=spy)
    assert [r.method for r in res.runs] == ["knn", "hybrid", "random"]
    assert res.results[0].comparisons[0].a == "hybrid"
    assert len(calls["knn"]) == len(calls["hybrid"]) == 30  # one answer per query and method
    # the examples show exactly what the stand-in answered for those queries
    q_ids = [codes.images[i].id for i in patient_split(codes.images, 30, opts.seed)[1]]
    assert res.examples
    for ex in res.examples:
        i = q_ids.index(ex.query.id)
        for method in ("knn", "hybrid"):
            assert [r.id for r in ex.results[method]] == calls[method][i][:5]


def test_top_k_is_a_prefix_of_top_k_max() -> None:
    """evaluate asks once for k_max results and scores prefixes: valid only if this holds."""
    codes = make_codes()
    unit = normalise(codes.codes)
    db, q = unit[:250], unit[250:]
    t = threshold_for_degree(db, 8)
    edges = similarity_edges(db, t)
    community = louvain_in_memory(codes.subset(np.arange(250)), edges, t)
    search = retriever_searcher(codes.ids[:250], db, edges, community, t)
    for i in range(0, 50, 5):
        for method in ("community", "hybrid", "knn", "diffusion"):
            short = [h.image_id for h in search(q[i], 10, method, frozenset())]
            assert short == [h.image_id for h in search(q[i], 30, method, frozenset())][:10]


def test_evaluate_end_to_end(result) -> None:  # noqa: ANN001
    assert result.n_queries == 60 and result.n_db == 240  # 30 whole patients of 2 images are queries
    assert result.options.label_sets == ["nih", "nih-u"]
    assert [r.method for r in result.runs] == ["community", "hybrid", "knn", "diffusion", "random"]
    assert result.graph.edges > 0 and result.graph.communities > 1
    assert {(r.label_set, r.form) for r in result.results} == {
        (s, f) for s in ("nih", "nih-u") for f in ("positive", "no-finding")}
    for r in result.results:
        scores = {s.method: s for s in r.methods}
        assert scores["knn"].precision.mean > scores["random"].precision.mean + 0.2
        assert scores["knn"].ndcg.mean > scores["random"].ndcg.mean
        assert len(scores["knn"].precision_curve) == 20
        assert scores["knn"].precision_curve[9] == pytest.approx(scores["knn"].precision.mean)
        for s in r.methods:
            for metric in (s.precision, s.acg, s.acg_plain, s.ndcg):
                assert metric.lo <= metric.mean <= metric.hi
        assert {(c.a, c.b, c.metric) for c in r.comparisons} == {
            (a, "knn", x) for a in ("community", "hybrid", "diffusion") for x in ("precision", "acg", "ndcg")} | {
            (a, "random", "precision") for a in ("community", "hybrid", "knn", "diffusion")}
        vs_random = {c.a: c for c in r.comparisons if c.b == "random"}
        assert vs_random["knn"].diff == pytest.approx(scores["knn"].precision.mean - scores["random"].precision.mean)
        assert vs_random["knn"].lo > 0  # labelled codes beat chance, with the interval above 0
        if r.form == "no-finding":
            assert r.scored == 60 and r.left_out == 0 and r.labels[-1] == "No Finding"
        else:
            assert r.left_out > 0 and r.scored + r.left_out == 60  # Hernia-only and normal queries


def test_examples_hold_top5(result) -> None:  # noqa: ANN001
    assert len(result.examples) == 4
    for ex in result.examples:
        assert ex.query.labels
        assert set(ex.results) == {"community", "hybrid", "knn", "diffusion", "random"}
        assert all(len(hits) == 5 for hits in ex.results.values())


def test_wrong_label_set_is_refused() -> None:
    codes = make_codes(n=40)
    codes = Codes(codes=codes.codes, images=codes.images, label_set="nih-u")
    with pytest.raises(ConfigError):
        evaluate(codes, EvalOptions(label_sets=["nih"], n_queries=5), louvain_in_memory, fake_searcher)


def test_report_is_written_with_plot_and_gallery(result, tmp_path) -> None:  # noqa: ANN001
    from PIL import Image

    from cxrneo.evaluation import report
    from cxrneo.evaluation.evaluate import EvalResult

    query = result.examples[0].query
    Image.new("L", (64, 64), 128).save(tmp_path / "q.png")
    examples = [result.examples[0].model_copy(update={"query": query.model_copy(update={"path": "q.png"})})]
    res = result.model_copy(update={"examples": examples + result.examples[1:]})
    paths = report.write(res, tmp_path / "out", image_root=tmp_path)
    page = paths["html"].read_text()
    assert page.count("<svg") == 4 and "<polyline" in page and "precision@K" in page
    assert "data:image/png;base64," in page  # the query image that exists
    assert 'class="ph"' in page  # placeholders for the ones that do not
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    md = paths["md"].read_text()
    assert "| knn |" in md and "precision@10" in md and "left out" in md
    assert EvalResult.model_validate_json(paths["json"].read_text()) == res


def test_no_abnormal_query_gives_na_not_nan(tmp_path) -> None:  # noqa: ANN001
    from cxrneo.evaluation import report
    from cxrneo.evaluation.evaluate import EvalResult

    records = [ImageRecord(id=f"n{i}", labels=("Hernia",) if i % 2 else (), patient_id=f"p{i}", view="PA")
               for i in range(40)]
    opts = EvalOptions(n_queries=8, k=5, k_max=5, mean_degree=4, n_boot=100, methods=["knn"], n_examples=1)
    res = evaluate(synthesise(records, seed=1), opts, louvain_in_memory)
    positive = next(r for r in res.results if r.label_set == "nih" and r.form == "positive")
    assert positive.scored == 0 and positive.left_out == 8 and positive.methods[0].precision.mean is None
    nofinding = next(r for r in res.results if r.label_set == "nih" and r.form == "no-finding")
    assert nofinding.methods[0].precision.mean == 1.0  # every database image is 'No Finding' too
    assert len(res.examples) == 1 and len(res.examples[0].results["knn"]) == 5
    paths = report.write(res, tmp_path)
    assert "n/a" in paths["md"].read_text()
    assert EvalResult.model_validate_json(paths["json"].read_text()) == res


def test_a_small_archive_caps_the_curves_at_its_size() -> None:
    codes = make_codes(n=24, per_patient=1)
    opts = EvalOptions(n_queries=4, k=10, k_max=50, mean_degree=4, n_boot=100, methods=["knn"], n_examples=0)
    res = evaluate(codes, opts, louvain_in_memory, fake_searcher)
    assert res.n_db == 20
    curve = next(r for r in res.results if r.form == "no-finding").methods[0].precision_curve
    assert len(curve) == 20  # K = 1..20, not 1..50
    with pytest.raises(ConfigError, match="fewer than K"):
        evaluate(codes, EvalOptions(n_queries=4, k=30, k_max=50, n_boot=100), louvain_in_memory, fake_searcher)


def test_evaluate_within_a_filter_answers_only_passing_images() -> None:
    from cxrneo.evaluation.evaluate import RANDOM
    from cxrneo.evaluation.report import to_markdown
    from cxrneo.filters import QueryFilter
    from cxrneo.retrieval import Method

    codes = make_codes(300, seed=3)
    where = QueryFilter(views=["PA"])
    opts = EvalOptions(n_queries=40, k=5, k_max=10, filter=where, n_boot=200, methods=list(Method))
    result = evaluate(codes, opts, lambda c, e, t: louvain_in_memory(c, e, t, 0))
    shown = result.examples
    assert shown and all(r.view == "PA" for ex in shown for hits in ex.results.values() for r in hits)
    assert {m.method for m in result.runs} >= {*(m.value for m in Method), RANDOM}
    assert all(r.short == 0 for r in result.runs)  # always K among the passing images
    assert 'within a filter' in to_markdown(result) and '"views":["PA"]' in to_markdown(result)
    with pytest.raises(ValueError, match="community filter"):
        EvalOptions(filter=QueryFilter(communities=[1]))
