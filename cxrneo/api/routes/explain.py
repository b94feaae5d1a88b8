"""GET /explain: where two archived X-rays are alike (similarity maps, as a PNG or JSON)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from cxrneo.access.identity import Role
from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Audit, Work, need
from cxrneo.api.notes import Note
from cxrneo.api.routes.archive import Size
from cxrneo.embed.images import read_grey
from cxrneo.errors import InputError
from cxrneo.filters import MAX_NAME
from cxrneo.service.overlay import pair_png, scale_of, side_png
from cxrneo.service.searcher import Searcher
from cxrneo.subregion import Box, parse_box

router = APIRouter(dependencies=[Depends(need(Role.VIEWER))])
Form = Literal["png", "json"]
Side = Literal["pair", "query", "hit"]


@router.get("/explain", response_model=None, responses={
    200: {"content": {"image/png": {}, "application/json": {}},
          "description": "The pair as a PNG, one side's overlay, or the grids as JSON."}, **errors(*COMMON, 400, 404, 413)})
async def explain(
    searcher: Archive, work: Work, note: Audit,
    query: Annotated[str, Query(max_length=MAX_NAME, description="A stored image id.")],
    hit: Annotated[str, Query(max_length=MAX_NAME, description="Another stored image id.")],
    form: Annotated[Form, Query(alias="format")] = "png",
    side: Annotated[Side, Query(description="Both images, or one with its map.")] = "pair",
    size: Size = 320,
    region: Annotated[str | None, Query(max_length=100, description=(
        "A region of the query: `x0,y0,x1,y1` in fractions of its width and height, as a region query's "
        "`region`; the maps are then of that region's code (its map zero outside the box) against the hit."))] = None,
) -> Response | dict[str, Any]:
    """Where two archived X-rays are alike: each image's map of per-cell contributions to their
    cosine (the maps sum to it exactly), drawn over the image (`serve --checkpoint` and `--images`);
    with `region`, where the query's marked region and the hit are alike."""
    try:
        box = None if region is None else parse_box(region)
    except ValueError as e:
        raise InputError(str(e)) from None
    note.query = f"{query},{hit}"
    return await work.run(_maps, searcher, query, hit, form, side, size, note, box)


def _maps(searcher: Searcher, query: str, hit: str, form: Form, side: Side, size: int,
          note: Note, box: Box | None = None) -> Response | dict[str, Any]:
    maps, qpath, hpath = searcher.explain(query, hit, region=box)
    note.saw([query, hit], searcher.patients([query, hit]))
    if form == "json":
        return {"query": query, "hit": hit, "cosine": maps.cosine, "grid": list(maps.query.shape),
                "region": None if box is None else list(box),
                "query_map": maps.query.tolist(), "hit_map": maps.hit.tolist()}
    greys = [read_grey(p, size) for p in (qpath, hpath)]
    if side == "pair":
        png = pair_png(greys[0], greys[1], maps, (query, hit))
    else:
        png = side_png(*((greys[0], maps.query) if side == "query" else (greys[1], maps.hit)), scale_of(maps))
    return Response(png, media_type="image/png", headers={"X-Cosine": f"{maps.cosine:.6f}"})
