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
"""

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from cxrneo.errors import ConfigError
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.region import grow
from cxrneo.retrieval.scene import Growth, Scene

BLOCK_CACHE_NNZ = 20_000_000  # adjacency entries of community rows kept for reuse
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
    indptr: np.ndarray, indices: np.ndarray, unit_codes: np.ndarray | None = None, chunk: int = 200_000
) -> sp.csr_matrix:
    """The symmetric adjacency as a CSR matrix: weights 1, or the rows' cosines when codes are given."""
    n = indptr.size - 1
    nnz = int(indptr[-1])
    if unit_codes is None:
        data = np.ones(nnz, np.float64)
    else:
        heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        data = np.empty(nnz, np.float64)
        for s in range(0, nnz, chunk):  # bounded memory: chunk x dim floats at a time
            a, b = heads[s : s + chunk], indices[s : s + chunk]
            data[s : s + chunk] = np.einsum("ij,ij->i", unit_codes[a], unit_codes[b])
        if (data <= 0).any():
            raise ConfigError("cosine weighting needs positive edge cosines (threshold T > 0)")
    return sp.csr_matrix((data, np.asarray(indices, np.int64), np.asarray(indptr, np.int64)), shape=(n, n))


class Walk:
    """The transition operator of one (sub)graph: x -> P^T x, sinks keep nothing to pass on."""

    def __init__(self, adj: sp.csr_matrix) -> None:
        self.adj = adj.tocsr()
        self._blocks: OrderedDict[int, sp.csr_matrix] = OrderedDict()
        self._kept = 0
        self._lock = threading.Lock()  # the block cache is shared by a service's concurrent queries
        n = len(self)
        heads = np.repeat(np.arange(n), np.diff(self.adj.indptr))
        strength = np.bincount(heads, weights=self.adj.data, minlength=n).astype(np.float64)
        self.inv = np.divide(1.0, strength, out=np.zeros_like(strength), where=strength > 0)

    def __len__(self) -> int:
        return int(self.adj.shape[0])

    def step(self, x: np.ndarray) -> np.ndarray:
        """P^T x for one vector (n,) or a batch (n, B); the adjacency is symmetric."""
        scaled = x * (self.inv if x.ndim == 1 else self.inv[:, None])
        out: np.ndarray = self.adj @ scaled  # A symmetric: (D^-1 A)^T x = A D^-1 x
        return out

    def rows(self, rows: np.ndarray, key: int | None = None) -> sp.csr_matrix:
        """The adjacency rows of `rows` (all columns); kept for reuse under `key` (a community id)."""
        if key is None:
            return self.adj[rows]
        with self._lock:  # one build per key; a lookup never races an eviction
            hit = self._blocks.get(key)
            if hit is None:
                hit = self._blocks[key] = self.adj[rows]
                self._kept += hit.nnz
                while self._kept > BLOCK_CACHE_NNZ and len(self._blocks) > 1:
                    self._kept -= self._blocks.popitem(last=False)[1].nnz
            else:
                self._blocks.move_to_end(key)
            return hit


class Restricted:
    """The walk on the subgraph induced by disjoint row sets (strengths counted inside it).

    Vectors are over `rows` (the parts' rows in order), so a step costs the parts' adjacency
    entries, not the database size. Equal to slicing the adjacency to the subgraph, without
    building it: each community's rows are reused across queries.
    """

    def __init__(self, n: int, parts: list[tuple[np.ndarray, sp.csr_matrix]]) -> None:
        self.mats = [a for _, a in parts]
        self.rows = np.concatenate([r for r, _ in parts]).astype(np.int64)
        self._z = np.zeros(n)  # a full-length work vector, non-zero on `rows` only
        self._z[self.rows] = 1.0
        strength = np.concatenate([a @ self._z for a in self.mats])
        self.inv = np.divide(1.0, strength, out=np.zeros_like(strength), where=strength > 0)

    def __len__(self) -> int:
        return int(self.rows.size)

    def step(self, x: np.ndarray) -> np.ndarray:
        """P^T x for one vector over `rows`."""
        self._z[self.rows] = x * self.inv
        return np.concatenate([a @ self._z for a in self.mats])


def personalized_pagerank(walk: "Walk | Restricted", seeds: np.ndarray, damping: float, iterations: int) -> np.ndarray:
    """GDS's personalized PageRank after `iterations` steps; seeds (n,) or (n, B), not normalised here."""
    base = (1.0 - damping) * np.asarray(seeds, np.float64)
    x = base.copy()
    for _ in range(iterations):
        x = base + damping * walk.step(x)
    return x


def closed_form(walk: Walk, seeds: np.ndarray, damping: float) -> np.ndarray:
    """The fixed point (1 - d)(I - d P^T)^{-1} s by a dense solve (small graphs: tests)."""
    n = len(walk)
    pt = walk.adj.toarray() * walk.inv[None, :]  # column u scaled by 1/strength(u)
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
        full = walk_of(scene, params.weighting)
        seeds, weights = seed_vector(cos, nq, params.seeds, params.seed_weights)
        walk: Walk | Restricted = full
        rows = np.arange(len(full), dtype=np.int64)
        if params.scope == "communities":
            walk = _restricted(scene, full, cos, nq, taken, max(k, params.pool))
            rows = walk.rows
        local = np.full(len(full), -1, np.int64)
        local[rows] = np.arange(rows.size)
        s = np.zeros(rows.size, np.float64)
        s[local[seeds]] = weights  # N(q) lies inside every scope
        x = personalized_pagerank(walk, s, params.damping, params.iterations)
        if params.per_degree:
            x = np.where(walk.inv > 0, x * walk.inv, x)
        x[taken[rows]] = 0.0  # excluded rows diffuse but are never returned
        for row in rank(x, cos, rows, scene.ids, params.mix, k):
            out.add(row, None)
            taken[row] = True
    if not strict and len(out.rows) < k:
        for row in cos.top(k - len(out.rows), scene.ids.__getitem__, np.flatnonzero(taken)).tolist():
            out.add(row, None, fallback=True)
    return out


def _restricted(scene: Scene, walk: Walk, cos: Cosines, nq: np.ndarray, excluded: np.ndarray,
                k: int) -> Restricted:
    """The walk inside N(q) and the communities hybrid's step 2a picks for k images."""
    growth = grow(scene.graph, cos, nq, excluded, k, strict=False, mode="hybrid")
    chosen = [s.target for s in growth.steps if s.kind == "community"]
    parts = []
    covered = np.zeros(len(walk), bool)
    for c in chosen:
        rows = scene.graph.block(c).rows
        parts.append((rows, walk.rows(rows, key=c)))
        covered[rows] = True
    extra = nq[~covered[nq]]  # neighbours of q in communities not chosen
    if extra.size:
        parts.append((extra, walk.rows(extra)))
    return Restricted(len(walk), parts)
