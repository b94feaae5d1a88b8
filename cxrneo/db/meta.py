"""GraphMeta: the one node that says which graph the database holds and whether it can be read."""

from typing import Any

from pydantic import BaseModel

from cxrneo.db.connection import Database
from cxrneo.errors import NotReadyError


class GraphMeta(BaseModel):
    """The stored GraphMeta node, with the counts the database holds beside it.

    Writers set ``writing`` before their first write and clear it at their verified end, and every
    change to the stored graph moves ``generation`` (ingest, community run) or ``communityGeneration``
    on, so (graphId, generation, communityGeneration) names one readable state of the graph. The
    whole contract (which statement moves what, what readers cache under which key) is
    `cxrneo.db.generations`.
    """

    threshold: float
    nodes: int
    edges: int
    generation: int
    communityGeneration: int  # noqa: N815 - the stored property name
    codesSha256: str = ""  # noqa: N815
    transformSha256: str = ""  # noqa: N815 - the CodeTransform the stored codes went through ("" raw codes)
    graphId: str = ""  # noqa: N815 - random id given when the graph is first created
    dataGeneration: int | None = None  # noqa: N815 - generation at which images or edges last changed
    writing: str | None = None  # 'ingest' / 'communities' while one runs or after it was killed
    communities: int | None = None  # Community nodes / LINKED edges of the last complete run
    linked: int | None = None
    communitySeeded: bool | None = None  # noqa: N815 - the last community run that began was seeded
    storedNodes: int | None = None  # noqa: N815 - what the database holds now (count store)
    storedEdges: int | None = None  # noqa: N815
    storedCommunities: int | None = None  # noqa: N815
    storedLinked: int | None = None  # noqa: N815

    def require_graph(self) -> None:
        """Refuse clearly unless the images and SIMILAR edges are complete (what kNN needs)."""
        if self.writing == "ingest":
            raise NotReadyError(
                "an ingest is running or was interrupted: the graph is incomplete; rerun "
                "`cxrneo ingest` with the same codes file"
            )
        if self.storedNodes is not None and (self.storedNodes, self.storedEdges) != (self.nodes, self.edges):
            raise NotReadyError(
                f"the database holds {self.storedNodes} images and {self.storedEdges} edges but GraphMeta "
                f"says {self.nodes} and {self.edges}: rerun `cxrneo ingest` with the codes file"
            )

    def require_queryable(self, communities: bool = True) -> None:
        """Refuse clearly unless the graph and (with `communities`) its communities are complete
        and current; `communities=False` is the check for methods that use no community (kNN)."""
        self.require_graph()
        if not communities:
            return
        if self.writing == "communities":
            raise NotReadyError(
                "`cxrneo communities` is running or was interrupted: communities are incomplete; "
                "rerun `cxrneo communities`"
            )
        if self.communityGeneration != self.generation:
            raise NotReadyError(
                f"communities (generation {self.communityGeneration}) are older than the graph "
                f"(generation {self.generation}): run `cxrneo communities` first"
            )
        if self.communities is not None and (self.storedCommunities, self.storedLinked) != (
            self.communities, self.linked
        ):
            raise NotReadyError(
                f"the database holds {self.storedCommunities} communities and {self.storedLinked} LINKED "
                f"edges but GraphMeta says {self.communities} and {self.linked}: rerun `cxrneo communities`"
            )


def meta_of(row: dict[str, Any]) -> GraphMeta:
    """GraphMeta from a row with the columns of fetch_graph_meta (others ignored)."""
    return GraphMeta(**{k: v for k, v in row.items() if v is not None and k in GraphMeta.model_fields})


def graph_meta(db: Database) -> GraphMeta | None:
    """The GraphMeta node, or None for a graph never ingested."""
    rows = db.read("fetch_graph_meta")
    return meta_of(rows[0]) if rows else None


def queryable(meta: GraphMeta | None, communities: bool = True) -> GraphMeta:
    """`meta` (as just read) when its graph can answer queries (else one clear error)."""
    if meta is None:
        raise NotReadyError("the database holds no complete cxrneo graph: run `cxrneo ingest` first")
    meta.require_queryable(communities)
    return meta


def queryable_meta(db: Database, communities: bool = True) -> GraphMeta:
    """The GraphMeta of a graph that can answer queries (else one clear error)."""
    return queryable(graph_meta(db), communities)
