"""Thresholded cosine edges: FAISS against brute force, thresholds from a mean degree, stats."""

import numpy as np
import pytest

from cxrneo.errors import ConfigError, InputError
from cxrneo.graph import (
    Edges,
    degree_stats,
    edges_numpy,
    normalise,
    query_neighbours,
    similarity_edges,
    threshold_for_degree,
)


def _codes(n: int, d: int = 1024, clusters: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 1.2 * rng.standard_normal((n, d))
    return normalise(x)


def _brute(unit: np.ndarray, t: float) -> dict[tuple[int, int], float]:
    sims = unit.astype(np.float64) @ unit.T.astype(np.float64)
    i, j = np.nonzero(np.triu(sims >= t, k=1))
    return {(int(a), int(b)): float(sims[a, b]) for a, b in zip(i, j, strict=True)}


@pytest.mark.parametrize("batch", [64, 1000])
def test_faiss_edges_equal_brute_force(batch: int) -> None:
    unit = _codes(300)
    t = threshold_for_degree(unit, 12)
    edges = similarity_edges(unit, t, batch=batch)
    got = {(int(a), int(b)): float(c) for a, b, c in zip(edges.src, edges.dst, edges.cosine, strict=True)}
    want = _brute(unit, t)
    sims = unit.astype(np.float64) @ unit.T.astype(np.float64)
    borderline = {p for p in set(got) ^ set(want) if abs(sims[p] - t) < 1e-5}
    assert set(got) ^ set(want) == borderline
    assert len(want) > 500
    assert all(abs(got[p] - want[p]) < 1e-5 for p in set(got) & set(want))
    assert (edges.src < edges.dst).all()
    assert edges.src.dtype == np.int64 and edges.cosine.dtype == np.float32


def test_numpy_baseline_matches_faiss() -> None:
    unit = _codes(257)
    t = threshold_for_degree(unit, 8)
    a, b = similarity_edges(unit, t, batch=50), edges_numpy(unit, t, batch=60)
    assert np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
    assert np.allclose(a.cosine, b.cosine, atol=1e-5)


def test_threshold_gives_requested_mean_degree_exactly_when_unsampled() -> None:
    unit = _codes(400)
    t = threshold_for_degree(unit, 20, sample=1000)
    assert degree_stats(400, similarity_edges(unit, t)).mean_degree == pytest.approx(20, abs=0.1)


def test_threshold_from_a_sample_gives_about_the_mean_degree() -> None:
    unit = _codes(2000, d=256)
    t = threshold_for_degree(unit, 30, sample=300, seed=1)
    mean = degree_stats(2000, similarity_edges(unit, t)).mean_degree
    assert 25 < mean < 35


def test_threshold_refuses_impossible_degree() -> None:
    unit = _codes(10, d=16)
    with pytest.raises(ConfigError):
        threshold_for_degree(unit, 9)
    with pytest.raises(ConfigError):
        threshold_for_degree(unit, 0)


def test_degree_stats_of_a_small_graph() -> None:
    e = Edges(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.9, 0.8, 0.7], np.float32))
    s = degree_stats(5, e, 0.7)
    assert (s.nodes, s.edges, s.max_degree, s.isolated, s.threshold) == (5, 3, 2, 2, 0.7)
    assert s.mean_degree == pytest.approx(6 / 5)


def test_no_edges_above_one() -> None:
    unit = _codes(50, d=32)
    edges = similarity_edges(unit, 1.01)
    assert len(edges) == 0 and degree_stats(50, edges).isolated == 50


def test_query_neighbours_sorted_and_complete() -> None:
    unit = _codes(200, d=64)
    q = normalise(np.random.default_rng(3).standard_normal((1, 64)))[0]
    rows, cos = query_neighbours(unit, q, 0.1)
    sims = unit @ q
    assert set(rows.tolist()) == set(np.flatnonzero(sims >= 0.1).tolist())
    assert (np.diff(cos) <= 0).all()


def test_normalise_refuses_zero_rows() -> None:
    with pytest.raises(InputError):
        normalise(np.zeros((2, 4)))
    assert np.allclose(np.linalg.norm(normalise(np.ones((3, 4))), axis=1), 1)
