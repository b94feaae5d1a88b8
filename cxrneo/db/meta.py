"""GraphMeta: the one node that says which graph the database holds and whether it can be read."""

from pydantic import BaseModel

from cxrneo.db.connection import Database
from cxrneo.errors import NotReadyError


class GraphMeta(BaseModel):
    """The stored GraphMeta node."""

    threshold: float
    nodes: int
    edges: int
    generation: int
    communityGeneration: int  # noqa: N815 - the stored property name
    codesSha256: str = ""  # noqa: N815
    graphId: str = ""  # noqa: N815 - random id given when the graph is first created

    def require_queryable(self) -> None:
        """Refuse clearly unless the graph and its communities are complete and current."""
        if self.communityGeneration != self.generation:
            raise NotReadyError(
                f"communities (generation {self.communityGeneration}) are older than the graph "
                f"(generation {self.generation}): run `cxrneo communities` first"
            )


def graph_meta(db: Database) -> GraphMeta | None:
    """The GraphMeta node, or None for a graph never ingested."""
    rows = db.read("fetch_graph_meta")
    return GraphMeta(**{k: v for k, v in rows[0].items() if v is not None}) if rows else None


def queryable_meta(db: Database) -> GraphMeta:
    """The GraphMeta of a graph that can answer queries (else one clear error)."""
    meta = graph_meta(db)
    if meta is None:
        raise NotReadyError("the database holds no cxrneo graph: run `cxrneo ingest` first")
    meta.require_queryable()
    return meta
