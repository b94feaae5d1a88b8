"""The CSR paths equal the generic ones: MemoryGraph.from_csr = build, vectorised blocks = per-id blocks."""

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from cxrneo.errors import InputError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.records import CommunityStats
from cxrneo.retrieval.indexed import IndexedGraph
from cxrneo.retrieval.memory import MemoryGraph


class _ById:
    """A GraphView that hides the CSR arrays, so IndexedGraph takes its generic per-id path."""

    def __init__(self, g: MemoryGraph) -> None:
        self.g = g

    @property
    def total_edges(self) -> int:
        return self.g.total_edges

    def community_stats(self) -> Mapping[int, CommunityStats]:
        return self.g.community_stats()

    def between(self, c: int) -> Mapping[int, int]:
        return self.g.between(c)

    def community_of(self, image_id: str) -> int:
        return self.g.community_of(image_id)

    def members(self, c: int) -> Sequence[str]:
        return self.g.members(c)

    def neighbours(self, image_id: str) -> Sequence[str]:
        return self.g.neighbours(image_id)


@pytest.fixture(scope="module")
def graph() -> MemoryGraph:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((5, 12))
    which = rng.integers(0, 5, 300)
    codes = normalise(centres[which] + 0.7 * rng.standard_normal((300, 12)))
    ids = [f"x{i:04d}" for i in rng.permutation(300)]  # row order is not id order
    return MemoryGraph.build(ids, similarity_edges(codes, 0.55), which * 7 + 3)


def test_from_csr_equals_build(graph: MemoryGraph) -> None:
    again = MemoryGraph.from_csr(graph.ids, graph.indptr, graph.indices.astype(np.int32), graph.community)
    assert again.total_edges == graph.total_edges > 0
    assert again.community_stats() == graph.community_stats()
    for c in graph.community_stats():
        assert dict(again.between(c)) == dict(graph.between(c))
        assert list(again.members(c)) == list(graph.members(c))


def test_vectorised_blocks_equal_generic_blocks(graph: MemoryGraph) -> None:
    fast, slow = IndexedGraph(graph, graph.ids), IndexedGraph(_ById(graph), graph.ids)
    assert fast._csr is not None and slow._csr is None
    assert (fast.community == slow.community).all()
    for c in graph.community_stats():
        a, b = fast.block(c), slow.block(c)
        assert (a.rows == b.rows).all() and (a.degree == b.degree).all()
        assert a.internal_edges == b.internal_edges and (a.inner_ptr == b.inner_ptr).all()
        for k in range(a.rows.size):  # neighbour order inside a member may differ; the sets may not
            sa, sb = slice(a.inner_ptr[k], a.inner_ptr[k + 1]), slice(b.inner_ptr[k], b.inner_ptr[k + 1])
            assert sorted(a.inner_idx[sa].tolist()) == sorted(b.inner_idx[sb].tolist())
        outer_a = sorted(zip(a.outer_owner.tolist(), a.outer_rows.tolist(), strict=True))
        outer_b = sorted(zip(b.outer_owner.tolist(), b.outer_rows.tolist(), strict=True))
        assert outer_a == outer_b


def test_asymmetric_csr_is_refused(graph: MemoryGraph) -> None:
    indptr = np.array([0, 1, 1, 1])
    with pytest.raises(InputError, match="symmetric"):
        MemoryGraph.from_csr(["a", "b", "c"], indptr, np.array([1]), np.zeros(3, np.int64))
