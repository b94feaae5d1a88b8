"""A first pass in the codes' own rank (a `scan.Kernel`): the codes projected on D directions; pure numpy.

The stored codes x (float32) and D directions P (D x width, float32, near-orthonormal rows): kept are
y = P x rounded to float32 (n x D) and, per code, the norm of its exact left-over x_rest = x - P^T y,
rounded up. A query q gives qp = P q rounded to float32 and q_rest = q - P^T qp, and the pass is
a = y . qp in float32: D multiplications per code instead of width. Exactly, for any P and y,

    x.q = y.(P q) + x_rest.q = y.(P q) + (P x_rest).qp + x_rest.q_rest, so
    |x.q - a| <= |x_rest| |q_rest|                    (the per-row term: row |x_rest|, scale |q_rest|)
               + max|P x_rest| |qp|                   ("projected")
               + max|y| (gamma_{D+1} |qp| + e_q)       ("rounding": a's float32 sum, any order, and qp's
                                                        rounding |P q - qp| <= u |P q| + e_q)

(docs/method.md, "Exact answers from a reduced-precision pass"). Fitted directions only make the terms
small. Every float64 quantity is rounded up by its evaluation error. A whitened graph's codes lie in the
span of its whitening basis: projected on it, x_rest is only the float32 rounding of the stored codes.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.graph import FP32_UNIT
from cxrneo.retrieval.cosines import RowTerm
from cxrneo.retrieval.scan import Pass

U64 = 2.0**-53  # unit roundoff of float64
GROW = 1 + 1e-9  # a float64 norm or product rounded up (its relative error is below 1e-12 here)
CHUNK = 4096  # rows projected at a time


def gamma(m: int, u: float) -> float:
    """gamma_m = m u / (1 - m u): a sum of m products in any order is within gamma_m sum |products|."""
    return m * u / (1 - m * u)


@dataclass(frozen=True)
class Terms:
    """The bound's terms for a block of b queries, each (b,): row i of query j is within
    rest[j] * row_term[i] + projected[j] + rounding[j] (see the module docstring)."""

    rest: np.ndarray
    projected: np.ndarray
    rounding: np.ndarray

    def base(self) -> np.ndarray:
        out: np.ndarray = (self.projected + self.rounding) * GROW
        return out


@dataclass(frozen=True)
class Basis:
    """D directions (float32 rows) and what the bound needs of them: skew >= |P P^T - I| (2-norm) and
    frobenius >= |P|_F."""

    rows: np.ndarray
    skew: float
    frobenius: float

    @classmethod
    def of(cls, rows: np.ndarray) -> "Basis":
        p32 = np.ascontiguousarray(rows, dtype=np.float32)
        p = p32.astype(np.float64)
        dim, width = p.shape
        fro = float(np.sqrt((p * p).sum())) * GROW
        # G - I in float64: every product exact, each entry within gamma_width |P_i||P_j| (Frobenius <= that
        # times |P|_F^2); its eigenvalues (backward stable) within 8 D u |G - I|_F of the exact ones
        off = p @ p.T - np.eye(dim)
        spectral = float(np.abs(np.linalg.eigvalsh(off)).max(initial=0.0))
        skew = spectral + 8 * dim * U64 * float(np.linalg.norm(off)) + gamma(width, U64) * fro * fro
        return cls(p32, skew * GROW, fro)


class LowRankKernel:
    """The codes' projections y (n x D float32) and left-over norms; `name` is lowrank-D."""

    def __init__(self, basis: Basis, y: np.ndarray, rest: RowTerm, projected: float, ymax: float) -> None:
        """What `family` measures (tests may give any y: the bound holds for any, see the module docstring)."""
        self.basis, self.y, self.rest = basis, y, rest
        self._projected, self._ymax = projected, ymax
        self._p64 = basis.rows.astype(np.float64)
        self.dim = int(basis.rows.shape[0])
        self.name = f"lowrank-{self.dim}"

    def compact(self) -> "LowRankKernel":
        """The same kernel with its projections in their own contiguous array (a slice of a wider
        kernel's would be copied by every pass)."""
        y = np.ascontiguousarray(self.y)
        return self if y is self.y else LowRankKernel(self.basis, y, self.rest, self._projected, self._ymax)

    def terms(self, queries: np.ndarray) -> tuple[np.ndarray, Terms]:
        """The first pass (n x b float32) and its bound's terms."""
        q32 = np.ascontiguousarray(queries, dtype=np.float32)
        q = q32.astype(np.float64)
        p, fro, width = self._p64, self.basis.frobenius, q.shape[0]
        qp32 = (p @ q).astype(np.float32)  # P q in float64 (within gamma_width |P|_F |q|), then rounded
        qp = qp32.astype(np.float64)
        rest_q = q - p.T @ qp  # within gamma_{D+1} (|q| + |P|_F |qp|)
        qn = np.linalg.norm(q, axis=0) * GROW
        qpn = np.linalg.norm(qp, axis=0) * GROW
        rest = (np.linalg.norm(rest_q, axis=0) * GROW + gamma(self.dim + 1, U64) * (qn + fro * qpn)) * GROW
        approx = self.y @ qp32
        ymax = self._ymax
        rounding = ymax * (gamma(self.dim + 1, FP32_UNIT) * qpn + gamma(width, U64) * fro * qn)
        return approx, Terms(rest, self._projected * qpn, rounding)

    def __call__(self, queries: np.ndarray) -> Pass:
        approx, t = self.terms(queries)
        return Pass(approx, t.base(), 0.0, self.rest, t.rest)


def family(
    codes: np.ndarray, rows: np.ndarray, dims: Sequence[int], projections: np.ndarray | None = None,
) -> list[LowRankKernel]:
    """Low-rank kernels on the first D of the directions `rows` for each D of `dims`, sharing one
    projection of the codes (read once, CHUNK rows at a time, in float64). `projections`: the y to keep
    (n x max D float32; default P x rounded; the bound holds for any).

    Each code's |x_rest| comes without forming x_rest: |x - P^T y|^2 = |x|^2 - 2 y.(P x) + y^T G y, with
    y^T G y <= (1 + |G - I|) |y|^2, every sum a prefix sum over the directions (so every D at once) and
    every float64 evaluation error added (`_rest`)."""
    dims = sorted({int(d) for d in dims if 1 <= d <= rows.shape[0]})
    if not dims:
        return []
    bases = [Basis.of(rows[:d]) for d in dims]
    p = bases[-1].rows.astype(np.float64)
    n, width = codes.shape
    starts = np.array([0, *dims[:-1]])  # the directions added by each D
    y = np.empty((n, dims[-1]), np.float32)
    rest = np.empty((len(dims), n), np.float64)
    gap, ymax = np.zeros(len(dims)), np.zeros(len(dims))  # max |P x - y|, max |y| per D
    xmax = 0.0
    for s in range(0, n, CHUNK):
        x = np.asarray(codes[s : s + CHUNK], np.float64)
        z = x @ p.T  # P x: each within gamma_width |P_j| |x|
        y[s : s + x.shape[0]] = z if projections is None else projections[s : s + x.shape[0], : dims[-1]]
        yc = y[s : s + x.shape[0]].astype(np.float64)
        xx = np.einsum("ij,ij->i", x, x)
        yz, yy, zz, dd = (np.cumsum(np.add.reduceat(v, starts, axis=1), axis=1)  # sums up to each D
                          for v in (yc * z, yc * yc, z * z, (z - yc) ** 2))
        for i, (d, basis) in enumerate(zip(dims, bases, strict=True)):
            rest[i, s : s + x.shape[0]] = _rest(xx, yz[:, i], yy[:, i], zz[:, i], basis, width + d)
        xmax = max(xmax, float(np.sqrt(xx.max(initial=0.0))))
        gap = np.maximum(gap, np.sqrt(dd.max(axis=0, initial=0.0)))
        ymax = np.maximum(ymax, np.sqrt(yy.max(axis=0, initial=0.0)))
    out = []
    xmax *= GROW
    for i, (d, basis) in enumerate(zip(dims, bases, strict=True)):
        ym = float(ymax[i]) * GROW
        # P x_rest = (P x - y) - (G - I) y, and |P x - z| <= gamma_width |P|_F |x|
        projected = float(gap[i]) * GROW + gamma(width, U64) * basis.frobenius * xmax + basis.skew * ym
        out.append(LowRankKernel(basis, y[:, :d], RowTerm.of(rest[i]), projected * GROW, ym))
    return out


def _rest(xx: np.ndarray, yz: np.ndarray, yy: np.ndarray, zz: np.ndarray, basis: Basis, terms: int) -> np.ndarray:
    """|x_rest| rounded up, from the float64 sums |x|^2, y.z, |y|^2, |z|^2 (z: P x as evaluated).

    |x|^2 - 2 y.(P x) + y^T G y <= xx - 2 yz + (1 + skew) yy + E, E covering each sum's evaluation
    (gamma_m times the sum of absolute terms, m <= terms), |y.(P x) - y.z| <= gamma_width |y| |P|_F |x|,
    |y|^2 <= yy (1 + gamma) and the two final additions; generous by a factor of 2."""
    g = 2 * gamma(terms + 4, U64)
    nx, ny, nz = np.sqrt(xx), np.sqrt(yy), np.sqrt(zz)
    e = g * (3 * xx + 6 * ny * nz + 2 * basis.frobenius * ny * nx + 3 * (1 + basis.skew) * yy) + basis.skew * yy
    out: np.ndarray = np.sqrt(np.maximum(xx - 2 * yz + yy + e, 0.0)) * GROW
    return out
