"""The low-rank first pass: its bound holds on every row, every decision equals the float64 reference's
(raw-like codes with a decaying spectrum, whitened codes of rank d', queries whose mass lies outside the
kept directions, duplicates and ties), and each term of the bound is needed: cases built so that the
term is large (or the arithmetic exact whatever the CPU) show a bound without it failing."""

import numpy as np
import pytest

from cxrneo.graph import normalise
from cxrneo.retrieval.cosines import Cosines, RowTerm, exact_dot
from cxrneo.retrieval.lowrank import Basis, LowRankKernel, Terms, family
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.scan import Pass
from cxrneo.whiten import Spectrum

N, WIDTH = 700, 128


def _raw(seed: int = 0, n: int = N) -> np.ndarray:
    """Unit codes around a common mean with a decaying spectrum (as a trained model's are), with exact
    duplicates (ties for every query) and codes one float32 step from another."""
    shape = np.random.default_rng(1)
    mean = shape.standard_normal(WIDTH)
    rotation = np.linalg.qr(shape.standard_normal((WIDTH, WIDTH)))[0]
    rng = np.random.default_rng(seed)
    x = normalise(2.0 * mean + (rng.standard_normal((n, WIDTH)) * np.exp(-np.arange(WIDTH) / 6.0)) @ rotation.T)
    if n > 40:
        x[20:30] = x[10:20]  # exact duplicates
        x[31:36] = x[30]
        x[31:36, 0] = np.nextafter(x[30, 0], np.float32(2))  # one float32 step away
    return x


def _queries(codes: np.ndarray, rows: np.ndarray, seed: int = 5) -> np.ndarray:
    """Unit float32 queries (width x b): archive codes, codes from the same kind, and adversarial ones
    whose mass lies outside the directions `rows` (half outside, and all of it)."""
    rng = np.random.default_rng(seed)
    p = rows.astype(np.float64)
    noise = rng.standard_normal((3, codes.shape[1]))
    outside = noise - (noise @ p.T) @ p
    mixed = normalise(codes[3:4]) + normalise(outside[:1])
    q = np.concatenate([codes[[0, 10, 30]], normalise(_raw(9, 3)), normalise(outside), normalise(mixed)])
    return np.ascontiguousarray(normalise(q).T, dtype=np.float32)


def _whitened(dim: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Codes whitened to rank `dim` in WIDTH coordinates, and the whitening basis (dim x WIDTH)."""
    raw = _raw(2)
    w = Spectrum.of(raw).whitening(dim, 0.1)
    return w.apply(raw), np.ascontiguousarray(w.basis.T)


def _exact(codes: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.stack([exact_dot(codes, np.arange(len(codes)), q[:, j].astype(np.float64))
                     for j in range(q.shape[1])], axis=1)


def _cases() -> list[tuple[str, np.ndarray, LowRankKernel]]:
    raw = _raw()
    principal = Principal.fit(raw, len(raw))
    assert principal is not None
    out = [(f"raw-{k.dim}", raw, k) for k in family(raw, principal.basis(32), [4, 16, 32])]
    white, basis = _whitened()
    out.append(("whitened", white, family(white, basis, [basis.shape[0]])[0]))
    return out


@pytest.mark.parametrize("case", range(4))
def test_the_bound_holds_on_every_row(case: int) -> None:
    name, codes, kernel = _cases()[case]
    q = _queries(codes, kernel.basis.rows)
    p = kernel(q)
    exact = _exact(codes, q)
    rows = np.arange(len(codes))
    for j in range(q.shape[1]):
        assert (np.abs(exact[:, j] - p.approx[:, j]) <= p.bound(j, rows)).all(), (name, j)
    assert p.row is not None and p.scale is not None
    if name == "whitened":  # the codes lie in the kept directions: left-overs are only rounding
        assert p.row.top < 1e-3
        own = kernel(np.ascontiguousarray(codes[:4].T))  # queries of the whitened space itself
        assert own.scale is not None and float(own.scale.max()) < 1e-5 and float(own.base.max()) < 1e-4
    if name == "raw-32":  # adversarial queries: their left-over is most of them, and it shows in the bound
        assert float(p.scale[-2]) > 0.9 > 0.1 > float(p.scale[0])


@pytest.mark.parametrize("case", range(4))
def test_every_decision_equals_the_float64_reference(case: int) -> None:
    name, codes, kernel = _cases()[case]
    q = _queries(codes, kernel.basis.rows)
    p = kernel(q)
    names = lambda i: f"img{i:05d}"  # noqa: E731
    among = np.arange(0, len(codes), 3)
    for j in range(q.shape[1]):
        ref = Cosines.exact_all(codes, q[:, j])
        fast = p.cosines(codes, q[:, j], j)
        for k in (1, 10, 50):
            assert np.array_equal(fast.top(k, names), ref.top(k, names)), (name, j, k)
            assert np.array_equal(fast.top(k, names, np.array([0, 10, 30])), ref.top(k, names, np.array([0, 10, 30])))
            assert np.array_equal(fast.top(k, names, among=among), ref.top(k, names, among=among))
        values = ref.approx
        order = np.sort(values)
        cuts = np.array([order[-1], order[-11], order[-60], np.nextafter(order[-60], 2.0), 0.5, -0.2])
        for t in cuts:
            assert np.array_equal(fast.at_least(float(t)), ref.at_least(float(t))), (name, j, t)
        assert np.array_equal(fast.count_at_least(cuts), ref.count_at_least(cuts))
        sub = among[::2]
        assert np.array_equal(fast.restrict(sub).at_least(float(cuts[2])), ref.restrict(sub).at_least(float(cuts[2])))
        assert np.array_equal(fast.restrict(sub).top(5, names), ref.restrict(sub).top(5, names))


def _coordinates(width: int, dim: int, scale: float = 1.0) -> np.ndarray:
    """`dim` directions along the first coordinates, times `scale` (a power-of-two fraction: exact)."""
    p = np.zeros((dim, width), np.float32)
    p[np.arange(dim), np.arange(dim)] = scale
    return p


def _mutants(kernel: LowRankKernel, codes: np.ndarray, q: np.ndarray) -> dict[str, bool]:
    """Whether some value falls outside the bound, for the bound itself and each mutant of it."""
    approx, t = kernel.terms(q)
    exact = _exact(codes, q)
    err = np.abs(exact - approx)
    rest = kernel.rest.values[:, None] * t.rest[None, :]

    def outside(rest_k: float = 1.0, projected_k: float = 1.0, rounding_k: float = 1.0) -> bool:
        base = Terms(t.rest, projected_k * t.projected, rounding_k * t.rounding).base()
        return bool((err > rest_k * rest + base[None, :]).any())

    return {"bound": outside(), "rest x 0.5": outside(rest_k=0.5), "no rest": outside(rest_k=0.0),
            "projected x 0.5": outside(projected_k=0.5), "no projected": outside(projected_k=0.0),
            "no rounding": outside(rounding_k=0.0)}


def test_the_residual_term_is_needed() -> None:
    """Codes with mass outside 8 kept coordinates, queried with themselves: the error is |x_rest|^2,
    exactly the residual term (its other terms are rounding-sized)."""
    rng = np.random.default_rng(3)
    codes = normalise(rng.standard_normal((50, 32)))
    kernel = family(codes, _coordinates(32, 8), [8])[0]
    found = _mutants(kernel, codes, np.ascontiguousarray(codes[:6].T))
    assert not found["bound"]
    assert found["rest x 0.5"] and found["no rest"]


def test_the_projected_term_is_needed() -> None:
    """Projections y = P x + d stored off by d along the query's own projection, codes and queries in the
    kept directions: the error is d.qp = |P x_rest| |qp|, exactly the projected term."""
    rng = np.random.default_rng(4)
    codes = np.zeros((40, 32), np.float32)
    codes[:, :8] = normalise(rng.standard_normal((40, 8)))
    q = np.ascontiguousarray(codes[:1].T)
    y = codes[:, :8] + np.float32(0.125) * codes[:1, :8]  # d parallel to qp for every row
    kernel = family(codes, _coordinates(32, 8), [8], projections=y)[0]
    found = _mutants(kernel, codes, q)
    assert not found["bound"]
    assert found["projected x 0.5"] and found["no projected"]


def test_directions_that_are_not_orthonormal_are_bounded() -> None:
    """P = 0.75 times 8 coordinates (|P P^T - I| = 0.4375), codes = queries in their span with few-bit
    values (every product exact): x.q - a = 0.4375 x.q, which needs |P x_rest| >= |P P^T - I| |y|."""
    codes = np.zeros((4, 32), np.float32)
    codes[:, :4] = 0.5  # unit, exactly
    codes[1, :4] = [0.5, -0.5, 0.5, -0.5]
    codes[2:, :] = codes[:2, :]
    kernel = family(codes, _coordinates(32, 8, 0.75), [8])[0]
    assert kernel.basis.skew == pytest.approx(0.4375, rel=1e-6)
    found = _mutants(kernel, codes, np.ascontiguousarray(codes[:1].T))
    assert not found["bound"] and found["no projected"]
    naive = LowRankKernel(kernel.basis, kernel.y, kernel.rest, 0.0, 0.75)  # |P x_rest| taken as 0 (orthonormal)
    approx, t = naive.terms(np.ascontiguousarray(codes[:1].T))
    err = np.abs(_exact(codes, np.ascontiguousarray(codes[:1].T)) - approx)
    assert (err > naive.rest.values[:, None] * t.rest + t.base()).any()


def test_the_rounding_term_is_needed() -> None:
    """x = (1, 2^-30) on the directions (1, 0), (0, 1), q = (1, 1): everything is exact but a's float32
    sum, 1 + 2^-30, which rounds to 1 in any IEEE float32 arithmetic, any order, with or without FMA."""
    codes = np.array([[1.0, 2.0**-30]], np.float32)
    kernel = family(codes, np.eye(2, dtype=np.float32), [2])[0]
    found = _mutants(kernel, codes, np.ones((2, 1), np.float32))
    assert not found["bound"] and found["no rounding"]


def test_cuts_use_each_rows_own_term() -> None:
    """A first pass that puts the best row's value far below the others, within that row's own term:
    every decision stays exact, and reading the bound without the per-row term would get each wrong."""
    codes = np.array([[0.9], [0.8], [0.8], [0.5], [0.1]], np.float32)  # against q = (1): exact cosines
    approx = np.array([0.69, 0.8, 0.8, 0.5, 0.1], np.float32)
    row = RowTerm.of(np.array([0.22, 0.0, 0.0, 0.0, 0.0]))
    fast = Cosines(codes, np.ones(1), approx, 1e-6, 0.0, row=row, scale=1.0)
    wrong = Cosines(codes, np.ones(1), approx, 1e-6, 0.0)
    ref = Cosines.exact_all(codes, np.ones(1))
    name = str
    assert fast.top(1, name).tolist() == ref.top(1, name).tolist() == [0] != wrong.top(1, name).tolist()
    assert fast.at_least(0.85).tolist() == ref.at_least(0.85).tolist() == [0] != wrong.at_least(0.85).tolist()
    assert fast.count_at_least(np.array([0.85, 0.8])).tolist() == [1, 3] != wrong.count_at_least(np.array([0.85])).tolist()
    assert fast.restrict(np.array([0, 3])).top(1, name).tolist() == [0]
    assert float(fast.upper(0.69)) >= 0.9  # without rows: the largest term (a wider bound, still a bound)


def test_the_basis_bounds_its_own_skew() -> None:
    rows = np.linalg.qr(np.random.default_rng(7).standard_normal((64, 16)))[0].T
    basis = Basis.of(rows)
    p = basis.rows.astype(np.float64)
    assert np.linalg.norm(p @ p.T - np.eye(16), 2) <= basis.skew < 1e-6
    assert np.linalg.norm(p) <= basis.frobenius
    principal = Principal.fit(_raw(), N)
    assert principal is not None
    b = principal.basis(9)
    assert np.allclose(b.astype(np.float64) @ b.T.astype(np.float64), np.eye(9), atol=1e-6)
    assert principal.left_over(9) < principal.left_over(3) < 1.0
    assert np.array_equal(Pass(np.zeros((3, 1)), np.zeros(1), 0.0).bound(0, np.arange(3)), np.zeros(3))
