"""Retriever: the three methods, exclusions, fallbacks and clear errors on a small graph."""

import numpy as np
import pytest

from cxrneo.errors import ConfigError, InputError, NotFoundError
from cxrneo.graph import Edges, normalise, similarity_edges
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.question import Question

T = 0.6


@pytest.fixture(scope="module")
def world() -> tuple[Retriever, np.ndarray, list[str], MemoryGraph]:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((6, 16))
    which = rng.integers(0, 6, 240)
    codes = normalise(centres[which] + 0.6 * rng.standard_normal((240, 16)))
    ids = [f"img{i:03d}" for i in range(240)]
    edges = similarity_edges(codes, T)
    view = MemoryGraph.build(ids, edges, which)  # the generating clusters stand in for Louvain
    return Retriever(view, codes, ids, T), codes, ids, view


def test_memory_graph_statistics(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, view = world
    edges = similarity_edges(codes, T)
    com = np.array([view.community_of(i) for i in ids])
    deg = np.bincount(np.concatenate([edges.src, edges.dst]), minlength=len(ids))
    assert view.total_edges == len(edges)
    for c, s in view.community_stats().items():
        inside = (com[edges.src] == c) & (com[edges.dst] == c)
        assert (s.n, s.l, s.d) == ((com == c).sum(), inside.sum(), deg[com == c].sum())
        for c2, cnt in view.between(c).items():
            cross = ((com[edges.src] == c) & (com[edges.dst] == c2)) | (
                (com[edges.src] == c2) & (com[edges.dst] == c)
            )
            assert cnt == cross.sum() > 0
    assert sorted(view.neighbours(ids[0])) == sorted(
        [ids[b] for a, b in zip(edges.src, edges.dst, strict=True) if a == 0]
        + [ids[a] for a, b in zip(edges.src, edges.dst, strict=True) if b == 0]
    )


def test_knn_is_exact_cosine_ranking(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, _ = world
    q = codes[5]
    hits = r.query(q, Question(10, method="knn", exclude=frozenset({ids[5]})))
    sims = codes @ q
    order = [i for i in np.argsort(-sims, kind="stable") if i != 5][:10]
    assert [h.image_id for h in hits] == [ids[i] for i in order]
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(h.gain is None and not h.fallback for h in hits)


@pytest.mark.parametrize("method", ["community", "hybrid", "knn"])
def test_exclusions_are_never_returned(world: tuple, method: str) -> None:  # type: ignore[type-arg]
    r, codes, ids, _ = world
    banned = frozenset(ids[:120])
    hits = r.query(codes[3], Question(15, method=method, exclude=banned))
    assert len(hits) == 15 and not {h.image_id for h in hits} & banned
    assert len({h.image_id for h in hits}) == 15


def test_community_hits_carry_gains_and_communities(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, view = world
    hits = r.query(codes[10], Question(10, exclude=frozenset({ids[10]})))
    assert all(h.gain is not None and not h.fallback for h in hits)
    assert all(h.community == view.community_of(h.image_id) for h in hits)
    assert all(abs(h.cosine - float(codes[10] @ r.code_of(h.image_id))) < 1e-5 for h in hits)
    growth = r.grow(codes[10], Question(10, exclude=frozenset({ids[10]})))
    assert growth.steps[0].kind == "community" and growth.steps[0].target == view.community_of(ids[10])


def test_hybrid_ranks_inside_the_first_community_by_cosine(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, view = world
    q = codes[20]
    hits = r.query(q, Question(5, method="hybrid", exclude=frozenset({ids[20]})))
    first = view.community_of(hits[0].image_id)
    members = [m for m in view.members(first) if m != ids[20]]
    best = sorted(members, key=lambda m: (-float(r.code_of(m) @ q), m))[:5]
    assert [h.image_id for h in hits] == best


def test_no_neighbour_falls_back_to_cosine(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, _ = world
    q = np.zeros(16, np.float32)
    q[0] = 1.0
    assert (codes @ q).max() < T  # nothing at the threshold
    hits = r.query(q, Question(4))
    knn = r.query(q, Question(4, method="knn"))
    assert [h.image_id for h in hits] == [h.image_id for h in knn]
    assert all(h.fallback and h.gain is None for h in hits)


def test_small_component_fills_by_cosine_unless_strict() -> None:
    # two isolated pairs: q touches only the first, so R runs out of communities after 2 images
    codes = normalise(np.array([[1, 0.1, 0], [1, 0, 0.1], [0, 1, 0], [0, 1, 0.1]], np.float32))
    ids = ["a", "b", "c", "d"]
    e = Edges(np.array([0, 2]), np.array([1, 3]), np.ones(2, np.float32))
    r = Retriever(MemoryGraph.build(ids, e, [0, 0, 1, 1]), codes, ids, 0.9)
    q = np.array([1, 0.05, 0.05], np.float32)
    # augmented graph: a-b, c-d, q-a, q-b (L' = 4). Step 2a: R = {q} (n=1, l=0, d=2) with
    # community 0 (n=2, l=1, d=4, e=2): 2 * (3/4 - (6/8)^2) + (2/8)^2 - 2 * (1/4 - (4/8)^2) = 7/16.
    # Step 2b in G_s = {q, a, b} (|E_s| = 3): a and b each gain 2 * (1/3 - (4/6)^2) + 2 * (2/6)^2 = 0,
    # a tie with equal cosines -> "a"; then b gains 1/3. Nothing else touches R: the rest by cosine.
    hits = r.query(q, Question(4))
    assert [h.image_id for h in hits] == ["a", "b", "d", "c"]  # d is closer to q than c
    assert [h.fallback for h in hits] == [False, False, True, True]
    assert np.allclose([h.gain for h in hits[:2]], [0.0, 1 / 3], atol=1e-12)
    growth = r.grow(q, Question(4))
    assert [(s.kind, s.target) for s in growth.steps] == [("community", 0), ("node", 0), ("node", 1)]
    assert growth.steps[0].gain == pytest.approx(7 / 16, abs=1e-12)
    # strict mode stops at the first gain <= 0: the join of a (gain 0) is never taken
    assert r.query(q, Question(4, strict=True)) == []
    assert r.grow(q, Question(4, strict=True)).stopped


def test_growth_goes_on_into_the_next_community_until_k(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, view = world
    q, own = codes[30], frozenset({ids[30]})
    growth = r.grow(q, Question(60, exclude=own))
    order = [s.target for s in growth.steps if s.kind == "community"]
    first = [m for m in view.members(order[0]) if m not in own]
    assert len(first) < 60 and len(order) >= 2  # k needs more than the first community
    hits = r.query(q, Question(60, exclude=own))
    assert len(hits) == 60 and not any(h.fallback for h in hits)
    # the whole first community (but the query) comes first, then members of the second, in order
    assert {h.image_id for h in hits[: len(first)]} == set(first)
    second = set(view.members(order[1]))
    nxt = [h.image_id for h in hits[len(first) :]]
    n2 = min(len(second), len(nxt))
    assert set(nxt[:n2]) <= second
    assert [h.image_id for h in hits] == [ids[i] for i in growth.rows]
    k_small = len(first) - 3  # stops inside the first community when k is reached there
    assert {h.image_id for h in r.query(q, Question(k_small, exclude=own))} < set(first)


def test_clear_errors(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids, _ = world
    with pytest.raises(ConfigError, match="at least 1"):
        r.query(codes[0], Question(0))
    with pytest.raises(ConfigError, match="holds only 239"):
        r.query(codes[0], Question(240, exclude=frozenset({ids[0]})))
    with pytest.raises(ConfigError, match="unknown method"):
        r.query(codes[0], Question(3, method="pagerank"))
    with pytest.raises(NotFoundError, match="nope"):
        r.row_of("nope")
    with pytest.raises(InputError, match="zero"):
        r.query(np.zeros(16, np.float32), Question(3))
    with pytest.raises(InputError, match="values"):
        r.query(np.ones(8, np.float32), Question(3))
