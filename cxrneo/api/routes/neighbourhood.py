"""POST /subgraph: the SIMILAR edges among some images, with the Cypher for Neo4j Browser."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Caller, Work
from cxrneo.filters import Name
from cxrneo.service.request import MAX_K
from cxrneo.service.workers import in_time

router = APIRouter()


class SubgraphRequest(BaseModel):
    """Images whose neighbourhood to draw (a query's hits, and the query when it is stored)."""

    ids: list[Name] = Field(min_length=1, max_length=MAX_K + 1, description="Stored image ids.")


@router.post("/subgraph", responses=errors(*COMMON, 400))
async def subgraph(req: SubgraphRequest, searcher: Archive, work: Work, _: Caller) -> dict[str, Any]:
    """The stored images among `ids`, their communities, the SIMILAR edges between them and the
    Cypher that shows the same subgraph in Neo4j Browser."""
    return await in_time(work.deadline, searcher.subgraph, req.ids)
