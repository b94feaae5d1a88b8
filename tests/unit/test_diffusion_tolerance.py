"""Diffusion's answers against a plain float64 reference, within the documented tolerance (docs/diffusion.md).

The method computes its scores in float32 on cached, reordered community subgraphs. The reference
below is written for reading, not speed: dense float64 matrices, exact edge cosines, the iteration
as GDS defines it, every row ranked. What is checked (eps and tau as documented, computed here
from the formula, never from this machine's rounding):

* every score is within relative eps of the reference's, and positive exactly where it is;
* the answer is the reference's except where reference scores lie within 2 tau of each other:
  each returned row is at least the next one's reference score minus 2 tau, no row left out
  beats the last returned one by more than 2 tau, and the fallback rows are the exact cosine
  order of the rest.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from cxrneo.graph import Edges, normalise
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.diffusion import DiffusionParams, diffuse, diffused, precision, restricted, subgraph, walk_of
from cxrneo.retrieval.region import grow, hybrid_communities

UNIT = 2.0**-24  # float32's unit roundoff


def eps_of(iterations: int, max_entries: int) -> float:
    """The documented relative bound on a score: (t(m + 8) + 3) u / (1 - (t(m + 8) + 3) u)."""
    n = (iterations * (max_entries + 8) + 3) * UNIT
    return n / (1 - n)


@dataclass
class World:
    retriever: Retriever
    codes: np.ndarray  # float32 unit codes
    pairs: list[tuple[int, int]]
    community: np.ndarray


def build(codes: np.ndarray, pairs: list[tuple[int, int]], community: list[int] | np.ndarray, t: float) -> World:
    ids = [f"r{i:04d}" for i in range(codes.shape[0])]
    src = np.array([min(a, b) for a, b in pairs], np.int64)
    dst = np.array([max(a, b) for a, b in pairs], np.int64)
    edges = Edges(src, dst, np.einsum("ij,ij->i", codes[src], codes[dst]).astype(np.float32))
    com = np.asarray(community, np.int64)
    return World(Retriever(MemoryGraph.build(ids, edges, com), codes, ids, t), codes, pairs, com)


def positive_codes(n: int, rng: np.random.Generator, spread: float = 0.5) -> np.ndarray:
    """Unit codes in the positive orthant: every cosine lies in (0, 1], so any pair may be an edge."""
    centre = np.ones(16)
    return normalise(np.abs(centre + spread * 4 * rng.standard_normal((n, 16)))).astype(np.float32)


def giant_world() -> World:
    """A giant component with a hub of degree 150, dangling (edgeless) rows, a 15-row chain off the
    component, a small separate component, and communities of very different sizes."""
    rng = np.random.default_rng(7)
    n = 420
    codes = positive_codes(n, rng)
    pairs = {(a, b) for a in range(300) for b in range(a + 1, 300) if rng.random() < 0.03}
    pairs |= {(0, b) for b in rng.choice(np.arange(1, 300), 150, replace=False).tolist()}  # the hub
    pairs |= {(299 + i, 300 + i) for i in range(15)}  # a chain 299-300-...-314
    pairs |= {(a, b) for a in range(330, 345) for b in range(a + 1, 345) if rng.random() < 0.3}  # another component
    # rows 315..329 and 345..419 have no edge at all
    community = np.concatenate([np.repeat([0, 1, 2], 100), np.full(15, 3), np.arange(4, 4 + 15), np.full(15, 19),
                                np.arange(20, 20 + 75)])
    cos = codes @ codes.T
    t = float(np.quantile(cos[np.triu_indices(n, 1)], 0.985))  # N(q): a handful of rows
    return build(codes, sorted(pairs), community, t)


def chain_of_hubs_world() -> World:
    """A chain whose every link also holds 99 leaves: a row 20 links away gets about 100^-20 of the mass,
    below float32's normal range (1.2e-38), so the scores must be computed in float64."""
    rng = np.random.default_rng(3)
    links, leaves = 22, 99
    n = links + links * leaves
    codes = positive_codes(n, rng)
    pairs = [(i, i + 1) for i in range(links - 1)]
    pairs += [(i, links + i * leaves + j) for i in range(links) for j in range(leaves)]
    community = [0] * n
    return build(codes, pairs, community, 0.9999)  # N(q) of a stored image: itself


def reference(w: World, q: np.ndarray, blocked: np.ndarray, k: int, strict: bool, p: DiffusionParams) -> dict[str, Any]:
    """The method, plainly in float64: N(q), seeds, the scope's subgraph, T steps, the final ranking."""
    r = w.retriever
    n = len(r.ids)
    cos = Cosines.exact_all(w.codes, q)
    c = cos.exact(np.arange(n))
    nq = np.flatnonzero(c >= r.threshold)
    excluded = np.zeros(n, bool)
    excluded[blocked] = True
    out: dict[str, Any] = {"rows": [], "fallback": [], "y": {}, "f": {}, "max_entries": 0}
    if nq.size:
        seeds = nq
        if p.seeds is not None and seeds.size > p.seeds:
            seeds = np.sort(seeds[np.argsort(-c[seeds], kind="stable")[: p.seeds]])
        weight = c[seeds] if p.seed_weights == "cosine" else np.ones(seeds.size)
        if p.scope == "graph":
            keep = np.arange(n)
        else:
            growth = grow(r.graph, cos, nq, excluded, max(k, p.pool), strict=False, mode="hybrid")
            chosen = [s.target for s in growth.steps if s.kind == "community"]
            keep = np.union1d(nq, np.flatnonzero(np.isin(w.community, chosen)))
        where = {int(row): i for i, row in enumerate(keep)}
        a = np.zeros((keep.size, keep.size))
        for u, v in w.pairs:
            if u in where and v in where:
                weight_uv = 1.0 if p.weighting == "unweighted" else float(w.codes[u].astype(np.float64) @ w.codes[v])
                a[where[u], where[v]] = a[where[v], where[u]] = weight_uv
        strength = a.sum(axis=1)
        inv = np.array([1.0 / s if s > 0 else 0.0 for s in strength])
        s = np.zeros(keep.size)
        for row, wt in zip(seeds.tolist(), weight.tolist(), strict=True):
            s[where[row]] = wt / weight.sum()
        d = p.damping
        x = (1 - d) * s
        for _ in range(p.iterations):
            x = (1 - d) * s + d * (a @ (x * inv))
        y = np.where(strength > 0, x / np.where(strength > 0, strength, 1.0), x) if p.per_degree else x
        y[excluded[keep]] = 0.0
        out["y"] = {int(row): float(v) for row, v in zip(keep, y, strict=True)}
        out["max_entries"] = int((a > 0).sum(axis=1).max())
        live = [int(row) for row, v in zip(keep, y, strict=True) if v > 0]
        top = max(y)
        out["f"] = {row: (1 - p.mix) * out["y"][row] / top + p.mix * c[row] for row in live}
        ordered = sorted(live, key=lambda row: (-out["f"][row], -c[row], r.ids[row]))
        out["rows"] = ordered[:k]
        out["fallback"] = [False] * len(out["rows"])
    return out


def check(w: World, q: np.ndarray, blocked: np.ndarray, k: int, p: DiffusionParams, strict: bool = False) -> bool:
    """The method's answer against the reference within the documented tolerance; True when it is the
    reference's answer exactly (the same rows in the same order)."""
    r = w.retriever
    ref = reference(w, q, blocked, k, strict, p)
    cos = Cosines.exact_all(w.codes, q)
    got = diffuse(r, cos, blocked, k, strict, p)
    ranked = [row for row, fb in zip(got.rows, got.fallback, strict=True) if not fb]
    assert got.fallback == [False] * len(ranked) + [True] * (len(got.rows) - len(ranked))
    if ref["y"]:  # the scores themselves
        eps = eps_of(p.iterations, ref["max_entries"])
        assert eps >= 50 * UNIT  # far above one float32 rounding: nothing here hangs on this machine's
        taken = np.zeros(len(r.ids), bool)
        taken[blocked] = True
        rows, y = diffused(r, cos, cos.at_least(r.threshold), taken, k, p)
        assert set(rows.tolist()) == set(ref["y"])
        scale = max(ref["y"].values()) / y.max() if y.max() > 0 else 1.0  # the method scales its seeds
        for row, v in zip(rows.tolist(), y.tolist(), strict=True):
            exact = ref["y"][row]
            assert (v > 0) == (exact > 0), (row, v, exact)
            assert abs(v * scale - exact) <= 2.01 * eps * exact + 1e-300, (row, v * scale, exact)
        tau = (1 - p.mix) * 2.01 * eps + 1e-12
        f = ref["f"]
        assert len(ranked) == min(k, len(f)) and all(row in f for row in ranked)
        for a, b in zip(ranked, ranked[1:], strict=False):
            assert f[a] >= f[b] - 2 * tau, (a, b, f[a], f[b])
        if ranked:
            left = [row for row in f if row not in set(ranked)]
            assert all(f[row] <= f[ranked[-1]] + 2 * tau for row in left)
    else:
        assert ranked == []
    if not strict:  # the rest: exact cosine order (no tolerance)
        taken_rows = np.concatenate([blocked, np.array(ranked, np.int64)])
        rest = cos.top(k - len(ranked), r.ids.__getitem__, taken_rows).tolist()
        assert got.rows[len(ranked):] == rest
    else:
        assert len(got.rows) == len(ranked)
    return bool(ranked == ref["rows"])


PARAMS = [
    DiffusionParams(),
    DiffusionParams(weighting="cosine"),
    DiffusionParams(scope="graph"),
    DiffusionParams(per_degree=True, mix=0.5),
    DiffusionParams(seeds=3, seed_weights="uniform", mix=0.0),  # pure diffusion: ties are frequent
    DiffusionParams(restart=0.5, iterations=30, weighting="cosine", scope="graph", pool=10),
]


@pytest.fixture(scope="module")
def giant() -> World:
    return giant_world()


@pytest.mark.parametrize("p", PARAMS)
def test_every_answer_within_the_tolerance_on_a_giant_component(giant: World, p: DiffusionParams) -> None:
    w = giant
    rng = np.random.default_rng(1)
    stored = [0, 1, 5, 150, 299, 305, 314, 320, 333, 400, *rng.choice(300, 14, replace=False).tolist()]
    exact = 0
    for i, row in enumerate(stored):  # stored images, themselves and sometimes a few more excluded
        blocked = np.array(sorted({row, *(rng.choice(len(w.codes), 3).tolist() if i % 3 == 0 else [])}), np.int64)
        exact += check(w, w.codes[row], blocked, 10 if i % 2 else 25, p, strict=i % 4 == 1)
    for q in positive_codes(6, rng):  # new images
        exact += check(w, q, np.zeros(0, np.int64), 10, p)
    assert exact >= 20  # nearly always the reference's answer itself


def test_a_query_without_edges_and_seeds_that_are_sinks(giant: World) -> None:
    w = giant
    far = -np.ones(16, np.float32) / 4.0  # no cosine reaches T: nothing to diffuse from
    check(w, far, np.zeros(0, np.int64), 10, DiffusionParams())
    hits = diffuse(w.retriever, Cosines.exact_all(w.codes, far), np.zeros(0, np.int64), 10, False)
    assert all(hits.fallback) and len(hits.rows) == 10
    for row in range(345, 360):  # edgeless rows: their own seeds keep their mass, nothing flows
        check(w, w.codes[row], np.array([row]), 10, DiffusionParams())
        check(w, w.codes[row], np.zeros(0, np.int64), 5, DiffusionParams(scope="graph"), strict=True)


def test_float32_is_used_where_the_bound_holds_and_float64_where_a_score_would_underflow(giant: World) -> None:
    w = giant
    cos = Cosines.exact_all(w.codes, w.codes[3])
    nq = cos.at_least(w.retriever.threshold)
    walk = restricted(w.retriever, walk_of(w.retriever, "unweighted"), cos, nq, np.zeros(len(w.codes), bool), 50)
    s = np.zeros(len(walk))
    s[walk.positions(nq)] = 1.0
    assert precision(walk, s, DiffusionParams()) is np.float32
    deep = chain_of_hubs_world()
    p = DiffusionParams(iterations=25, scope="graph", mix=0.0)
    whole = subgraph(walk_of(deep.retriever, "unweighted"))
    s = np.zeros(len(whole))
    s[0] = 1.0
    assert precision(whole, s, p) is np.float64
    for blocked in ([0], [5]):
        check(deep, deep.codes[0], np.array(blocked, np.int64), 30, p)
    cos = Cosines.exact_all(deep.codes, deep.codes[0])
    rows, y = diffused(deep.retriever, cos, np.array([0]), np.zeros(len(deep.codes), bool), 10, p)
    assert y[rows.tolist().index(20)] > 0  # 20 links away: about 1e-40 of the mass, still counted


@pytest.mark.parametrize("k", [1, 10, 50, 97, 120, 200])
def test_hybrid_communities_are_the_ones_grow_merges(giant: World, k: int) -> None:
    w = giant
    r = w.retriever
    rng = np.random.default_rng(k)
    for row in rng.choice(345, 25, replace=False).tolist():
        cos = Cosines.exact_all(w.codes, w.codes[row])
        nq = cos.at_least(r.threshold)
        if not nq.size:
            continue
        excluded = np.zeros(len(r.ids), bool)
        excluded[[row, *rng.choice(len(r.ids), 40).tolist()]] = True  # some communities lose members
        growth = grow(r.graph, cos, nq, excluded, k, strict=False, mode="hybrid")
        assert hybrid_communities(r.graph, cos, nq, excluded, k) == [
            s.target for s in growth.steps if s.kind == "community"]
