"""GraphView: what retrieval needs to read from a community-partitioned image graph."""

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cxrneo.records import CommunityStats


@runtime_checkable
class GraphView(Protocol):
    """A read-only image graph with its coarse (Louvain) partition and community statistics.

    Edges are undirected and unweighted; `neighbours` lists each neighbour once.
    """

    @property
    def total_edges(self) -> int:
        """L = |E|, the number of undirected edges of the database graph."""
        ...

    def community_stats(self) -> Mapping[int, CommunityStats]:
        """Every community by id, with n (nodes), l (internal edges) and d (degree sum)."""
        ...

    def between(self, c: int) -> Mapping[int, int]:
        """Edge counts from community c to each other community it shares edges with."""
        ...

    def community_of(self, image_id: str) -> int:
        """The community of a database image (NotFoundError for an unknown id)."""
        ...

    def members(self, c: int) -> Sequence[str]:
        """The image ids of community c."""
        ...

    def neighbours(self, image_id: str) -> Sequence[str]:
        """The ids adjacent to a database image."""
        ...
