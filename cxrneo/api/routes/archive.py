"""The archive's images: GET /images/{id} (the stored record), GET /images/{id}/pixels (a PNG) and
POST /images/render (an upload as the model reads it)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Response, UploadFile
from fastapi import Path as PathParam

from cxrneo.access.identity import Role
from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Audit, Config, Work, need
from cxrneo.api.notes import Note, digest
from cxrneo.api.uploads import named, save, temporary
from cxrneo.errors import InputError, TooLargeError
from cxrneo.filters import MAX_NAME
from cxrneo.service.pixels import MAX_SIZE, MIN_SIZE, render
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import in_time

router = APIRouter(dependencies=[Depends(need(Role.VIEWER))])
ImageId = Annotated[str, PathParam(max_length=MAX_NAME, description="A stored image id.")]
Size = Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)]
PNG: dict[str, Any] = {"content": {"image/png": {}}}


@router.get("/images/{image_id}", responses=errors(*COMMON, 404))
async def image(image_id: ImageId, searcher: Archive, work: Work, note: Audit) -> dict[str, Any]:
    """The stored record of one image: labels, patient, view, community, ..."""
    note.query = image_id
    return await in_time(work.deadline, _record, searcher, image_id, note)


@router.get("/images/{image_id}/pixels", response_class=Response,
            responses={200: {**PNG, "description": "The image as an 8-bit grey PNG."}, **errors(*COMMON, 404)})
async def pixels(image_id: ImageId, searcher: Archive, work: Work, note: Audit, size: Size = 256) -> Response:
    """A stored image as a PNG, longest side `size`, rendered as embedding reads it (DICOM windowed)."""
    try:
        png = await in_time(work.deadline, _pixels, searcher, image_id, size, note)
    except InputError as e:
        raise HTTPException(422, str(e)) from None
    return Response(png, media_type="image/png")


@router.post("/images/render", response_class=Response,
             responses={200: {**PNG, "description": "The upload as an 8-bit grey PNG."}, **errors(*COMMON, 400, 413)})
async def render_upload(
    file: Annotated[UploadFile, File(description="A chest X-ray: PNG, JPEG or DICOM.")],
    config: Config, work: Work, note: Audit, size: Size = 512,
) -> Response:
    """An uploaded image as the model reads it (the viewer's preview of a query file; nothing is kept)."""
    with temporary(file) as (path, name):
        await save(file, path, config.max_upload_bytes)
        note.query = digest([path])
        try:
            png = await work.run(render, path, size)
        except TooLargeError as e:
            raise named(e, [(path, name)]) from None
        except InputError as e:
            raise HTTPException(422, str(named(e, [(path, name)]))) from None
    return Response(png, media_type="image/png")


def _pixels(searcher: Searcher, image_id: str, size: int, note: Note) -> bytes:
    note.query = image_id
    png = searcher.pixels(image_id, size)
    note.saw([image_id], searcher.patients([image_id]))
    return png


def _record(searcher: Searcher, image_id: str, note: Note) -> dict[str, Any]:
    record = searcher.image(image_id)
    note.saw([image_id], [record.get("patientId")])
    return record
