"""Diffusion retrieval: personalized PageRank from the query's neighbours over the SIMILAR graph; pure.

Definitions (docs/diffusion.md has the reasoning and the parameter sweep):

* Seeds: the rows of N(q) = {x : cos(q, x) >= T} (at most `seeds` of them, highest cosine
  first), with seed weights s_x = cos(q, x) normalised to sum 1. This is PageRank restarting
  at q in the graph augmented with q, whose first step goes to N(q) by cosine.
* Walk: from row u to neighbour v with probability w_uv / sum_v' w_uv', where w = 1
  ("unweighted") or w = cos(u, v) ("cosine"). Rows without edges keep their mass (it does
  not flow on), exactly as GDS PageRank treats sinks: no redistribution.
* Scores, GDS's definition with dampingFactor d = 1 - restart:
  x_0 = (1 - d) s, x_{t+1} = (1 - d) s + d P^T x_t for `iterations` steps; as t grows this
  tends to (1 - d)(I - d P^T)^{-1} s. Excluded rows stay in the graph and among the seeds
  but are never returned.
* Scope "graph" diffuses over the whole database graph; "communities" over the subgraph
  induced by N(q) and the communities that hybrid's step 2a picks until they hold
  max(k, pool) returnable images (a fixed pool keeps the top k a prefix of the top k' for
  k <= k' <= pool, as evaluate's scoring of prefixes needs).
* Final ranking: rows with a positive diffusion score y (y = x, or with `per_degree`
  y = x / strength, strength = the row's degree or cosine sum; x for rows without edges), by
  (1 - mix) * y / max(y) + mix * cos(q, row), ties by higher cosine, then smaller id;
  then, unless strict, the rest by cosine (flagged fallback) until k rows.
* No neighbour at T (empty N(q)): nothing to diffuse from; plain cosine ranking, flagged
  fallback, as the other graph methods do.

Precision (docs/diffusion.md, "Precision and cost"): the scores are computed in float32 over each
query's subgraph (cached per community, rows ordered by degree). Every term is non-negative, so each
computed score lies within relative eps = (t(m + 8) + 3)·2^-24 (`rounding_bound`; t iterations, m the
most entries of one row of the subgraph) of the exact one, whatever the order of the sums or the
CPU's instructions; where eps would pass MAX_RTOL or a score could leave float32's normal range,
float64 is used (`precision`). Each combined score is then within tau = 2.01·(1 - mix)·eps of the
exact one: the answer is the exact answer except that rows whose exact scores lie within 2·tau
of each other may trade places (tests/unit/test_diffusion_tolerance.py checks this against a
plain float64 reference).
"""

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from cxrneo.errors import ConfigError
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.region import hybrid_communities
from cxrneo.retrieval.scene import Growth, Scene

BLOCK_CACHE_NNZ = 20_000_000  # adjacency entries of community subgraphs kept for reuse
FLOAT32_UNIT = 2.0**-24  # float32's unit roundoff
FLOAT32_NORMAL_MIN = float(np.finfo(np.float32).tiny)
SPARSE_SHARE = 0.125  # the first step reads the seeds' entries alone when they are at most this share
MAX_RTOL = 1e-3  # beyond this rounding bound (rows of ~10^4 entries) the scores are computed in float64
Weighting = Literal["unweighted", "cosine"]
Scope = Literal["graph", "communities"]
SeedWeights = Literal["cosine", "uniform"]


@dataclass(frozen=True)
class DiffusionParams:
    """The method's parameters; the defaults are the choice made on the validation split."""

    restart: float = 0.1  # alpha; GDS dampingFactor = 1 - restart
    iterations: int = 10
    weighting: Weighting = "unweighted"
    scope: Scope = "communities"
    mix: float = 0.85  # share of cosine in the final score
    seeds: int | None = None  # at most this many seeds (highest cosine); None: all of N(q)
    seed_weights: SeedWeights = "cosine"  # "uniform" is what GDS's sourceNodes can express
    per_degree: bool = False  # rank by x / strength (the walk's return to the seeds) instead of x
    pool: int = 50  # scope "communities": step 2a's communities until they hold max(k, pool) images

    def __post_init__(self) -> None:
        if not 0.0 < self.restart <= 1.0:
            raise ConfigError(f"restart probability must be in (0, 1], got {self.restart}")
        if self.iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {self.iterations}")
        if not 0.0 <= self.mix <= 1.0:
            raise ConfigError(f"mix must be in [0, 1], got {self.mix}")
        if self.pool < 1:
            raise ConfigError(f"pool must be >= 1, got {self.pool}")
        if self.seeds is not None and self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1 (or None for all), got {self.seeds}")
        if self.weighting not in ("unweighted", "cosine"):
            raise ConfigError(f"unknown weighting {self.weighting!r}: use unweighted or cosine")
        if self.seed_weights not in ("cosine", "uniform"):
            raise ConfigError(f"unknown seed weights {self.seed_weights!r}: use cosine or uniform")
        if self.scope not in ("graph", "communities"):
            raise ConfigError(f"unknown scope {self.scope!r}: use graph or communities")

    @property
    def damping(self) -> float:
        """GDS's dampingFactor."""
        return 1.0 - self.restart


def adjacency(
    indptr: np.ndarray, indices: np.ndarray, unit_codes: np.ndarray | None = None, chunk: int = 200_000,
    dtype: type[np.floating] = np.float32,
) -> sp.csr_matrix:
    """The symmetric adjacency as a CSR matrix (weights in `dtype`, int32 indices when they fit): weights 1,
    or the rows' cosines when codes are given."""
    n = indptr.size - 1
    nnz = int(indptr[-1])
    if unit_codes is None:
        data = np.ones(nnz, dtype)
    else:
        heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        cosines = np.empty(nnz, np.float64)
        for s in range(0, nnz, chunk):  # bounded memory: chunk x dim floats at a time
            a, b = heads[s : s + chunk], indices[s : s + chunk]
            cosines[s : s + chunk] = np.einsum("ij,ij->i", unit_codes[a], unit_codes[b])
        if (cosines <= 0).any():
            raise ConfigError("cosine weighting needs positive edge cosines (threshold T > 0)")
        data = cosines.astype(dtype)
    index = np.int32 if max(n, nnz) < 2**31 else np.int64
    return sp.csr_matrix((data, np.asarray(indices, index), np.asarray(indptr, index)), shape=(n, n))


def _entries(adj: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every adjacency entry of `rows`: (position in `rows`, column, weight), row by row."""
    starts = adj.indptr[rows].astype(np.int64)
    lengths = adj.indptr[rows + 1].astype(np.int64) - starts
    offsets = np.cumsum(lengths) - lengths
    at = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return np.repeat(np.arange(rows.size, dtype=np.int64), lengths), adj.indices[at].astype(np.int64), adj.data[at]


@dataclass(frozen=True)
class Part:
    """The subgraph induced by some rows (a community): its adjacency over local indices (row i is
    rows[i]), each row's strength and number of entries inside it, and its smallest weight.

    Built from database rows, a part orders them by decreasing number of entries inside it: the
    rows that most entries point to then lie together, and a product with a vector reads it from
    the processor's nearest cache (2.6x faster on the 112,120-image benchmark's largest community)."""

    rows: np.ndarray  # database rows, in the part's order
    inner: sp.csr_matrix
    strength: np.ndarray  # float64 row sums of `inner`
    entries: np.ndarray  # entries per row of `inner`
    inv: np.ndarray  # 1 / strength (0 where none), in the weights' precision
    max_entries: int
    min_weight: float  # 1.0 without entries
    order: np.ndarray  # positions of `rows` by ascending database row (for look-ups)
    ascending: np.ndarray  # rows[order]

    @classmethod
    def of(cls, adj: sp.csr_matrix, rows: np.ndarray) -> "Part":
        rows = np.unique(np.asarray(rows, np.int64))
        local = np.full(adj.shape[0], -1, np.int64)
        local[rows] = np.arange(rows.size)
        owner, cols, _ = _entries(adj, rows)
        inside = np.bincount(owner[local[cols] >= 0], minlength=rows.size)
        rows = rows[np.argsort(-inside, kind="stable")]  # most entries first
        local[rows] = np.arange(rows.size)
        owner, cols, w = _entries(adj, rows)
        to = local[cols]
        keep = to >= 0
        owner, to, w = owner[keep], to[keep], w[keep]
        inner = sp.csr_matrix((w, to.astype(adj.indices.dtype), _pointers(owner, rows.size, adj.indptr.dtype)),
                              shape=(rows.size, rows.size))
        inner.sort_indices()
        return cls.whole(inner, rows)

    @classmethod
    def whole(cls, inner: sp.csr_matrix, rows: np.ndarray) -> "Part":
        """A part whose adjacency is given (local indices)."""
        entries = np.diff(inner.indptr).astype(np.int64)
        heads = np.repeat(np.arange(rows.size), entries)
        strength = np.bincount(heads, weights=inner.data.astype(np.float64), minlength=rows.size).astype(np.float64)
        inv = np.divide(1.0, strength, out=np.zeros_like(strength), where=strength > 0).astype(inner.dtype)
        order = np.argsort(rows, kind="stable")
        return cls(rows, inner, strength, entries, inv, int(entries.max()) if rows.size else 0,
                   float(inner.data.min()) if inner.nnz else 1.0, order, rows[order])

    def find(self, rows: np.ndarray) -> np.ndarray:
        """The local indices of database rows (-1 for rows not in the part)."""
        if self.rows.size == 0:
            return np.full(rows.size, -1, np.int64)
        at = np.minimum(np.searchsorted(self.ascending, rows), self.rows.size - 1)
        out: np.ndarray = np.where(self.ascending[at] == rows, self.order[at], -1)
        return out


def _pointers(owner: np.ndarray, n: int, dtype: "np.dtype[Any] | type[np.integer[Any]]") -> np.ndarray:
    """CSR row pointers of entries sorted by row `owner`."""
    return np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(dtype)


class Walk:
    """The whole graph's adjacency, and the induced subgraphs of communities kept for reuse."""

    def __init__(self, adj: sp.csr_matrix) -> None:
        self.adj = adj.tocsr()
        self._parts: OrderedDict[int, Part] = OrderedDict()
        self._kept = 0
        self._lock = threading.Lock()  # the part cache is shared by a service's concurrent queries
        self._whole: Part | None = None
        self._scratch = threading.local()

    def __len__(self) -> int:
        return int(self.adj.shape[0])

    @property
    def dtype(self) -> np.dtype[np.floating]:
        dtype: np.dtype[np.floating] = np.dtype(self.adj.dtype)
        return dtype

    @contextmanager
    def local(self, rows: np.ndarray) -> Iterator[np.ndarray]:
        """A map from database row to position in `rows` (-1 elsewhere), for this thread while in use."""
        local = getattr(self._scratch, "map", None)
        if local is None:
            local = self._scratch.map = np.full(len(self), -1, np.int32 if len(self) < 2**31 else np.int64)
        local[rows] = np.arange(rows.size)
        try:
            yield local
        finally:
            local[rows] = -1

    def whole(self) -> "Part":
        """The whole graph as one part (scope "graph")."""
        with self._lock:
            if self._whole is None:
                self._whole = Part.whole(self.adj, np.arange(len(self), dtype=np.int64))
            return self._whole

    def part(self, rows: np.ndarray, key: int | None = None) -> Part:
        """The subgraph induced by `rows`; kept for reuse under `key` (a community id)."""
        if key is None:
            return Part.of(self.adj, rows)
        with self._lock:  # one build per key; a lookup never races an eviction
            hit = self._parts.get(key)
            if hit is None:
                hit = self._parts[key] = Part.of(self.adj, rows)
                self._kept += hit.inner.nnz
                while self._kept > BLOCK_CACHE_NNZ and len(self._parts) > 1:
                    self._kept -= self._parts.popitem(last=False)[1].inner.nnz
            else:
                self._parts.move_to_end(key)
            return hit


class Restricted:
    """The walk on the subgraph induced by disjoint row sets: parts (communities, each with its own
    induced subgraph) and `extra` rows; strengths are counted inside the subgraph.

    Vectors are over `rows` (the parts' rows in order, then `extra`). A step costs the subgraph's
    own adjacency entries: each part's inner entries, and the entries between parts, found from
    every part's rows but the largest one's (and the extra rows'), so a query in a large community
    touches only that community's entries that stay inside the subgraph. The first step, from the
    seeds alone, reads only their entries.
    """

    def __init__(self, walk: Walk, parts: list[Part], extra: np.ndarray | None = None) -> None:
        extra = np.zeros(0, np.int64) if extra is None else np.asarray(extra, np.int64)
        self.dtype = walk.dtype
        self._walk = walk
        self.rows = np.concatenate([p.rows for p in parts] + [extra]).astype(np.int64, copy=False)
        bounds = np.cumsum([0] + [p.rows.size for p in parts])
        self._starts = bounds[:-1].tolist()
        self._parts = parts
        self._extra = Part.whole(sp.csr_matrix((extra.size, extra.size), dtype=self.dtype), extra)  # look-ups only
        self._tail = int(bounds[-1])  # the extra rows from here on
        size = self.rows.size
        self._main = _block_diagonal(parts, size, walk.adj)
        big = int(np.argmax(np.diff(bounds))) if parts else -1
        scan = np.concatenate([np.arange(a, b) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
                               if i != big] + [np.arange(self._tail, size)])  # local rows whose entries are read here
        owner, cols, w = _entries(walk.adj, self.rows[scan])
        to = self.positions(cols)
        src = scan[owner]
        inside = to >= 0
        src, to, w = src[inside], to[inside], w[inside]
        group = len(parts) + np.arange(extra.size)  # extra rows: a group of their own each
        g_src, g_to = self._group(src, bounds, group), self._group(to, bounds, group)
        cross = g_src != g_to  # entries inside a part are in its parts' matrix
        src, to, w, g_to = src[cross], to[cross], w[cross], g_to[cross]
        mirror = g_to == big  # the big part's side of an entry is never read: add it here
        r, c = np.concatenate([src, to[mirror]]), np.concatenate([to, src[mirror]])
        data = np.concatenate([w, w[mirror]])
        self._touched, at = np.unique(r, return_inverse=True)  # the rows with entries between groups
        order = np.lexsort((c, at))
        self._cross = sp.csr_matrix((data[order], c[order], _pointers(at[order], self._touched.size, np.int64)),
                                    shape=(self._touched.size, size))
        self.strength = np.concatenate([p.strength for p in parts] + [np.zeros(extra.size)])
        np.add.at(self.strength, r, data.astype(np.float64))
        self.inv = np.concatenate([p.inv for p in parts] + [np.zeros(extra.size, self.dtype)]).astype(self.dtype, copy=False)
        self.inv[self._touched] = 1.0 / self.strength[self._touched]
        self._entries = np.concatenate([p.entries for p in parts] + [np.zeros(extra.size, np.int64)])
        np.add.at(self._entries, r, 1)
        self.nnz = int(self._main.nnz) + int(self._cross.nnz)
        self.max_entries = max([p.max_entries for p in parts] + [int(self._entries[self._touched].max())
                                                                  if self._touched.size else 0])
        self.min_weight = min([p.min_weight for p in parts] + ([float(data.min())] if data.size else []) + [1.0])

    @staticmethod
    def _group(local: np.ndarray, bounds: np.ndarray, extra_groups: np.ndarray) -> np.ndarray:
        """The part of each local row (extra rows: a group of their own each)."""
        tail = int(bounds[-1])
        out = np.searchsorted(bounds, local, "right") - 1
        late = local >= tail
        out[late] = extra_groups[local[late] - tail]
        return out

    def __len__(self) -> int:
        return int(self.rows.size)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """The positions of database rows in `rows` (-1 for rows outside the subgraph)."""
        rows = np.asarray(rows, np.int64)
        if 8 * rows.size > len(self):  # many: through a map of every database row
            with self._walk.local(self.rows) as local:
                out: np.ndarray = local[rows].astype(np.int64)
                return out
        out = np.full(rows.size, -1, np.int64)
        for a, part in zip(self._starts, self._parts, strict=True):
            at = part.find(rows)
            out[at >= 0] = a + at[at >= 0]
        at = self._extra.find(rows)
        out[at >= 0] = self._tail + at[at >= 0]
        return out

    def support(self, x: np.ndarray) -> np.ndarray | None:
        """The rows where the vector x is non-zero, ascending, when a step from them alone reads at
        most SPARSE_SHARE of the subgraph's entries; else None (and for a batch)."""
        if x.ndim != 1:
            return None
        rows = np.flatnonzero(x)
        return rows if int(self._entries[rows].sum()) <= SPARSE_SHARE * self.nnz else None

    def step(self, x: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
        """P^T x for one vector (over `rows`) or a batch (columns); the adjacency is symmetric.
        `support`: the rows where the vector x is non-zero (ascending), to read only their entries."""
        if support is None:
            z = x * (self.inv if x.ndim == 1 else self.inv[:, None])
            out: np.ndarray = self._main @ z
            if self._touched.size:
                out[self._touched] += self._cross @ z
            return out
        z = x[support] * self.inv[support]  # column j of a symmetric matrix is its row j
        owner, cols, w = _entries(self._main, support)
        wide = np.bincount(cols, weights=w * z[owner], minlength=x.size).astype(np.float64, copy=False)
        at = np.searchsorted(self._touched, support)
        crossing = np.flatnonzero(self._touched[np.minimum(at, self._touched.size - 1)] == support) \
            if self._touched.size else np.zeros(0, np.int64)
        if crossing.size:  # float64 sums, one rounding to x's precision
            owner, cols, w = _entries(self._cross, at[crossing])
            wide += np.bincount(cols, weights=w * z[crossing][owner], minlength=x.size)
        return wide.astype(x.dtype)

    def widened(self) -> "Restricted":
        """The same walk computing in float64 (its float32 weights widened once)."""
        wide = copy.copy(self)
        wide.dtype = np.dtype(np.float64)
        wide.inv = np.divide(1.0, self.strength, out=np.zeros_like(self.strength), where=self.strength > 0)
        wide._main = self._main.astype(np.float64)
        wide._cross = self._cross.astype(np.float64)
        return wide

    def dense(self) -> np.ndarray:
        """The subgraph's adjacency as a dense float64 matrix (small graphs: tests)."""
        a: np.ndarray = self._main.toarray().astype(np.float64)
        a[self._touched] += self._cross.toarray()
        return a


def _block_diagonal(parts: list[Part], size: int, like: sp.csr_matrix) -> sp.csr_matrix:
    """The parts' adjacencies one after another on the diagonal of a size x size matrix (rows past
    the parts empty); one part shares its arrays."""
    if len(parts) == 1:
        inner = parts[0].inner
        pad = np.full(size - inner.shape[0], inner.indptr[-1], inner.indptr.dtype)
        return sp.csr_matrix((inner.data, inner.indices, np.concatenate([inner.indptr, pad])), shape=(size, size),
                             copy=False)
    data = [p.inner.data for p in parts]
    offsets = np.cumsum([0] + [p.rows.size for p in parts])
    indices = [p.inner.indices.astype(np.int64) + o for p, o in zip(parts, offsets[:-1], strict=True)]
    entries = np.concatenate([p.entries for p in parts] + [np.zeros(size - int(offsets[-1]), np.int64)])
    index = like.indices.dtype
    return sp.csr_matrix((np.concatenate(data) if data else np.zeros(0, like.dtype),
                          np.concatenate(indices).astype(index) if indices else np.zeros(0, index),
                          np.concatenate([[0], np.cumsum(entries)]).astype(like.indptr.dtype)), shape=(size, size))


def subgraph(walk: Walk) -> Restricted:
    """The whole graph as a Restricted walk (scope "graph")."""
    return Restricted(walk, [walk.whole()])


def personalized_pagerank(walk: Restricted, seeds: np.ndarray, damping: float, iterations: int) -> np.ndarray:
    """GDS's personalized PageRank after `iterations` steps, in the walk's precision; seeds (n,) or
    (n, B), not normalised here."""
    base = (1.0 - damping) * np.asarray(seeds, np.float64)
    base = base.astype(walk.dtype)
    d = walk.dtype.type(damping)
    x = base.copy()
    support = walk.support(x)  # the first step goes out from the seeds alone
    for _ in range(iterations):
        x = walk.step(x, support)
        x *= d
        x += base
        support = None
    return x


def rounding_bound(iterations: int, max_entries: int) -> float:
    """How far, relatively, a computed score may lie from the exact one: (t(m + 8) + 3)·2^-24 over
    (1 - that), for t iterations on a subgraph whose rows hold at most m entries (docs/diffusion.md
    derives it; it also covers the float64 path, whose weights are float32)."""
    n = (iterations * (max_entries + 8) + 3) * FLOAT32_UNIT
    return n / (1.0 - n) if n < 1.0 else float("inf")


def precision(walk: Restricted, seeds: np.ndarray, params: DiffusionParams) -> type[np.floating]:
    """float32 where `rounding_bound` holds and is at most MAX_RTOL, else float64.

    The bound needs every non-zero value the iteration makes to stay in float32's normal range:
    with seeds scaled to a largest weight of 1, each is at least (1 - d)·s_min·(d·w_min / S)^t,
    S = max(1, the largest strength), w_min the smallest weight (at most 1)."""
    t, d = params.iterations, params.damping
    positive = np.asarray(seeds, np.float64)
    positive = positive[positive > 0]
    if walk.dtype != np.float32 or positive.size == 0 or rounding_bound(t, walk.max_entries) > MAX_RTOL:
        return np.float64
    strength = max(float(walk.strength.max()), 1.0)
    reach = (1.0 - d) * float(positive.min() / positive.max()) * (d * min(walk.min_weight, 1.0) / strength) ** t
    return np.float32 if reach >= 2.0 * FLOAT32_NORMAL_MIN else np.float64


def scores(walk: Restricted, seeds: np.ndarray, params: DiffusionParams) -> np.ndarray:
    """Personalized PageRank over the walk in `precision`'s choice, as float64, for seeds scaled to a
    largest weight of 1 (the ranking divides by the largest score)."""
    seeds = np.asarray(seeds, np.float64)
    top = float(seeds.max()) if seeds.size else 0.0
    scaled = seeds / top if top > 0 else seeds
    on = walk if precision(walk, seeds, params) == np.float32 else walk.widened()
    return personalized_pagerank(on, scaled, params.damping, params.iterations).astype(np.float64)


def closed_form(walk: Restricted, seeds: np.ndarray, damping: float) -> np.ndarray:
    """The fixed point (1 - d)(I - d P^T)^{-1} s by a dense solve, in float64 (small graphs: tests)."""
    a = walk.dense()
    strength = a.sum(axis=1)
    inv = np.divide(1.0, strength, out=np.zeros_like(strength), where=strength > 0)
    pt = a * inv[None, :]  # column u scaled by 1/strength(u)
    n = len(walk)
    return np.asarray(np.linalg.solve(np.eye(n) - damping * pt, (1.0 - damping) * np.asarray(seeds, np.float64)))


def seed_vector(
    cos: Cosines, nq: np.ndarray, limit: int | None, weights: SeedWeights = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """(seed rows ascending, weights summing to 1): the `limit` rows of N(q) with the highest cosine."""
    rows = np.asarray(nq, np.int64)
    values = cos.exact(rows)
    if limit is not None and rows.size > limit:
        order = np.argsort(-values, kind="stable")
        rows, values = rows[order[:limit]], values[order[:limit]]
        ascending = np.argsort(rows)
        rows, values = rows[ascending], values[ascending]
    w = np.clip(values, 1e-12, None) if weights == "cosine" else np.ones(rows.size)
    return rows, w / w.sum()


def rank(
    scores: np.ndarray, cos: Cosines, rows: np.ndarray, ids: Sequence[str], mix: float, need: int
) -> list[int]:
    """Rows with a positive score, best first by the combined score, then cosine, then id.

    The combined score (1 - mix) y / max(y) + mix cos uses exact cosines; the first pass only
    rules out the rows whose best possible score is below the need-th best sure one."""
    keep = scores > 0
    rows, x = rows[keep], scores[keep]
    if rows.size == 0 or need <= 0:
        return []
    need = min(need, rows.size)
    diffused = (1.0 - mix) * x / x.max()
    if need < rows.size and mix > 0:
        approx = cos.approx[rows]
        lower = diffused + mix * cos.lower(approx)
        cut = np.partition(lower, rows.size - need)[rows.size - need]
        live = diffused + mix * cos.upper(approx) >= cut
        rows, diffused = rows[live], diffused[live]
    c = cos.exact(rows)
    final = diffused + mix * c
    if need < rows.size:
        cut = np.partition(final, rows.size - need)[rows.size - need]
        sel = np.flatnonzero(final >= cut)
    else:
        sel = np.arange(rows.size)
    ordered = sorted(sel.tolist(), key=lambda p: (-float(final[p]), -float(c[p]), ids[int(rows[p])]))
    return [int(rows[p]) for p in ordered[:need]]


DEFAULT = DiffusionParams()


def walk_of(scene: Scene, weighting: Weighting) -> Walk:
    """The whole-graph walk of a scene's MemoryGraph, kept in the scene's memo (one build per weighting)."""
    return scene.memo(("diffusion-walk", weighting), lambda: _build_walk(scene, weighting))


def _build_walk(scene: Scene, weighting: Weighting) -> Walk:
    view = scene.graph.view
    if not isinstance(view, MemoryGraph):
        raise ConfigError(f"diffusion needs the graph's adjacency in memory (a MemoryGraph), not {type(view).__name__}")
    if view.indptr.size - 1 != len(scene.ids):  # the CSR rows are the scene's rows
        raise ConfigError(f"the graph has {view.indptr.size - 1} rows, the retriever {len(scene.ids)} images")
    codes = scene.codes if weighting == "cosine" else None
    return Walk(adjacency(view.indptr, view.indices, codes))


def diffuse(
    scene: Scene, cos: Cosines, blocked: np.ndarray, k: int, strict: bool,
    params: DiffusionParams = DEFAULT,
) -> Growth:
    """The k best rows by diffusion for one query (`cos`: its cosines to every row), as a Growth."""
    out = Growth()
    taken = np.zeros(len(scene.ids), bool)
    taken[blocked] = True
    nq = cos.at_least(scene.threshold)
    if nq.size:
        rows, y = diffused(scene, cos, nq, taken, k, params)
        for row in rank(y, cos, rows, scene.ids, params.mix, k):
            out.add(row, None)
            taken[row] = True
    if not strict and len(out.rows) < k:
        for row in cos.top(k - len(out.rows), scene.ids.__getitem__, np.flatnonzero(taken)).tolist():
            out.add(row, None, fallback=True)
    return out


def diffused(
    scene: Scene, cos: Cosines, nq: np.ndarray, excluded: np.ndarray, k: int, params: DiffusionParams = DEFAULT,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, y): the rows of the scope's subgraph and their diffusion scores y (x, or x / strength with
    `per_degree`), 0 for `excluded` rows; nq = N(q), not empty."""
    full = walk_of(scene, params.weighting)
    seeds, weights = seed_vector(cos, nq, params.seeds, params.seed_weights)
    walk = restricted(scene, full, cos, nq, excluded, max(k, params.pool)) if params.scope == "communities" else subgraph(full)
    s = np.zeros(len(walk), np.float64)
    s[walk.positions(seeds)] = weights  # N(q) lies inside every scope
    y = scores(walk, s, params)
    if params.per_degree:
        y = np.where(walk.strength > 0, y / np.where(walk.strength > 0, walk.strength, 1.0), y)
    y[excluded[walk.rows]] = 0.0  # excluded rows diffuse but are never returned
    return walk.rows, y


def restricted(scene: Scene, walk: Walk, cos: Cosines, nq: np.ndarray, excluded: np.ndarray,
               k: int) -> Restricted:
    """The walk inside N(q) and the communities hybrid's step 2a picks for k images."""
    parts = []
    covered = np.zeros(len(walk), bool)
    for c in hybrid_communities(scene.graph, cos, nq, excluded, k):
        rows = scene.graph.block(c).rows
        parts.append(walk.part(rows, key=c))
        covered[rows] = True
    return Restricted(walk, parts, nq[~covered[nq]])  # with q's neighbours in communities not chosen
