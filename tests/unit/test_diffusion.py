"""Diffusion retrieval: PPR against its closed form, the GDS iteration, exclusions, K results, errors."""

from typing import Any, cast

import numpy as np
import pytest

from cxrneo.errors import ConfigError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.diffusion import (
    DiffusionParams,
    Restricted,
    Walk,
    adjacency,
    closed_form,
    diffuse,
    personalized_pagerank,
    rank,
    seed_vector,
    subgraph,
)
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.question import Question

T = 0.6


def _csr(n: int, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs:
        nbrs[a].append(b)
        nbrs[b].append(a)
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in nbrs])]).astype(np.int64)
    return indptr, np.array([v for x in nbrs for v in sorted(x)], np.int64)


@pytest.fixture(scope="module")
def world() -> tuple[Retriever, np.ndarray, list[str]]:
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((6, 16))
    which = rng.integers(0, 6, 240)
    codes = normalise(centres[which] + 0.6 * rng.standard_normal((240, 16)))
    ids = [f"img{i:03d}" for i in range(240)]
    view = MemoryGraph.build(ids, similarity_edges(codes, T), which)
    return Retriever(view, codes, ids, T), codes, ids


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("damping", [0.5, 0.85])
def test_power_iteration_reaches_the_dense_closed_form(weighted: bool, damping: float) -> None:
    rng = np.random.default_rng(3)
    codes = normalise(rng.standard_normal((30, 5)) + 2.0)  # all cosines positive
    pairs = [(a, b) for a in range(30) for b in range(a + 1, 30) if rng.random() < 0.15]
    indptr, indices = _csr(31, pairs)  # row 30 has no edge: a sink that keeps its mass
    walk = subgraph(Walk(adjacency(indptr, indices, np.vstack([codes, codes[:1]]) if weighted else None, dtype=np.float64)))
    s = np.zeros(31)
    s[[0, 4, 30]] = [0.5, 0.3, 0.2]
    exact = closed_form(walk, s, damping)
    approx = personalized_pagerank(walk, s, damping, iterations=400)
    np.testing.assert_allclose(approx, exact, rtol=1e-9, atol=1e-12)
    assert exact[30] == pytest.approx((1 - damping) * 0.2)  # a sink: no edge in, none out
    # a dense transition matrix written out by hand agrees with the sparse operator
    a = np.zeros((31, 31))
    for x, y in pairs:
        w = float(codes[x] @ codes[y]) if weighted else 1.0
        a[x, y] = a[y, x] = w
    deg = a.sum(axis=1)
    p = np.divide(a, deg[:, None], out=np.zeros_like(a), where=deg[:, None] > 0)  # row-stochastic
    hand = np.linalg.solve(np.eye(31) - damping * p.T, (1 - damping) * s)
    np.testing.assert_allclose(exact, hand, rtol=1e-6)  # float32 codes in the weights


def test_iterations_follow_gds_supersteps() -> None:
    # path 0-1-2-3-4-5 plus 0-3; GDS (dampingFactor 0.5, maxIterations 3, source 0) gives these
    indptr, indices = _csr(6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 3)])
    s = np.zeros(6)
    s[0] = 1.0
    x = personalized_pagerank(subgraph(Walk(adjacency(indptr, indices, dtype=np.float64))), s, 0.5, iterations=2)
    np.testing.assert_allclose(x, [0.552083333, 0.125, 0.052083333, 0.125, 0.020833333, 0.0], atol=1e-8)


def test_batched_columns_equal_single_runs() -> None:
    indptr, indices = _csr(8, [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (2, 5)])
    walk = subgraph(Walk(adjacency(indptr, indices, dtype=np.float64)))
    s = np.eye(8)[:, [0, 6]]
    both = personalized_pagerank(walk, s, 0.7, 15)
    for j in range(2):
        np.testing.assert_allclose(both[:, j], personalized_pagerank(walk, s[:, j], 0.7, 15))


def test_seed_vector_takes_the_closest_neighbours() -> None:
    sims = np.array([0.9, 0.7, 0.95, 0.8, 0.1], np.float32)
    rows, w = seed_vector(Cosines.of(sims), np.array([0, 1, 2, 3]), limit=2)
    assert rows.tolist() == [0, 2]
    np.testing.assert_allclose(w, [0.9 / 1.85, 0.95 / 1.85], rtol=1e-6)
    rows, w = seed_vector(Cosines.of(sims), np.array([0, 1, 2, 3]), limit=None, weights="uniform")
    assert rows.tolist() == [0, 1, 2, 3] and np.allclose(w, 0.25)


def test_rank_combines_scores_and_cosine() -> None:
    scores = np.array([0.4, 0.2, 0.0, 0.2])
    sims = np.array([0.1, 0.9, 1.0, 0.5], np.float32)
    ids = ["a", "b", "c", "d"]
    rows = np.arange(4)
    assert rank(scores, Cosines.of(sims), rows, ids, mix=0.0, need=4) == [0, 1, 3]  # zero score: not ranked; tie by cosine
    assert rank(scores, Cosines.of(sims), rows, ids, mix=1.0, need=2) == [1, 3]  # pure cosine among diffused rows
    # mix 0.5: a 0.5*1 + 0.05 = 0.55, b 0.25 + 0.45 = 0.70, d 0.25 + 0.25 = 0.50
    assert rank(scores, Cosines.of(sims), rows, ids, mix=0.5, need=3) == [1, 0, 3]


@pytest.mark.parametrize("params", [
    DiffusionParams(), DiffusionParams(weighting="cosine"), DiffusionParams(scope="communities"),
    DiffusionParams(seeds=3, seed_weights="uniform", mix=0.0),
])
def test_k_results_and_exclusions(world: tuple, params: DiffusionParams) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    banned = frozenset(ids[:120])
    sims = r.codes @ codes[3]
    blocked = np.array(sorted(r.row_of(i) for i in banned), np.int64)
    growth = diffuse(r, Cosines.of(sims), blocked, 40, strict=False, params=params)
    got = [ids[row] for row in growth.rows]
    assert len(got) == 40 == len(set(got))
    assert not banned & set(got)
    assert not all(growth.fallback)


def test_registry_entry_answers_queries(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    assert Method.parse("diffusion") is Method.DIFFUSION
    hits = r.query(codes[5], Question(10, method="diffusion", exclude=frozenset({ids[5]})))
    assert [h.rank for h in hits] == list(range(1, 11))
    assert ids[5] not in {h.image_id for h in hits}
    sims = codes @ codes[5]
    assert all(h.cosine == pytest.approx(float(sims[ids.index(h.image_id)]), abs=1e-6) for h in hits)


def test_no_neighbour_and_small_component_fall_back_to_cosine() -> None:
    codes = normalise(np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0.95, 0.3], [0, 0, 1]], float))
    ids = ["a", "b", "c", "d", "e"]
    view = MemoryGraph.build(ids, similarity_edges(codes, 0.9), [0, 0, 1, 1, 2])
    r = Retriever(view, codes, ids, 0.9)
    hits = r.query(np.array([1.0, 1.0, 1.0]), Question(3, method="diffusion"))  # no cosine reaches 0.9
    assert all(h.fallback for h in hits) and len(hits) == 3
    hits = r.query(codes[0], Question(4, method="diffusion"))  # the component {a, b} holds only 2
    assert [h.fallback for h in hits] == [False, False, True, True]
    assert [h.image_id for h in hits[:2]] == ["a", "b"]
    assert len(r.query(codes[0], Question(4, method="diffusion", strict=True))) == 2


def test_clear_errors(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, _ = world
    for bad in ({"restart": 0.0}, {"iterations": -1}, {"mix": 1.5}, {"seeds": 0}, {"weighting": "x"},
                {"scope": "x"}, {"seed_weights": "x"}):
        with pytest.raises(ConfigError):
            DiffusionParams(**cast(dict[str, Any], bad))

    class Other:  # any GraphView that is not a MemoryGraph
        def __getattr__(self, name: str) -> object:
            return getattr(r.graph.view, name)

    other = Retriever(cast(Any, Other()), r.codes, r.ids, T)
    with pytest.raises(ConfigError, match="MemoryGraph"):
        other.query(codes[0], Question(5, method="diffusion"))
    with pytest.raises(ConfigError, match="unknown method"):
        Method.parse("diffuse")


@pytest.mark.parametrize("scope", ["graph", "communities"])
def test_top_k_is_a_prefix_of_a_longer_list(world: tuple, scope: str) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    params = DiffusionParams(scope=cast(Any, scope), pool=30)
    blocked = np.array([r.row_of(ids[9])], np.int64)
    for q in (9, 50, 200):
        sims = r.codes @ codes[q]
        short = diffuse(r, Cosines.of(sims), blocked, 10, strict=False, params=params).rows
        assert short == diffuse(r, Cosines.of(sims), blocked, 30, strict=False, params=params).rows[:10]


def test_communities_scope_stays_inside_the_chosen_communities(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    sims = r.codes @ codes[17]
    growth = diffuse(r, Cosines.of(sims), np.zeros(0, np.int64), 20, strict=True, params=DiffusionParams(scope="communities"))
    nq = set(np.flatnonzero(sims >= np.float32(T)).tolist())
    hybrid = r.grow(codes[17], Question(50, method="hybrid"))
    chosen = {s.target for s in hybrid.steps if s.kind == "community"}
    assert growth.rows and all(row in nq or int(r.graph.community[row]) in chosen for row in growth.rows)


def test_restricted_walk_equals_the_sliced_subgraph() -> None:
    rng = np.random.default_rng(5)
    pairs = [(a, b) for a in range(40) for b in range(a + 1, 40) if rng.random() < 0.1]
    indptr, indices = _csr(41, pairs)
    codes = normalise(rng.standard_normal((41, 4)) + 3.0)
    full = Walk(adjacency(indptr, indices, codes, dtype=np.float64))
    a, b, extra = np.array([0, 3, 4, 9, 17]), np.array([1, 2, 5, 6, 7, 8, 10, 11]), np.array([30, 22, 39, 40])
    inside = Restricted(full, [full.part(a, key=1), full.part(b, key=2)], extra)
    rows = inside.rows
    assert sorted(rows.tolist()) == sorted([*a.tolist(), *b.tolist(), *extra.tolist()])
    assert rows[-4:].tolist() == extra.tolist()  # parts first (each in its own order), then the extra rows
    assert inside.positions(np.array([22, 3, 12])).tolist() == [rows.tolist().index(22), rows.tolist().index(3), -1]
    sliced = full.adj.toarray()[np.ix_(rows, rows)]
    np.testing.assert_array_equal(inside.dense(), sliced)  # every entry, between parts and extra rows too
    np.testing.assert_allclose(inside.strength, sliced.sum(axis=1), rtol=1e-12)
    assert inside.max_entries == int((sliced > 0).sum(axis=1).max()) and inside.nnz == int((sliced > 0).sum())
    s = np.zeros(rows.size)
    s[inside.positions(np.array([3, 22]))] = [0.6, 0.4]
    pt = sliced / np.where(sliced.sum(axis=1) > 0, sliced.sum(axis=1), 1.0)[None, :]
    x = s * 0.2
    for _ in range(12):
        x = 0.2 * s + 0.8 * pt @ x
    np.testing.assert_allclose(personalized_pagerank(inside, s, 0.8, 12), x, rtol=1e-12)
    z = np.zeros(rows.size)
    z[inside.positions(np.array([3, 30]))] = [1.0, 2.0]  # a step from a few rows reads their entries alone
    np.testing.assert_allclose(inside.step(z, np.flatnonzero(z)), inside.step(z), rtol=1e-12)
    assert full.part(a, key=1) is full.part(a, key=1)  # kept for reuse


def test_the_walk_block_cache_is_safe_under_concurrent_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gets racing evictions neither raise nor let the kept count drift (a service shares one walk)."""
    from concurrent.futures import ThreadPoolExecutor

    import scipy.sparse as sp

    from cxrneo.retrieval import diffusion

    rng = np.random.default_rng(0)
    a = sp.random(400, 400, density=0.05, random_state=1, format="csr")
    walk = diffusion.Walk((a + a.T).tocsr())
    monkeypatch.setattr(diffusion, "BLOCK_CACHE_NNZ", 30)  # a tiny cache: evictions all the time
    keys = rng.integers(0, 40, 4000)

    def fetch(key: int) -> int:
        rows = np.arange(key * 10, key * 10 + 10)
        part = walk.part(rows, key=int(key))
        assert sorted(part.rows.tolist()) == rows.tolist()
        assert (part.inner != walk.adj[part.rows][:, part.rows]).nnz == 0
        return int(part.inner.nnz)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fetch, keys))
    assert walk._kept == sum(p.inner.nnz for p in walk._parts.values())
