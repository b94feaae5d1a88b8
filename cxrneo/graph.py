"""Codes -> thresholded cosine-similarity edges (exact, FAISS inner products; pure, no database).

One membership rule (`settle`) decides every pair for every backend: FAISS here, numpy and the
torch device path (cxrneo/embed/edges.py) each find every pair whose fp32 cosine is >= T - band(d),
and `settle` recomputes each one's cosine pair by pair in float64 (exactly, within 1e-9 of T), so
all give the same edges and cosines.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np

from cxrneo.archive.shards import Rows  # source rows [a, b): the pairs (i, j) with a <= i < b, j > i
from cxrneo.errors import ConfigError, InputError

DEFAULT_BLOCK = 8192
DEFAULT_MEAN_DEGREE = 50.0  # the target mean degree when a new graph is given neither T nor a degree
THRESHOLD_TOLERANCE = 1e-9  # a given T this close to the stored one is the same T
BAND = 1e-4  # the candidate band below T for codes up to 1024 wide (see `band`)
FP32_UNIT = 2.0**-24  # unit roundoff of float32


def dot_error_bound(width: int, unit: float = FP32_UNIT) -> float:
    """How far a floating-point dot product of two codes of `width` values, each of norm at most
    1 + width * unit (unit codes normalised in that precision), can be from the exact dot product
    of the same stored values, whatever the summation order.

    Derivation: a sum of d products computed in any order with unit roundoff u is within
    gamma_d * sum |x_i y_i| of the exact value, gamma_d = d u / (1 - d u) (Higham, Accuracy and
    Stability of Numerical Algorithms, 2nd ed., section 3.1). By Cauchy-Schwarz sum |x_i y_i| <=
    |x| |y|, and the stored codes' norms are within d u of 1 (their own normalisation was rounded).
    Precondition: d u < 1 (else there is no bound)."""
    du = width * unit
    if width < 1 or du >= 1:
        raise ConfigError(f"no rounding bound for codes {width} wide at unit roundoff {unit:g}")
    return du / (1 - du) * (1 + du) ** 2


def band(width: int) -> float:
    """The candidate band below T: every pair with exact cosine >= T has an fp32 cosine >= T - band,
    so the backends keep every pair above T - band and `settle` decides each exactly.

    BAND (1e-4) while it covers the fp32 dot-product bound with half again to spare (codes up to
    1,118 wide; DenseNet's are 1024, bound 6.1e-5); wider codes get twice the bound, so the
    guarantee never silently lapses."""
    bound = dot_error_bound(width)
    return BAND if bound <= BAND / 1.5 else 2 * bound


@dataclass(frozen=True)
class Edges:
    """Undirected edges as row-index pairs (src < dst) with their cosine similarity."""

    src: np.ndarray
    dst: np.ndarray
    cosine: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])

    @staticmethod
    def empty() -> "Edges":
        return Edges(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


class EdgeFn(Protocol):
    """(unit codes, T[, source rows]) -> the edges: FAISS, a GPU, or a merged edges file."""

    def __call__(self, unit_codes: np.ndarray, threshold: float, *, rows: Rows | None = None) -> Edges: ...


@dataclass(frozen=True)
class GraphStats:
    """What the build reports: threshold, size, degrees and isolated images."""

    threshold: float | None
    nodes: int
    edges: int
    mean_degree: float
    max_degree: int
    isolated: int


def normalise(codes: np.ndarray) -> np.ndarray:
    """float32 copy with unit-length rows; zero or non-finite rows are refused."""
    x = np.asarray(codes, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"codes must be a 2-d array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.isfinite(norms).all() or (norms == 0).any():
        raise InputError("codes hold zero or non-finite rows; cannot normalise")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _blocks(n: int, block: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, block):
        yield start, min(n, start + block)


def _range_pairs(
    queries: np.ndarray, base: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """All (query row, base row) with fp32 cosine >= radius, via FAISS range search."""
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return _range_pairs_in(index, queries, radius)


def row_range(n: int, rows: Rows | None) -> Rows:
    """The source rows [a, b) of a job over n codes (all rows when None); bad ranges refused."""
    a, b = (0, n) if rows is None else rows
    if not 0 <= a <= b <= n:
        raise ConfigError(f"rows {a}:{b} are not a range within the {n} codes")
    return int(a), int(b)


def similarity_edges(
    unit_codes: np.ndarray, threshold: float, batch: int = DEFAULT_BLOCK, rows: Rows | None = None
) -> Edges:
    """Every pair i < j with cos >= threshold (i in `rows`, default all); upper-triangle blocks
    only, never N x N in memory."""
    x = np.ascontiguousarray(unit_codes, dtype=np.float32)
    n = x.shape[0]
    a, b = row_range(n, rows)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for qs in range(a, b, batch):
        qe = min(b, qs + batch)
        for bs, be in _blocks(n - qs, batch):
            bs, be = bs + qs, be + qs  # lower triangle skipped: every pair is found once, from its smaller row
            r, c = _range_pairs(x[qs:qe], x[bs:be], threshold - band(x.shape[1]))
            r, c = r + qs, c + bs
            keep = r < c
            parts.append((r[keep], c[keep]))
    return settle(x, *sorted_pairs(parts), threshold)


def approximate_edges(
    unit_codes: np.ndarray, threshold: float, nlist: int, nprobe: int, batch: int = DEFAULT_BLOCK,
    rows: Rows | None = None, train_rows: int = 100_000, seed: int = 0,
) -> Edges:
    """Edges beyond exact reach: a FAISS inverted-file index (nlist k-means cells, `nprobe` visited
    per query) finds the pairs each row sees; a pair seen from either end is kept, and every kept
    pair is decided by `settle` (so nothing below T; only misses). Distance work is about nprobe /
    nlist of the exact N^2 d, plus k-means training; at 112,120 codes on 2 cores it was slower than
    the exact edges (docs/scale.md, measured by scripts/bench_scale.py with its recall)."""
    x = np.ascontiguousarray(unit_codes, dtype=np.float32)
    n, d = x.shape
    a, b = row_range(n, rows)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(n, min(n, train_rows), replace=False)
    index.train(x[np.sort(sample)])
    index.add(x)
    index.nprobe = nprobe
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for qs in range(0, n, batch):  # every row asks, so a pair is found from either end
        r, c = _range_pairs_in(index, x[qs : qs + batch], threshold - band(x.shape[1]))
        r = r + qs
        lo, hi = np.minimum(r, c), np.maximum(r, c)
        keep = (lo < hi) & (lo >= a) & (lo < b)
        found.append((lo[keep], hi[keep]))
    src, dst = sorted_pairs(found)
    first = np.ones(len(src), bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return settle(x, src[first], dst[first], threshold)


def _range_pairs_in(
    index: "faiss.Index", queries: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """(query row, index row) of every hit with fp32 cosine >= radius of a FAISS range search."""
    # FAISS keeps inner products strictly above its radius: step just below, then filter >=.
    below = float(np.nextafter(np.float32(radius), np.float32(-np.inf)))
    lims, sims, cols = index.range_search(queries, below)
    counts: np.ndarray = np.asarray(lims, dtype=np.int64)
    rows = np.repeat(np.arange(queries.shape[0], dtype=np.int64), counts[1:] - counts[:-1])
    keep = sims >= np.float32(radius)
    return rows[keep], cols[keep].astype(np.int64)


def edges_numpy(unit_codes: np.ndarray, threshold: float, batch: int = 2048) -> Edges:
    """Reference (and benchmark baseline): the same edges by blocked numpy matrix products."""
    x = np.ascontiguousarray(unit_codes, dtype=np.float32)
    n = x.shape[0]
    parts = []
    for qs, qe in _blocks(n, batch):
        sims = x[qs:qe] @ x[qs:].T
        r, c = np.nonzero(sims >= np.float32(threshold - band(x.shape[1])))
        keep = r + qs < c + qs
        r, c = r[keep], c[keep]
        parts.append((r.astype(np.int64) + qs, c.astype(np.int64) + qs))
    return settle(x, *sorted_pairs(parts), threshold)


def settle(unit_codes: np.ndarray, src: np.ndarray, dst: np.ndarray, threshold: float) -> Edges:
    """The membership rule of every backend: of the candidate pairs (src, dst) (every pair with fp32
    cosine >= T - band(d), sorted by (src, dst)), keep those with cosine >= T, and give each its cosine.

    The cosine of every candidate is recomputed pair by pair in float64 (so it does not depend on
    the backend's blocks, shards or summation order: a sharded run stores the same bits as an
    unsharded one), and one within 1e-9 of T is decided by its exact value (products of float32
    are exact in float64; math.fsum adds them without error). The stored cosine is that value,
    rounded to float32: the backend's own fp32 cosines only chose the candidates."""
    exact = np.empty(len(src), np.float64)
    for s in range(0, len(src), 8192):
        a, b = unit_codes[src[s : s + 8192]], unit_codes[dst[s : s + 8192]]
        exact[s : s + len(a)] = np.einsum("ij,ij->i", a, b, dtype=np.float64)
    for i in np.flatnonzero(np.abs(exact - threshold) < 1e-9):  # float64 rounding here is below 1e-12
        exact[i] = math.fsum(unit_codes[src[i]].astype(np.float64) * unit_codes[dst[i]].astype(np.float64))
    keep = exact >= threshold
    return Edges(src[keep], dst[keep], exact[keep].astype(np.float32))


def sorted_pairs(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs of many blocks as one (src, dst), int64, sorted by (src, dst)."""
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = np.concatenate([p[0] for p in parts]).astype(np.int64)
    dst = np.concatenate([p[1] for p in parts]).astype(np.int64)
    order = np.lexsort((dst, src))
    return src[order], dst[order]


def threshold_for_degree(
    unit_codes: np.ndarray, mean_degree: float, sample: int = 1000, seed: int = 0
) -> float:
    """T such that the graph has about `mean_degree` mean degree: the (1 - k/(N-1)) quantile of
    pairwise cosines, from `sample` random rows against all others (exact when N <= sample)."""
    x = np.ascontiguousarray(unit_codes, dtype=np.float32)
    n = x.shape[0]
    if n < 2:
        raise ConfigError("need at least two codes to choose a threshold")
    if not 0 < mean_degree < n - 1:
        raise ConfigError(f"mean degree must be in (0, {n - 1}), got {mean_degree}")
    rows = np.arange(n) if n <= sample else np.random.default_rng(seed).choice(n, sample, replace=False)
    # Among the m*(N-1) sampled ordered pairs, about k*m lie at or above T.
    keep = max(1, int(round(mean_degree * len(rows))))
    top = np.empty(0, np.float32)
    for s, e in _blocks(len(rows), 256):
        idx = rows[s:e]
        sims = x[idx] @ x.T
        sims[np.arange(e - s), idx] = -np.inf  # a code is not its own neighbour
        flat = np.concatenate([top, sims.ravel()])
        k = min(keep, flat.size)
        top = np.partition(flat, flat.size - k)[flat.size - k :]
    return float(top.min())


def degree_stats(n: int, edges: Edges, threshold: float | None = None) -> GraphStats:
    """Node count, edge count, mean and max degree and isolated nodes of an edge list."""
    deg = np.bincount(edges.src, minlength=n) + np.bincount(edges.dst, minlength=n)
    return GraphStats(
        threshold=threshold,
        nodes=n,
        edges=len(edges),
        mean_degree=float(2 * len(edges) / n) if n else 0.0,
        max_degree=int(deg.max()) if n else 0,
        isolated=int((deg == 0).sum()),
    )


def resolve_threshold(
    stored: float | None, threshold: float | None, mean_degree: float | None, unit: np.ndarray, seed: int = 0
) -> float:
    """The one threshold policy: the given T, one derived from a target mean degree, or the stored one.

    A graph holds one T: a different T, or a mean degree for a graph that has one, is refused.
    """
    if threshold is not None and mean_degree is not None:
        raise ConfigError("give --threshold or --mean-degree, not both")
    if threshold is None and mean_degree is not None:
        if stored is not None:
            raise ConfigError(f"the graph already has threshold {stored}; omit --mean-degree to reuse it")
        threshold = threshold_for_degree(unit, mean_degree, seed=seed)
    if threshold is None:
        if stored is None:
            raise ConfigError("a new graph needs --threshold or --mean-degree")
        return stored
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a cosine in [-1, 1], got {threshold}")
    if stored is not None and abs(stored - threshold) > THRESHOLD_TOLERANCE:
        raise ConfigError(
            f"threshold {threshold} differs from the graph's stored threshold {stored}; "
            "a graph holds one threshold (wipe it to rebuild)"
        )
    return float(threshold)
