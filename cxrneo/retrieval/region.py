"""Algorithm 2 (docs/method.md section 5): closest community (step 2a) and region growing (step 2b); pure.

Decisions beyond the paper's text, all covered by tests:

* Excluded rows (the query itself, its patient's images) stay in every statistic (degrees,
  L, n/l/d of their community, N(q), G_s) but never join R; a community is used up when
  all its other members joined, and R's edges to unused communities are then
  e(c, c') from LINKED minus the excluded members' edges.
* Strict mode stops at the first best gain <= 0, in step 2a as well as in step 2b.
* Ties: gains equal up to float rounding (relative 1e-12) tie; nodes then go by higher
  cosine to q, then smaller image id; communities by smaller community id.
* Hybrid: each hit carries the step-2a gain of its community.
* When no unused community touches R, growth ends; the engine fills the rest by plain
  cosine ranking (flagged fallback) unless strict.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.indexed import Block, IndexedGraph
from cxrneo.retrieval.modularity import join_gains, merge_gain
from cxrneo.retrieval.scene import Growth, Step

Mode = Literal["community", "hybrid"]
TIE_RTOL = 1e-12  # relative: gains equal up to float rounding tie
LONE_MARGIN = 1e-12  # far above the float rounding of a gain (terms of size <= 2)


@dataclass
class _Region:
    """R in the augmented graph: n nodes (q included), l internal edges, d degree sum."""

    n: int
    l: int  # noqa: E741
    d: int


def grow(
    g: IndexedGraph,
    cos: Cosines,
    nq: np.ndarray,
    excluded: np.ndarray,
    k: int,
    strict: bool = False,
    mode: Mode = "community",
) -> Growth:
    """Grow R = {q} until k database rows joined, no community touches R, or (strict) no gain.

    cos: cosines of q to every row; nq: rows of N(q) (non-empty); excluded: bool per row,
    rows that stay in every statistic but never join R.
    """
    n = len(g.ids)
    is_nbr = np.zeros(n, bool)
    is_nbr[nq] = True
    in_r = np.zeros(n, bool)
    total = g.total_edges + int(nq.size)  # L' = L + d_q
    cs, counts = np.unique(g.community[nq], return_counts=True)
    e_q = dict(zip(cs.tolist(), counts.tolist(), strict=True))
    e_rc = dict(e_q)  # e(R, c) for every unused community with an edge to R
    used: set[int] = set()
    r = _Region(n=1, l=0, d=int(nq.size))
    out = Growth()
    while len(out.rows) < k and e_rc:
        c, gain = _closest(g, r, e_rc, e_q, total)
        if strict and gain <= 0:
            out.stopped = True
            break
        out.steps.append(Step("community", c, gain))
        del e_rc[c]
        used.add(c)
        blk = g.block(c)
        ctx = _Ctx(g, blk, r, cos, is_nbr, in_r, excluded, out.rows)
        exhausted = ctx.hybrid(k, gain, out) if mode == "hybrid" else ctx.region(k, strict, out)
        if out.stopped:
            break
        if exhausted:
            _account(g, blk, excluded, used, e_rc)
    return out


def hybrid_communities(g: IndexedGraph, cos: Cosines, nq: np.ndarray, excluded: np.ndarray, k: int) -> list[int]:
    """The communities hybrid's step 2a merges for k rows (non-strict), in order: those of
    `grow(..., mode="hybrid")`. When the first holds k rows that may join, step 2b's choice of members
    cannot change that, and is skipped."""
    cs, counts = np.unique(g.community[nq], return_counts=True)
    e_q = dict(zip(cs.tolist(), counts.tolist(), strict=True))
    c, _ = _closest(g, _Region(n=1, l=0, d=int(nq.size)), dict(e_q), e_q, g.total_edges + int(nq.size))
    if int((~excluded[g.block(c).rows]).sum()) >= k:
        return [c]
    return [s.target for s in grow(g, cos, nq, excluded, k, mode="hybrid").steps if s.kind == "community"]


def _closest(
    g: IndexedGraph, r: _Region, e_rc: dict[int, int], e_q: dict[int, int], total: int
) -> tuple[int, float]:
    """Step 2a: the unused community with the largest merge gain (ties: smaller community id)."""
    gains = {}
    for c in e_rc:
        s = g.stats[c]
        gains[c] = merge_gain((r.n, r.l, r.d), (s.n, s.l, s.d + e_q.get(c, 0)), e_rc[c], total)
    best = max(gains.values())
    c = min(c for c, v in gains.items() if v >= best - tie_tolerance(best, total))
    return c, gains[c]


def tie_tolerance(best: float, total: int) -> float:
    """Gains this close to the best are equal up to float rounding, so they tie."""
    return TIE_RTOL * max(abs(best), 1.0 / total)


def _account(g: IndexedGraph, blk: Block, excluded: np.ndarray, used: set[int], e_rc: dict[int, int]) -> None:
    """After c is used up, R gains its joined members' edges to every unused community."""
    for c2, cnt in g.between(blk.community).items():
        if c2 not in used:
            e_rc[c2] = e_rc.get(c2, 0) + int(cnt)
    ex = excluded[blk.rows]
    if ex.any():  # excluded members never joined R: their outside edges are not R's
        for c2 in g.community[blk.outer_rows[ex[blk.outer_owner]]].tolist():
            if c2 not in used:
                e_rc[c2] -= 1
    for c2 in [c2 for c2, e in e_rc.items() if e <= 0]:
        del e_rc[c2]


class _Ctx:
    """Step 2b inside G_s = R ∪ c: R one community, c's members singletons."""

    def __init__(
        self,
        g: IndexedGraph,
        blk: Block,
        r: _Region,
        cos: Cosines,
        is_nbr: np.ndarray,
        in_r: np.ndarray,
        excluded: np.ndarray,
        r_rows: list[int],
    ) -> None:
        self.g, self.blk, self.r, self.in_r, self.is_nbr = g, blk, r, in_r, is_nbr
        rows = blk.rows
        outer_in_r = g.links_from(r_rows, blk)  # R's rows are the rows joined so far (q aside)
        self.e_j = is_nbr[rows].astype(np.int64) + outer_in_r  # e(j, R), q counted
        self.d_s = np.diff(blk.inner_ptr) + self.e_j  # degrees inside G_s
        e_rc = int(self.e_j.sum())
        self.total_s = r.l + e_rc + blk.internal_edges  # |E_s|
        self.d_r = 2 * r.l + e_rc  # R's degree sum inside G_s
        self.avail = ~excluded[rows]
        self.left = int(self.avail.sum())  # members that may still join
        self.cos = cos  # exact values only for the rows a decision compares

    def region(self, k: int, strict: bool, out: Growth) -> bool:
        """Add the arg-max ΔQ_{j→R} node until k rows, c used up, or (strict) a gain <= 0.

        Gains are computed for the members with an edge to R (the frontier) only, unless a member
        without one might reach the best of them: such a member's gain falls as its degree grows
        (d ΔQ/d d_j = (d_j − λ_{j→R}(d_R + d_j)) / 2|E_s|² <= 0), so d_j = 0 bounds them all."""
        r = self.r
        front = np.flatnonzero(self.e_j > 0)
        while len(out.rows) < k and self.left:
            front = front[self.avail[front]]
            cand = front
            gains = join_gains(r.n, r.l, self.d_r, self.e_j[cand], self.d_s[cand], self.total_s)
            best = float(gains.max()) if gains.size else -np.inf
            lone = float(join_gains(r.n, r.l, self.d_r, np.zeros(1), np.zeros(1), self.total_s)[0])
            if best - tie_tolerance(best, self.total_s) <= lone + LONE_MARGIN:  # a lone member may tie: all
                cand = np.flatnonzero(self.avail)
                gains = join_gains(r.n, r.l, self.d_r, self.e_j[cand], self.d_s[cand], self.total_s)
                best = float(gains.max())
            if strict and best <= 0:
                out.stopped = True
                return False
            ties = np.flatnonzero(gains >= best - tie_tolerance(best, self.total_s))
            pick = ties[0] if ties.size == 1 else ties[np.searchsorted(cand[ties], self._pick(cand[ties]))]
            j, gain = int(cand[pick]), float(gains[pick])
            out.steps.append(Step("node", int(self.blk.rows[j]), gain))
            out.add(int(self.blk.rows[j]), gain)
            self._join(j)
            front = np.union1d(front, self.blk.inner_idx[self.blk.inner_ptr[j] : self.blk.inner_ptr[j + 1]])
        return not self.left

    def hybrid(self, k: int, gain: float, out: Growth) -> bool:
        """Take c's members by decreasing cosine to q; each carries c's step-2a gain."""
        ids, rows = self.g.ids, self.blk.rows
        best = self.cos.top(k - len(out.rows), ids.__getitem__, among=rows[self.avail])
        for j in np.searchsorted(rows, best).tolist():
            out.add(int(rows[j]), gain)
            self._join(j)
        return not self.left

    def _pick(self, ties: np.ndarray) -> int:
        """Ties: higher cosine to q, then smaller image id."""
        if ties.size == 1:
            return int(ties[0])
        rows = self.blk.rows
        best = self.cos.top(1, self.g.ids.__getitem__, among=rows[ties])
        return int(np.searchsorted(rows, best[0]))

    def _join(self, j: int) -> None:
        """Move member j into R, updating R's statistics and every e(m, R)."""
        r, blk = self.r, self.blk
        row = int(blk.rows[j])
        self.avail[j] = False
        self.left -= 1
        r.n += 1
        r.l += int(self.e_j[j])
        r.d += int(blk.degree[j]) + int(self.is_nbr[row])
        self.d_r += int(self.d_s[j])
        self.in_r[row] = True
        self.e_j[blk.inner_idx[blk.inner_ptr[j] : blk.inner_ptr[j + 1]]] += 1
