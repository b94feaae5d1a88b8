"""Retrieval metrics: hand-checked cases, sklearn cross-check, bootstrap determinism."""

import doctest

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from cxrneo.evaluation import metrics as m


def test_doctests() -> None:
    result = doctest.testmod(m)
    assert result.attempted > 10 and result.failed == 0


def test_hand_checked_example() -> None:
    # query positives {A, B}; results: {A,B}, {C}, {B}, missing
    q = np.array([[1, 1, 0]], bool)
    db = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 0]], bool)
    rel = m.relevance(q, db, np.array([[0, 1, 2, -1]]))
    assert rel.tolist() == [[2, 0, 1, 0]]
    assert m.precision_at_k(rel, 4)[0] == pytest.approx(0.5)
    assert m.acg_at_k(rel, np.array([2]), 4)[0] == pytest.approx(3 / 4 / 2)
    assert m.acg_at_k(rel, None, 4)[0] == pytest.approx(3 / 4)
    assert m.dcg_at_k(rel, 4)[0] == pytest.approx(3 + 0 + 1 / 2)
    ideal = m.ideal_relevance(q, db, 4)
    assert ideal.tolist() == [[2, 1, 0, 0]]
    assert m.ndcg_at_k(rel, ideal, 4)[0] == pytest.approx(3.5 / (3 + 1 / np.log2(3)))


def test_missing_results_score_zero() -> None:
    rel = np.array([[1, 1]])
    assert m.precision_at_k(rel, 10)[0] == pytest.approx(0.2)
    assert m.precision_curve(rel, 4).tolist() == [[1.0, 1.0, 2 / 3, 0.5]]


def test_ideal_excludes_own_patient() -> None:
    q = np.array([[1, 0]], bool)
    db = np.array([[1, 0], [1, 0], [0, 1]], bool)
    assert m.ideal_relevance(q, db, 3, np.array([5]), np.array([5, 6, 6])).tolist() == [[1, 0, 0]]
    assert m.ideal_relevance(q, db, 3, np.array([-1]), np.array([-1, -1, -1])).tolist() == [[1, 1, 0]]


def test_curves_end_at_the_point_metrics() -> None:
    rng = np.random.default_rng(3)
    rel = rng.integers(0, 3, size=(20, 12))
    ideal = -np.sort(-rng.integers(2, 4, size=(20, 12)), axis=1)
    n_pos = rng.integers(1, 4, size=20)
    for k in (1, 5, 12):
        assert np.allclose(m.precision_curve(rel)[:, k - 1], m.precision_at_k(rel, k))
        assert np.allclose(m.acg_curve(rel, n_pos)[:, k - 1], m.acg_at_k(rel, n_pos, k))
        assert np.allclose(m.ndcg_curve(rel, ideal)[:, k - 1], m.ndcg_at_k(rel, ideal, k))


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_db, n_labels, k = 40, 5, 10
    q = rng.random((8, n_labels)) < 0.4
    q[:, 0] = True  # every query has a positive label
    db = rng.random((n_db, n_labels)) < 0.3
    scores = rng.random((8, n_db))  # a retrieval system's scores
    results = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rel = m.relevance(q, db, results)
    ours = m.ndcg_at_k(rel, m.ideal_relevance(q, db, k), k)
    gains = (q.astype(int) @ db.T.astype(int)).astype(float)  # graded r per candidate
    theirs = [ndcg_score([2.0 ** gains[i] - 1.0], [scores[i]], k=k) for i in range(8)]
    assert np.allclose(ours, theirs)


def test_ideal_relevance_in_chunks_matches_brute_force() -> None:
    """Several chunks (the last one partial), shared and absent (-1) groups, k above and below N."""
    rng = np.random.default_rng(0)
    q = rng.random((150, 13)) < 0.3
    db = rng.random((700, 13)) < 0.3
    qg = rng.integers(-1, 40, 150)
    dg = rng.integers(-1, 40, 700)
    for k, n_db in ((50, 700), (30, 20)):
        ideal = m.ideal_relevance(q, db[:n_db], k, qg, dg[:n_db], chunk=64)
        for i in range(150):
            r = (q[i].astype(int) @ db[:n_db].T.astype(int)).copy()
            if qg[i] >= 0:
                r[dg[:n_db] == qg[i]] = 0
            want = np.zeros(k, np.int64)
            best = np.sort(r)[::-1][:k]
            want[: best.size] = best
            assert ideal[i].tolist() == want.tolist()
    ideal = m.ideal_relevance(q, db, 50, qg, dg, chunk=64)
    curve = m.ndcg_curve(ideal, ideal)
    has = ideal[:, 0] > 0
    assert has.sum() > 100 and np.allclose(curve[has], 1.0) and (curve[~has] == 0).all()
    rel = m.relevance(q, db, rng.integers(0, 700, size=(150, 50)))
    assert np.allclose(m.ndcg_curve(rel, ideal)[:, -1], m.ndcg_at_k(rel, ideal, 50))


def test_bootstrap_contains_mean_and_is_seeded() -> None:
    v = np.random.default_rng(1).random(300)
    a = m.bootstrap_ci(v, 1000, seed=7)
    assert a.lo <= a.mean <= a.hi and a.mean == pytest.approx(v.mean())
    assert a == m.bootstrap_ci(v, 1000, seed=7)
    assert a != m.bootstrap_ci(v, 1000, seed=8)
    assert np.isnan(m.bootstrap_ci(np.array([]), 100).mean)


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(2)
    b = rng.random(200)
    better = m.paired_bootstrap(b + 0.1, b, 1000, seed=0)
    assert better.diff == pytest.approx(0.1) and better.frac_a_better == 1.0
    assert better.lo <= better.diff <= better.hi
    same = m.paired_bootstrap(b, b, 1000, seed=0)
    assert same.diff == 0.0 and same.frac_a_better == 0.0
    with pytest.raises(ValueError):
        m.paired_bootstrap(b, b[:10])


def test_bootstrap_interval_has_the_asked_level() -> None:
    """For a mean of 2000 values the 95 % percentile interval is close to mean ± 1.96 standard errors
    (a 90 % interval would be ± 1.645, 16 % narrower); the paired one likewise for the differences."""
    rng = np.random.default_rng(3)
    v = rng.random(2000)
    se = v.std() / np.sqrt(v.size)
    a = m.bootstrap_ci(v, 4000, seed=0)
    assert 0.93 < (a.hi - a.lo) / (2 * 1.96 * se) < 1.07
    b = v + rng.normal(0.05, 0.2, v.size)
    p = m.paired_bootstrap(b, v, 4000, seed=0)
    se_d = (b - v).std() / np.sqrt(v.size)
    assert 0.93 < (p.hi - p.lo) / (2 * 1.96 * se_d) < 1.07
    narrow = m.bootstrap_ci(v, 4000, level=0.9, seed=0)
    assert 0.93 < (narrow.hi - narrow.lo) / (2 * 1.645 * se) < 1.07
