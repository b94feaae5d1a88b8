"""A row-indexed snapshot of a GraphView with cached per-community adjacency blocks."""

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError
from cxrneo.records import CacheUse, CommunityStats
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.view import GraphView


@dataclass(frozen=True)
class Block:
    """One community's members (rows) with their adjacency, split into inside and outside."""

    community: int
    rows: np.ndarray  # int64, member rows, ascending
    inner_ptr: np.ndarray  # CSR over members: local indices of neighbours inside the community
    inner_idx: np.ndarray
    outer_owner: np.ndarray  # local index of the member owning each outside neighbour entry
    outer_rows: np.ndarray  # rows of neighbours in other communities
    degree: np.ndarray  # full degree of each member in the database graph
    internal_edges: int


class IndexedGraph:
    """Rows, communities and statistics of a GraphView; blocks are built on first use."""

    def __init__(self, view: GraphView, ids: Sequence[str], cache_nodes: int = 5_000_000) -> None:
        self.view = view
        self.ids = list(ids)
        self.row = {i: r for r, i in enumerate(self.ids)}
        self.total_edges = int(view.total_edges)
        self.stats: Mapping[int, CommunityStats] = view.community_stats()
        # A MemoryGraph in the same row order gives blocks straight from its CSR arrays.
        self._csr = view if isinstance(view, MemoryGraph) and view.ids == self.ids else None
        if self._csr is not None:
            self.community = self._csr.community
        else:
            self.community = np.fromiter((view.community_of(i) for i in self.ids), np.int64, len(self.ids))
        unknown = set(np.unique(self.community).tolist()) - set(self.stats)
        if unknown:
            raise InputError(f"images belong to communities without statistics: {sorted(unknown)[:5]}")
        self._blocks: OrderedDict[int, Block] = OrderedDict()
        self._cached = 0
        self._cap = cache_nodes
        self._lock = threading.Lock()  # the block cache is shared by concurrent queries
        self._building: dict[int, threading.Lock] = {}
        self.hits = self.misses = 0

    def between(self, c: int) -> Mapping[int, int]:
        return self.view.between(c)

    def block(self, c: int) -> Block:
        """The adjacency block of community c (LRU-cached up to `cache_nodes` members)."""
        with self._lock:
            hit = self._blocks.get(c)
            if hit is not None:
                self._blocks.move_to_end(c)
                self.hits += 1
                return hit
            self.misses += 1
            building = self._building.setdefault(c, threading.Lock())
        with building:  # one thread builds a block; the others wait for it instead of building it again
            with self._lock:
                hit = self._blocks.get(c)
            if hit is not None:
                return hit
            blk = self._build(c)
            with self._lock:
                self._blocks[c] = blk
                self._cached += blk.rows.size
                while self._cached > self._cap and len(self._blocks) > 1:
                    _, old = self._blocks.popitem(last=False)
                    self._cached -= old.rows.size
                self._building.pop(c, None)
        return blk

    def use(self) -> CacheUse:
        """The block cache: member images held against its bound, blocks, hits and misses so far."""
        with self._lock:
            return CacheUse("images", self._cached, self._cap, len(self._blocks), self.hits, self.misses)

    def links_from(self, sources: Sequence[int], blk: Block) -> np.ndarray:
        """For each member of `blk`, how many edges join it to the rows `sources` (rows of other
        communities): from the sources' adjacency when the CSR is at hand (a few rows), else from
        the block's outside entries."""
        if not len(sources):
            return np.zeros(blk.rows.size, np.int64)
        if self._csr is None:
            mark = np.zeros(len(self.ids), bool)
            mark[np.asarray(sources, np.int64)] = True
            return np.bincount(blk.outer_owner[mark[blk.outer_rows]], minlength=blk.rows.size)
        indptr, indices = self._csr.indptr, self._csr.indices
        nbrs = np.concatenate([indices[indptr[s] : indptr[s + 1]] for s in sources])
        nbrs = nbrs[self.community[nbrs] == blk.community]
        return np.bincount(np.searchsorted(blk.rows, nbrs), minlength=blk.rows.size).astype(np.int64)

    def prefetch(self, min_size: int = 1_000) -> int:
        """Build the blocks of the largest communities now (those of `min_size` members or more,
        largest first, while they fit the cache); returns how many were built."""
        sizes = sorted(((s.n, c) for c, s in self.stats.items() if s.n >= min_size), reverse=True)
        done, total = 0, 0
        for n, c in sizes:
            if total + n > self._cap:
                break
            self.block(c)
            done, total = done + 1, total + n
        return done

    def _build(self, c: int) -> Block:
        if self._csr is not None:
            return _csr_block(self._csr, c)
        members = self.view.members(c)
        rows = np.array(sorted(self._rows(members)), dtype=np.int64)
        if rows.size and (self.community[rows] != c).any():
            raise InputError(f"community {c} lists members assigned to other communities")
        local = {int(r): k for k, r in enumerate(rows)}
        inner_ptr = [0]
        inner_idx: list[int] = []
        owner: list[int] = []
        outer: list[int] = []
        degree = np.zeros(rows.size, np.int64)
        for k, r in enumerate(rows):
            nbrs = self._rows(self.view.neighbours(self.ids[r]))
            degree[k] = len(nbrs)
            for m in nbrs:
                j = local.get(m)
                if j is None:
                    owner.append(k)
                    outer.append(m)
                else:
                    inner_idx.append(j)
            inner_ptr.append(len(inner_idx))
        return Block(
            community=c,
            rows=rows,
            inner_ptr=np.array(inner_ptr, np.int64),
            inner_idx=np.array(inner_idx, np.int64),
            outer_owner=np.array(owner, np.int64),
            outer_rows=np.array(outer, np.int64),
            degree=degree,
            internal_edges=len(inner_idx) // 2,
        )

    def _rows(self, ids: Sequence[str]) -> list[int]:
        try:
            return [self.row[i] for i in ids]
        except KeyError as e:
            raise InputError(f"the graph refers to image {e.args[0]!r}, which has no code") from None


def _csr_block(g: MemoryGraph, c: int) -> Block:
    """The block of community c from CSR arrays, vectorised (same content as the generic build)."""
    rows = g.member_rows(c)
    indptr, indices = g.indptr, g.indices
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    total = int(lengths.sum())
    owner = np.repeat(np.arange(rows.size, dtype=np.int64), lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    nbr = np.asarray(indices[np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, lengths)], np.int64)
    local = np.full(len(indptr) - 1, -1, np.int64)
    local[rows] = np.arange(rows.size)
    loc = local[nbr]
    inside = loc >= 0
    inner_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner[inside], minlength=rows.size))]).astype(np.int64)
    return Block(
        community=c,
        rows=rows.astype(np.int64),
        inner_ptr=inner_ptr,
        inner_idx=loc[inside],
        outer_owner=owner[~inside],
        outer_rows=nbr[~inside],
        degree=lengths.astype(np.int64),
        internal_edges=int(inside.sum()) // 2,
    )
