"""Cosines of one query to every row: a fast first pass with a proven bound, exact where it decides; pure.

The exact cosine of a row is `exact_dot`: the float32 code and the float32 query widened to float64
(so every product is exact) and summed in one fixed order, row by row. It is within 1.2e-13 of the
true dot product of the stored values, and the same bits whichever rows are asked for together, so
a row's value never depends on the batch, the kernel or the machine's BLAS.

A first pass (`scan.Kernel`: float32 BLAS, bfloat16 where the CPU has it, or a low-rank pass) gives
`approx`, each value within `base + rel * |approx| (+ scale * row_term[i])` of the exact one (docs/method.md
derives the bounds; the per-row term is the low-rank pass's, see lowrank.py). Every decision a method
makes (the k best, N(q) = cosine >= T, ties by cosine, diffusion's blended score) is taken on exact
values; the first pass only proves which rows cannot matter.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np

from cxrneo.retrieval.ranking import best_first


class RowSource(Protocol):
    """Anything that gives rows of the codes by index array (an array, or a file read row by row)."""

    def __getitem__(self, rows: np.ndarray, /) -> np.ndarray: ...


Rows: TypeAlias = np.ndarray | RowSource


@dataclass(frozen=True)
class RowTerm:
    """The part of a first pass's bound that differs from row to row: values (n,) >= 0, and `top`, at
    least the largest of them (a bound on every row at once)."""

    values: np.ndarray
    top: float

    @classmethod
    def of(cls, values: np.ndarray) -> "RowTerm":
        v = np.ascontiguousarray(values, dtype=np.float64)
        if v.ndim != 1 or not bool((v >= 0).all()):
            raise ValueError("a row term is one non-negative value per row")
        return cls(v, float(v.max(initial=0.0)))


EXACT_CHUNK = 256  # rows widened to float64 at a time (2 MB at width 1024; one pass over all of them was
# 7x slower at 2,641 rows, AMD EPYC, every product and sum the same)
SLACK = 1e-12  # covers exact_dot's own rounding (<= 1.2e-13 for unit codes up to 4096 wide) with room


def exact_dot(codes: Rows, rows: np.ndarray, q64: np.ndarray) -> np.ndarray:
    """float64 dot products of `codes[rows]` with q64, each row summed in the same fixed order."""
    rows = np.asarray(rows, np.int64)
    out: np.ndarray = np.empty(rows.size, np.float64)
    for s in range(0, rows.size, EXACT_CHUNK):  # a few hundred rows at a time: widened, they stay in cache
        x = np.asarray(codes[rows[s : s + EXACT_CHUNK]], dtype=np.float64)
        out[s : s + x.shape[0]] = (x * q64).sum(axis=1)  # numpy's pairwise sum along each contiguous row
    return out


def _in_precision(cut: float, kind: type[np.floating], up: bool) -> np.floating:
    """`cut` as a value of the first pass's own precision, rounded so that `approx >= it` keeps no row that
    `approx >= cut` would not (`up`), or drops none that it would keep (down)."""
    v = kind(cut)
    if up and float(v) < cut:  # compared in float64 (a Python float beside a float32 would be rounded to it)
        v = np.nextafter(v, kind(np.inf))
    elif not up and float(v) > cut:
        v = np.nextafter(v, kind(-np.inf))
    return v


class Cosines:
    """The cosines of one unit query `q` to the rows of `codes`: a first pass `approx` (row i within
    base + rel * |approx[i]| + scale * row.values[i] of the exact value) and the exact values of the
    rows asked for so far."""

    def __init__(
        self, codes: Rows | None, q: np.ndarray | None, approx: np.ndarray, base: float = 0.0, rel: float = 0.0,
        rows: np.ndarray | None = None, row: RowTerm | None = None, scale: float = 0.0,
    ) -> None:
        """`rows`: when given, this is the view of a subset, local row i being `codes[rows[i]]`.
        `row`, `scale`: the per-row part of the bound (local rows, like `approx`)."""
        if not 0.0 <= rel < 1.0 or base < 0.0 or not scale >= 0.0:
            raise ValueError(f"not an error bound: base {base}, rel {rel}, scale {scale}")
        self._codes = codes
        self._q = None if q is None else np.asarray(q, np.float64).ravel()
        self.approx = np.asarray(approx).ravel()
        self.base, self.rel = float(base), float(rel)
        if row is not None and row.values.shape != self.approx.shape:
            raise ValueError(f"a row term of {row.values.size} rows for {self.approx.size}")
        self._row = row if row is not None and scale > 0.0 and row.top > 0.0 else None
        self.scale = float(scale) if self._row is not None else 0.0
        self._spread = self.scale * self._row.top if self._row is not None else 0.0  # the largest per-row term
        self._map = rows
        self._value = np.empty(self.approx.size, np.float64)
        self._known = np.zeros(self.approx.size, bool)
        self.computed = 0  # how many exact values were needed (benchmarks and the service's metrics report it)
        self._parent: Cosines | None = None  # the view this one restricts: its count includes this one's

    @classmethod
    def exact_all(cls, codes: np.ndarray, q: np.ndarray) -> "Cosines":
        """The reference: every value exact (what the first pass must reproduce, decision for decision)."""
        values = exact_dot(codes, np.arange(codes.shape[0]), np.asarray(q, np.float64).ravel())
        return cls(codes, q, values)

    @classmethod
    def of(cls, values: np.ndarray) -> "Cosines":
        """Cosines given outright (tests, callers that computed their own): every value is exact."""
        return cls(None, None, np.asarray(values, np.float64))

    def __len__(self) -> int:
        return int(self.approx.size)

    def restrict(self, rows: np.ndarray) -> "Cosines":
        """The same query over a subset of rows (ascending); local row i is rows[i]."""
        rows = np.asarray(rows, np.int64)
        mapped = rows if self._map is None else self._map[rows]
        row = None if self._row is None else RowTerm(self._row.values[rows], self._row.top)
        sub = Cosines(self._codes, self._q, self.approx[rows], self.base, self.rel, mapped, row, self.scale)
        known = self._known[rows]
        sub._known[known] = True
        sub._value[known] = self._value[rows[known]]
        sub._parent = self
        return sub

    def exact(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """The exact cosines of `rows` (computed once each)."""
        rows = np.asarray(rows, np.int64)
        todo = np.unique(rows[~self._known[rows]])
        if todo.size:
            source = todo if self._map is None else self._map[todo]
            if self._codes is None or self._q is None:  # given outright
                self._value[todo] = self.approx[todo]
            else:
                self._value[todo] = exact_dot(self._codes, source, self._q)
            self._known[todo] = True
            view: Cosines | None = self
            while view is not None:
                view.computed += int(todo.size)
                view = view._parent
        out: np.ndarray = self._value[rows]
        return out

    # --- bounds: monotone in the approximate value, so cuts on `approx` are one comparison -------------
    # (with a per-row term: one comparison with the largest term, then each row's own on the few left)

    def _upper_cut(self, t: float) -> float:
        """The least approx whose upper bound (approx + base + rel|approx| + the largest per-row term) can
        reach t. Compared with float32 values it rounds to a neighbouring float32: down keeps more rows,
        up keeps the same (no float32 lies between the cut and the next one)."""
        c = t - self.base - self._spread - 2 * SLACK
        return c / (1.0 + self.rel) if c >= 0 else c / (1.0 - self.rel)

    def _lower_cut(self, t: float) -> float:
        """The least approx whose lower bound (approx - base - rel|approx| - the largest per-row term)
        reaches t: every row from it on is surely at least t (`lower`, solved for approx)."""
        c = t + self.base + self._spread + 2 * SLACK
        return c / (1.0 - self.rel) if c >= 0 else c / (1.0 + self.rel)

    def _term(self, rows: np.ndarray | None) -> np.ndarray | float:
        if self._row is None:
            return 0.0
        if rows is None:  # rows unknown: the largest term (still a bound, a wider one)
            return self._spread
        out: np.ndarray = self.scale * self._row.values[rows]
        return out

    def lower(self, a: np.ndarray | float, rows: np.ndarray | None = None) -> np.ndarray:
        """A value no larger than the exact cosine of a row whose first pass gave `a`; `rows`: which
        (local) rows gave `a`, for a per-row term (without them the largest term is taken)."""
        a = np.asarray(a, np.float64)
        out: np.ndarray = a - self.rel * np.abs(a) - self.base - 2 * SLACK - self._term(rows)
        return out

    def upper(self, a: np.ndarray | float, rows: np.ndarray | None = None) -> np.ndarray:
        """A value no smaller than the exact cosine of a row whose first pass gave `a` (`rows` as in `lower`)."""
        a = np.asarray(a, np.float64)
        out: np.ndarray = a + self.rel * np.abs(a) + self.base + 2 * SLACK + self._term(rows)
        return out

    def _reaching(self, t: float) -> np.ndarray:
        """Rows whose upper bound reaches t, ascending (every row whose exact cosine may be >= t)."""
        cand = np.flatnonzero(self.approx >= self._upper_cut(t))
        if self._row is not None and cand.size:
            cand = cand[self.upper(self.approx[cand], cand) >= t]
        return cand

    # --- decisions ---------------------------------------------------------------------------------

    def at_least(self, t: float) -> np.ndarray:
        """Rows whose exact cosine is >= t, ascending (exact values computed only near t)."""
        cand = self._reaching(t)
        if cand.size == 0:
            return cand.astype(np.int64)
        unsure = cand[self.lower(self.approx[cand], cand) < t]
        keep = np.ones(cand.size, bool)
        if unsure.size:
            keep[np.searchsorted(cand, unsure)] = self.exact(unsure) >= t
        return cand[keep].astype(np.int64)

    def count_at_least(self, cuts: np.ndarray) -> np.ndarray:
        """For each t of `cuts`, how many rows have an exact cosine >= t (len(at_least(t)) for every t at
        once). Per cut, two comparisons of the first pass (in its own precision) with the bounds' cuts
        count the rows surely at least t and find the narrow band of rows whose bounds straddle t; only
        those get exact values. No sort: the rows that may reach the lowest cut can be most of them."""
        cuts = np.asarray(cuts, np.float64).ravel()
        out = np.zeros(cuts.size, np.int64)
        if cuts.size == 0:
            return out
        if self._row is not None:
            return self._count_per_row(cuts)
        kind = self.approx.dtype.type
        reach = [_in_precision(self._upper_cut(t), kind, up=False) for t in cuts.tolist()]  # below: surely < t
        sure = [_in_precision(self._lower_cut(t), kind, up=True) for t in cuts.tolist()]  # from it on: surely >= t
        pool = np.flatnonzero(self.approx >= min(reach))
        approx = self.approx[pool]
        for i, t in enumerate(cuts.tolist()):
            out[i] = np.count_nonzero(approx >= sure[i])
            band = pool[(approx >= reach[i]) & (approx < sure[i])]
            if band.size:
                out[i] += int((self.exact(band) >= t).sum())
        return out

    def _count_per_row(self, cuts: np.ndarray) -> np.ndarray:
        """count_at_least with a per-row term: bounds are no longer in the order of approx, so each cut
        compares the rows' own bounds (no sort, as above)."""
        out = np.zeros(cuts.size, np.int64)
        pool = self._reaching(float(cuts.min()))
        approx = self.approx[pool].astype(np.float64)
        low, up = self.lower(approx, pool), self.upper(approx, pool)
        for i, t in enumerate(cuts.tolist()):
            sure = int(np.count_nonzero(low >= t))  # lower bound >= t
            unsure = pool[(low < t) & (up >= t)]
            out[i] = sure + (int((self.exact(unsure) >= t).sum()) if unsure.size else 0)
        return out

    def top(
        self, k: int, name: Callable[[int], str], blocked: np.ndarray | None = None,
        among: np.ndarray | None = None,
    ) -> np.ndarray:
        """The k rows with the largest exact cosine, best first, ties by name(row); only rows of
        `among` (all rows when None) and none of `blocked`; fewer when fewer remain."""
        if among is None:  # every row: work on the first pass itself (no index array, no widening)
            values = self.approx
            if blocked is not None and np.size(blocked):
                values = values.copy()
                values[np.asarray(blocked, np.int64)] = -np.inf
        else:
            among = np.asarray(among, np.int64)
            values = self.approx[among]
            if blocked is not None and np.size(blocked):
                values[np.isin(among, blocked)] = -np.inf
        finite = bool(np.isfinite(values).all())
        live = values if finite else values[np.isfinite(values)]
        need = min(int(k), int(live.size))
        if need <= 0:
            return np.empty(0, np.int64)
        kth = float(np.partition(live, live.size - need)[live.size - need])
        cut = float(self.lower(kth))  # the need-th best exact cosine is at least this
        cand = np.flatnonzero(values >= self._upper_cut(cut))  # never a -inf (cut is finite)
        if among is not None:
            cand = among[cand]
        if self._row is not None:  # the need-th best lower bound of the rows themselves, then each row's upper
            a = self.approx[cand].astype(np.float64)
            low = self.lower(a, cand)
            cut = float(np.partition(low, low.size - need)[low.size - need])
            cand = cand[self.upper(a, cand) >= cut]
        picked = best_first(self.exact(cand), lambda i: name(int(cand[i])), need)
        return cand[np.array(picked, np.int64)]
