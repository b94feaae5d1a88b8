"""Thresholded cosine edges: FAISS against brute force, thresholds from a mean degree, stats."""

import numpy as np
import pytest

from cxrneo.errors import ConfigError, InputError
from cxrneo.graph import (
    Edges,
    degree_stats,
    edges_numpy,
    normalise,
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


def test_normalise_refuses_zero_rows() -> None:
    with pytest.raises(InputError):
        normalise(np.zeros((2, 4)))
    assert np.allclose(np.linalg.norm(normalise(np.ones((3, 4))), axis=1), 1)


def _pairs(e: Edges) -> list[tuple[int, int]]:
    return list(zip(e.src.tolist(), e.dst.tolist(), strict=True))


def test_settle_decides_pairs_at_the_threshold_in_float64() -> None:
    """T exactly at a pair's exact cosine keeps it; the next double above drops it: in every backend."""
    import math

    from cxrneo.embed.edges import device_edges

    unit = _codes(200, d=128, seed=4)
    wide = unit.astype(np.float64)
    exact = {(a, b): math.fsum(wide[a] * wide[b]) for a in range(200) for b in range(a + 1, 200)}
    i, j = 3, 17
    at = exact[i, j]
    above = float(np.nextafter(at, 2.0))
    for build in (similarity_edges, edges_numpy, lambda u, t: device_edges(u, t, device="cpu")):
        keep, drop = build(unit, at), build(unit, above)
        assert (i, j) in _pairs(keep) and (i, j) not in _pairs(drop)
        # kept: exactly the pairs whose exact cosine is >= T
        assert set(_pairs(keep)) == {p for p, c in exact.items() if c >= at}
        assert set(_pairs(drop)) == {p for p, c in exact.items() if c >= above}


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_device_edges_equal_faiss_edges(dtype_name: str) -> None:
    """The GPU code path (here on the CPU): half-precision candidates, fp32 recheck, the same edge set."""
    import torch

    from cxrneo.embed.edges import device_edges

    unit = _codes(1500, seed=2)
    t = threshold_for_degree(unit, 25)
    want = similarity_edges(unit, t)
    got = device_edges(unit, t, device="cpu", block=256, dtype=getattr(torch, dtype_name))
    assert len(want) > 10_000
    assert np.array_equal(got.src, want.src) and np.array_equal(got.dst, want.dst)
    assert np.array_equal(got.cosine, want.cosine)  # recomputed pair by pair: the same bits
    assert got.src.dtype == np.int64 and got.cosine.dtype == np.float32


@pytest.mark.parametrize("rows", [(0, 1), (100, 700), (1499, 1500), (700, 700)])
def test_edges_of_a_row_range_are_the_whole_graphs_edges_from_those_rows(rows: tuple[int, int]) -> None:
    from cxrneo.embed.edges import device_edges

    unit = _codes(1500, d=256, seed=5)
    t = threshold_for_degree(unit, 30)
    whole = similarity_edges(unit, t)
    inside = (whole.src >= rows[0]) & (whole.src < rows[1])
    for part in (similarity_edges(unit, t, batch=128, rows=rows), device_edges(unit, t, rows=rows, device="cpu")):
        assert np.array_equal(part.src, whole.src[inside]) and np.array_equal(part.dst, whole.dst[inside])
        assert np.array_equal(part.cosine, whole.cosine[inside])


def test_bad_row_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a range"):
        similarity_edges(_codes(10, d=8), 0.5, rows=(5, 11))


def test_approximate_edges_are_exact_edges_and_find_them_all_when_every_cell_is_probed() -> None:
    from cxrneo.graph import approximate_edges

    unit = _codes(2000, d=64, seed=6)
    t = threshold_for_degree(unit, 20)
    exact = set(_pairs(similarity_edges(unit, t)))
    few = approximate_edges(unit, t, nlist=32, nprobe=2, train_rows=2000)
    every = approximate_edges(unit, t, nlist=32, nprobe=32, train_rows=2000)
    assert set(_pairs(every)) == exact  # all cells visited: nothing missed
    assert set(_pairs(few)) <= exact and 0.3 < len(_pairs(few)) / len(exact) < 1.0  # misses, never extras
    assert (few.src < few.dst).all() and (np.diff(few.src * 2000 + few.dst) > 0).all()


def test_half_precision_edges_accumulate_in_fp32_as_the_margin_assumes() -> None:
    """`margin` bounds the error of half-precision cosines with fp32 accumulation: the edge search
    switches cuBLAS's reduced-precision reductions off for its products and restores them after;
    and on this machine's fp16 products the bound holds."""
    import numpy as np
    import torch

    from cxrneo.embed.edges import fp32_accumulation, margin

    m = torch.backends.cuda.matmul
    m.allow_fp16_reduced_precision_reduction = m.allow_bf16_reduced_precision_reduction = True
    with fp32_accumulation():
        assert not m.allow_fp16_reduced_precision_reduction and not m.allow_bf16_reduced_precision_reduction
    assert m.allow_fp16_reduced_precision_reduction and m.allow_bf16_reduced_precision_reduction
    rng = np.random.default_rng(3)
    x = rng.standard_normal((256, 1024))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = x @ x.T
    for dtype in (torch.float16, torch.bfloat16):
        with fp32_accumulation():
            h = torch.from_numpy(x).to(dtype)
            approx = (h @ h.T).double().numpy()
        assert np.abs(approx - exact).max() <= margin(dtype)


def test_the_fp32_band_covers_the_rounding_of_any_code_width() -> None:
    """`band(d)` keeps every pair above T for every width: the measured fp32 error of unit codes stays
    within `dot_error_bound(d)`, and the band covers that bound with room, also beyond 1024 wide
    (where a fixed 1e-4 would not)."""
    import numpy as np

    from cxrneo.graph import BAND, band, dot_error_bound

    rng = np.random.default_rng(7)
    for width in (64, 1024, 4096):
        x = rng.standard_normal((64, width)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        exact = x.astype(np.float64) @ x.T.astype(np.float64)
        assert np.abs((x @ x.T).astype(np.float64) - exact).max() <= dot_error_bound(width)
    for width in (1, 512, 1024, 1118, 1119, 2048, 100_000):
        assert band(width) >= 1.5 * dot_error_bound(width)
    assert band(1024) == BAND and band(2048) > BAND
    with pytest.raises(ConfigError, match="no rounding bound"):
        dot_error_bound(1 << 24)  # d u >= 1: no bound at all


def test_half_precision_edges_refuse_reduced_precision_reductions() -> None:
    """`margin` holds only with fp32 accumulation: with reduced-precision reductions allowed the
    precondition check raises, inside `fp32_accumulation` it passes."""
    pytest.importorskip("torch")
    import torch

    from cxrneo.embed.edges import fp32_accumulation, margin, require_fp32_accumulation

    m = torch.backends.cuda.matmul
    saved = (m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction)
    try:
        m.allow_fp16_reduced_precision_reduction = True
        with pytest.raises(ConfigError, match="fp32 accumulation"):
            require_fp32_accumulation()
        with fp32_accumulation():
            require_fp32_accumulation()
    finally:
        m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction = saved
    assert margin(torch.float16, 4096) > margin(torch.float16, 1024) > 0  # wider codes, wider margin
