"""MemoryGraph: an in-memory GraphView built from row-index edges and a partition."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from cxrneo.errors import InputError, NotFoundError
from cxrneo.records import CommunityStats


class EdgeArrays(Protocol):
    """Anything with undirected edges as row-index arrays (cxrneo.graph.Edges fits)."""

    @property
    def src(self) -> np.ndarray: ...

    @property
    def dst(self) -> np.ndarray: ...


class MemoryGraph:
    """Adjacency in CSR form plus community statistics, all derived from the edges."""

    def __init__(
        self,
        ids: Sequence[str],
        indptr: np.ndarray,
        indices: np.ndarray,
        community: np.ndarray,
        stats: dict[int, CommunityStats],
        links: dict[int, dict[int, int]],
        total_edges: int,
    ) -> None:
        self._ids = np.asarray(list(ids), dtype=object)
        self._row = {i: r for r, i in enumerate(self._ids)}
        self._indptr = indptr
        self._indices = indices
        self._community = community
        self._stats = stats
        self._links = links
        self._total = total_edges
        order = np.argsort(community, kind="stable")
        cs, starts = np.unique(community[order], return_index=True)
        ends = [*starts[1:].tolist(), len(order)]
        self._member_rows: dict[int, np.ndarray] = {
            int(c): order[s:e] for c, s, e in zip(cs, starts, ends, strict=True)
        }

    @classmethod
    def build(cls, ids: Sequence[str], edges: EdgeArrays, community: Sequence[int] | np.ndarray) -> "MemoryGraph":
        """Graph over `ids` (row order) with undirected edges src-dst and one community per row."""
        n = len(ids)
        com = np.asarray(community, dtype=np.int64)
        src = np.asarray(edges.src, dtype=np.int64)
        dst = np.asarray(edges.dst, dtype=np.int64)
        if com.shape != (n,):
            raise InputError(f"{com.shape[0] if com.ndim else 0} community labels for {n} images")
        if len(set(ids)) != n:
            raise InputError("duplicate image ids")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise InputError("an edge refers to a row outside the image list")
        if (src == dst).any():
            raise InputError("self-loops are not edges of the image graph")
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        if np.unique(a * n + b).size != a.size:
            raise InputError("duplicate edges")
        heads = np.concatenate([a, b])
        tails = np.concatenate([b, a])
        order = np.lexsort((tails, heads))
        indices = tails[order]
        degree = np.bincount(heads, minlength=n)
        indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
        stats, links = _statistics(com, a, b, degree)
        return cls(ids, indptr, indices, com, stats, links, int(a.size))

    @classmethod
    def from_csr(
        cls, ids: Sequence[str], indptr: np.ndarray, indices: np.ndarray, community: np.ndarray
    ) -> "MemoryGraph":
        """Graph from a symmetric CSR adjacency (each undirected edge in both rows) and a partition."""
        n = len(ids)
        indptr = np.asarray(indptr, dtype=np.int64)
        com = np.asarray(community, dtype=np.int64)
        if indptr.shape != (n + 1,) or com.shape != (n,) or int(indptr[-1]) != len(indices):
            raise InputError(f"CSR arrays do not fit {n} images")
        if indices.size % 2:
            raise InputError("CSR adjacency is not symmetric (odd number of entries)")
        degree = np.diff(indptr)
        heads = np.repeat(np.arange(n, dtype=np.int64), degree)
        upper = heads < indices
        a, b = heads[upper], np.asarray(indices[upper], dtype=np.int64)
        if 2 * a.size != indices.size:
            raise InputError("CSR adjacency is not symmetric")
        stats, links = _statistics(com, a, b, degree)
        return cls(ids, indptr, indices, com, stats, links, int(a.size))

    @property
    def total_edges(self) -> int:
        return self._total

    @property
    def indptr(self) -> np.ndarray:
        """CSR row pointers over rows in `ids` order (neighbours of row r: indices[indptr[r]:indptr[r+1]])."""
        return self._indptr

    @property
    def indices(self) -> np.ndarray:
        """CSR neighbour rows, ascending within each row."""
        return self._indices

    def community_stats(self) -> Mapping[int, CommunityStats]:
        return self._stats

    def between(self, c: int) -> Mapping[int, int]:
        return self._links.get(c, {})

    def _r(self, image_id: str) -> int:
        try:
            return self._row[image_id]
        except KeyError:
            raise NotFoundError(f"no image {image_id!r} in the graph") from None

    def community_of(self, image_id: str) -> int:
        return int(self._community[self._r(image_id)])

    @property
    def ids(self) -> list[str]:
        """Image ids in row order (the rows of indptr, indices and community)."""
        found: list[str] = self._ids.tolist()
        return found

    @property
    def community(self) -> np.ndarray:
        """Community of each row."""
        return self._community

    def member_rows(self, c: int) -> np.ndarray:
        """Rows of community c, ascending."""
        return self._member_rows.get(c, np.empty(0, np.int64))

    def members(self, c: int) -> Sequence[str]:
        found: list[str] = self._ids[self.member_rows(c)].tolist()
        return found

    def neighbours(self, image_id: str) -> Sequence[str]:
        r = self._r(image_id)
        found: list[str] = self._ids[self._indices[self._indptr[r] : self._indptr[r + 1]]].tolist()
        return found


def _statistics(
    com: np.ndarray, a: np.ndarray, b: np.ndarray, degree: np.ndarray
) -> tuple[dict[int, CommunityStats], dict[int, dict[int, int]]]:
    """n, l, d per community and the edge count between each pair of communities."""
    cs = np.unique(com)
    idx = np.searchsorted(cs, com)
    n_c = np.bincount(idx, minlength=cs.size)
    d_c = np.bincount(idx, weights=degree, minlength=cs.size).astype(np.int64)
    inside = com[a] == com[b]
    l_c = np.bincount(idx[a[inside]], minlength=cs.size)
    stats = {
        int(c): CommunityStats(id=int(c), n=int(n), l=int(l), d=int(d))
        for c, n, l, d in zip(cs, n_c, l_c, d_c, strict=True)  # noqa: E741
    }
    links: dict[int, dict[int, int]] = defaultdict(dict)
    ia, ib = idx[a[~inside]], idx[b[~inside]]
    if ia.size:  # one int64 key per unordered pair of community indices: a 1-d sort, not a row sort
        key = np.minimum(ia, ib).astype(np.int64) * cs.size + np.maximum(ia, ib)
        uniq, counts = np.unique(key, return_counts=True)
        xs, ys = cs[uniq // cs.size].tolist(), cs[uniq % cs.size].tolist()
        for x, y, cnt in zip(xs, ys, counts.tolist(), strict=True):
            links[x][y] = cnt
            links[y][x] = cnt
    return stats, dict(links)
