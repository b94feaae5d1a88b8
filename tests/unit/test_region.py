"""Algorithm 2 step by step: every gain is Q(after) − Q(before) from scratch, and the arg-max."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import q_from_scratch

from cxrneo.graph import Edges
from cxrneo.retrieval import region
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.indexed import IndexedGraph
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.modularity import join_gains
from cxrneo.retrieval.region import grow
from cxrneo.retrieval.scene import Growth, Step

Q = -1  # the query node in the augmented graph




def indexed(n: int, edges: set[tuple[int, int]], part: list[int]) -> IndexedGraph:
    pairs = sorted(edges)
    e = Edges(
        np.array([a for a, _ in pairs], np.int64),
        np.array([b for _, b in pairs], np.int64),
        np.ones(len(pairs), np.float32),
    )
    ids = [f"i{v:02d}" for v in range(n)]
    return IndexedGraph(MemoryGraph.build(ids, e, part), ids)


def test_hand_example() -> None:
    # a=0, b=1, c=2 form a triangle (community 0); d=3 - e=4 (community 1); c - d joins them.
    # q is adjacent to a and b; s(q,b) = 0.9 > s(q,a) = 0.8. L = 5, L' = 7.
    # Step a: only community 0 touches R = {q}: ΔQ = 197/1176 (see test_modularity).
    # Step b, |E_s| = 5, R = {q} (n=1, l=0, d=2):
    #   a, b: e=1, d=3: ΔQ = 3/100 each (tie -> b, the higher cosine); c: e=0, d=2: -8/100.
    #   R = {q,b} (n=2, l=1, d=5): a: e=2 -> λ = 1 + 6/6 = 2, q = 3/5 - (8/10)^2 = -0.04
    #     -> -0.08 - (2 * (1/5 - 1/4)) - (-(3/10)^2) = -0.08 + 0.1 + 0.09 = 0.11
    #   R = {q,b,a} (n=3, l=3, d=8): c: e=2, d=2 -> λ = 1 + 10/12, q = 5/5 - (10/10)^2 = 0
    #     -> 0 - (2 * (3/5 - 64/100)) + (2/10)^2 = 0.08 + 0.04 = 0.12
    # Step a again: R (n=4, l=5, d=11) and community 1 (n=2, l=1, d=3), e = 1, L' = 7:
    #   merged: n=6, l=7, d=14 -> q = 1 - 1 = 0; R: 11/6 * 19/196 = 209/1176;
    #   c1: 2 * (1/7 - (3/14)^2) = 228/1176 -> ΔQ = -437/1176 (strict mode stops here).
    # Step b, |E_s| = 7, R: n=4, l=5, d=2*5+1 = 11:
    #   d (e=1, d=2): 1.6 * (6/7 - (13/14)^2) - 209/1176 + (2/14)^2 = -194.6/1176
    #   e (e=0, d=1): 1.5 * (5/7 - (12/14)^2) - 209/1176 + (1/14)^2 = -239/1176 -> d first
    #   then e (e=1, d=1), R: n=5, l=6, d=13: (22/15) * 0 - 1.6 * (-1/196) + 1/196 = 2.6/196
    g = indexed(5, {(0, 1), (0, 2), (1, 2), (3, 4), (2, 3)}, [0, 0, 0, 1, 1])
    sims = np.array([0.8, 0.9, 0.3, 0.2, 0.1], np.float32)
    nq = np.array([0, 1])
    none = np.zeros(5, bool)
    out = grow(g, Cosines.of(sims), nq, none, k=5)
    assert out.rows == [1, 0, 2, 3, 4]
    want = [0.03, 0.11, 0.12, -194.6 / 1176, 2.6 / 196]
    assert np.allclose(out.gains, want, atol=1e-14, rtol=0)
    kinds = [(s.kind, s.target, round(s.gain, 12)) for s in out.steps if s.kind == "community"]
    assert kinds == [("community", 0, round(197 / 1176, 12)), ("community", 1, round(-437 / 1176, 12))]
    strict = grow(g, Cosines.of(sims), nq, none, k=5, strict=True)
    assert strict.rows == [1, 0, 2] and strict.stopped
    hybrid = grow(g, Cosines.of(sims), nq, none, k=5, mode="hybrid")
    assert hybrid.rows == [1, 0, 2, 3, 4]  # by cosine inside each chosen community
    assert np.allclose(hybrid.gains[:3], [197 / 1176] * 3, atol=1e-14, rtol=0)


cases = st.integers(3, 8).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1])),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.sets(st.integers(0, n - 1), min_size=1),  # N(q)
        st.sets(st.integers(0, n - 1), max_size=2),  # excluded
        st.lists(st.sampled_from([0.1, 0.5, 0.9]), min_size=n, max_size=n),  # cosines, with ties
        st.integers(1, n),
        st.booleans(),
        st.sampled_from(["community", "hybrid"]),
    )
)


@settings(max_examples=80, deadline=None)
@given(cases)
def test_every_step_is_exact_and_best(case: tuple) -> None:  # type: ignore[type-arg]
    n, db_edges, part, nq, excl, cos, k, strict, mode = case
    g = indexed(n, db_edges, part)
    sims = np.array(cos, np.float32)
    excluded = np.zeros(n, bool)
    excluded[list(excl)] = True
    out = grow(g, Cosines.of(sims), np.array(sorted(nq)), excluded, k=k, strict=strict, mode=mode)
    aug = db_edges | {(Q, j) for j in nq}
    r: set[int] = {Q}
    used: set[int] = set()
    current: set[int] = set()
    for step in out.steps:
        if step.kind == "community":
            r = {Q} | {v for v in out.rows if part[v] in used}  # R = q and the rows taken so far
            base = {v: ("R" if v in r else part[v]) for v in [Q, *range(n)]}

            def merge(c: int, r: set[int] = r, base: dict[int, object] = base) -> Fraction:
                after = {v: ("R" if v in r or lab == c else lab) for v, lab in base.items()}
                return q_from_scratch(aug, after) - q_from_scratch(aug, base)

            touching = {part[b] for a, b in aug if a in r and b not in r} | {
                part[a] for a, b in aug if b in r and a not in r and a != Q
            }
            candidates = {c: merge(c) for c in touching - used}
            best = max(candidates.values())
            assert abs(step.gain - float(candidates[step.target])) < 1e-12
            assert candidates[step.target] == best and step.target == min(
                c for c, v in candidates.items() if v == best
            )
            used.add(step.target)
            current = {v for v in range(n) if part[v] == step.target}
            g_s = r | current
            sub = {(a, b) for a, b in aug if a in g_s and b in g_s}
        else:
            base = {v: ("R" if v in r else v) for v in g_s}
            options = {
                j: q_from_scratch(sub, {**base, j: "R"}) - q_from_scratch(sub, base)
                for j in current - r - excl
            }
            best = max(options.values())
            assert abs(step.gain - float(options[step.target])) < 1e-12
            ties = [j for j, v in options.items() if v == best]
            assert step.target == min(ties, key=lambda j: (-cos[j], f"i{j:02d}"))
            r.add(step.target)
    if mode == "community":
        assert out.rows == [s.target for s in out.steps if s.kind == "node"]
    # why growth ended: k rows, a strict stop on a best gain <= 0, or nothing left to grow into
    left = current - set(out.rows) - excl  # members of the current community not yet in R
    r_end = {Q} | set(out.rows)
    base_end = {v: ("R" if v in r_end else part[v]) for v in [Q, *range(n)]}
    touching_end = {part[b] for a, b in aug if a in r_end and b not in r_end} | {
        part[a] for a, b in aug if b in r_end and a not in r_end
    }
    if len(out.rows) == k:
        assert not out.stopped
    elif out.stopped:
        assert strict
        if left and mode == "community":  # stopped inside step 2b
            base = {v: ("R" if v in r else v) for v in g_s}
            best_join = max(q_from_scratch(sub, {**base, j: "R"}) - q_from_scratch(sub, base) for j in left)
            assert float(best_join) <= 1e-12
        else:  # stopped at step 2a
            best_merge = max(
                q_from_scratch(aug, {v: ("R" if lab == "R" or lab == c else lab) for v, lab in base_end.items()})
                - q_from_scratch(aug, base_end)
                for c in touching_end - used
            )
            assert float(best_merge) <= 1e-12
    else:  # growth ran out: the current community is used up and no unused community touches R
        assert not left and not touching_end - used
    assert len(out.rows) <= k and not set(out.rows) & excl
    assert len(set(out.rows)) == len(out.rows)


def _every_member(self: "region._Ctx", k: int, strict: bool, out: Growth) -> bool:
    """Step b as Eq. 14-15 state it: every available member's gain at every step (the reference)."""
    r = self.r
    while len(out.rows) < k and self.left:
        gains = join_gains(r.n, r.l, self.d_r, self.e_j, self.d_s, self.total_s)
        gains[~self.avail] = -np.inf
        best = gains.max()
        if strict and best <= 0:
            out.stopped = True
            return False
        j = self._pick(np.flatnonzero(gains >= best - region.tie_tolerance(best, self.total_s)))
        out.steps.append(Step("node", int(self.blk.rows[j]), float(gains[j])))
        out.add(int(self.blk.rows[j]), float(gains[j]))
        self._join(j)
    return not self.left


def test_the_frontier_grows_as_every_member_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step b computes gains for the members with an edge to R only while no lone member can tie:
    the same steps, gains and rows as computing every member's gain at every step."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(4, 40))
        pairs = rng.integers(0, n, (int(n * rng.uniform(0.3, 8)), 2)).tolist()
        db_edges = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
        g = indexed(n, db_edges, rng.integers(0, int(rng.integers(1, 4)), n).tolist())
        nq = np.flatnonzero(rng.random(n) < rng.uniform(0.02, 0.5))
        args = (g, Cosines.of(rng.choice([0.1, 0.5], n)), nq if nq.size else np.array([0]), rng.random(n) < 0.1)
        for strict in (False, True):
            fast = grow(*args, k=n, strict=strict)
            with monkeypatch.context() as m:
                m.setattr(region._Ctx, "region", _every_member)
                full = grow(*args, k=n, strict=strict)
            assert (fast.rows, fast.gains, fast.steps, fast.stopped) == (full.rows, full.gains, full.steps, full.stopped)
