"""POST /subgraph: the SIMILAR edges among some images, with the Cypher for Neo4j Browser."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from cxrneo.access.identity import Role
from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Audit, Work, need
from cxrneo.api.notes import Note
from cxrneo.filters import Name
from cxrneo.service.request import MAX_K
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import in_time

router = APIRouter(dependencies=[Depends(need(Role.VIEWER))])


class SubgraphRequest(BaseModel):
    """Images whose neighbourhood to draw (a query's hits, and the query when it is stored)."""

    ids: list[Name] = Field(min_length=1, max_length=MAX_K + 1, description="Stored image ids.")


@router.post("/subgraph", responses=errors(*COMMON, 400))
async def subgraph(req: SubgraphRequest, searcher: Archive, work: Work, note: Audit) -> dict[str, Any]:
    """The stored images among `ids`, their communities, the SIMILAR edges between them and the
    Cypher that shows the same subgraph in Neo4j Browser."""
    note.query = ",".join(req.ids)
    return await in_time(work.deadline, _subgraph, searcher, req.ids, note)


def _subgraph(searcher: Searcher, ids: list[str], note: Note) -> dict[str, Any]:
    answer = searcher.subgraph(ids)
    shown = [str(n["id"]) for n in answer["nodes"]]
    note.saw(shown, searcher.patients(shown))
    return answer
