"""POST /query (a stored id, ids or a code as JSON; or image files as multipart) and POST /query/image."""

from fastapi import APIRouter, Depends, Request, Response

from cxrneo.access.identity import Role
from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Audit, Config, Work, need
from cxrneo.api.notes import Note, digest
from cxrneo.api.observe import answered
from cxrneo.api.uploads import body_schema, image_form, is_form, json_body, named
from cxrneo.errors import InputError
from cxrneo.service.request import ImageQuery, QueryRequest, parse
from cxrneo.service.searcher import QueryAnswer, Searcher
from cxrneo.service.workers import Workers, in_time

router = APIRouter(dependencies=[Depends(need(Role.VIEWER))])


@router.post("/query", response_model=QueryAnswer, openapi_extra=body_schema(json=QueryRequest, form=ImageQuery),
             responses=errors(*COMMON, 400, 404, 413))
async def query(request: Request, searcher: Archive, config: Config, work: Work, note: Audit) -> Response:
    """Query by stored id or code (JSON), or by an uploaded image file (multipart, as /query/image)."""
    if is_form(request):
        return await _images(request, searcher, work, config.max_upload_bytes, note)
    req = parse(QueryRequest, await json_body(request, config.max_upload_bytes))
    if req.region is not None:  # a stored film's region: its file decoded and embedded (heavy work)
        return await work.run(_search, request, searcher, req, note)
    return await in_time(work.deadline, _search, request, searcher, req, note)


@router.post("/query/image", response_model=QueryAnswer, openapi_extra=body_schema(form=ImageQuery),
             responses=errors(*COMMON, 400, 404, 413))
async def query_image(request: Request, searcher: Archive, config: Config, work: Work, note: Audit) -> Response:
    """Query by an uploaded image file, embedded by the service's checkpoint (`serve --checkpoint`)."""
    return await _images(request, searcher, work, config.max_upload_bytes, note)


async def _images(request: Request, searcher: Searcher, work: Workers, limit: int, note: Note) -> Response:
    async with image_form(request, limit) as (files, options):
        note.query = digest(path for path, _ in files)
        try:
            return _shown(request, await work.run(searcher.search_images, files, options), note)
        except InputError as e:
            raise named(e, files) from None


def _search(request: Request, searcher: Searcher, req: QueryRequest, note: Note) -> Response:
    positive, negative = req.examples()
    note.query = ",".join(positive + [f"not:{i}" for i in negative]) or "a code"
    answer = searcher.search(req)
    note.saw(positive + negative, searcher.patients(positive + negative))
    return _shown(request, answer, note)


def _shown(request: Request, answer: QueryAnswer, note: Note) -> Response:
    """The answer as JSON, its images and patients noted for the audit trail, its method and rechecks for
    the metrics and the log. Serialised here, once, by
    pydantic (in the worker thread that answered): returned as a model, FastAPI would validate it again
    against the response model and encode it in the event loop."""
    note.saw((h.image_id for h in answer.hits), (h.patient_id for h in answer.hits))
    answered(request, answer)
    return Response(answer.model_dump_json(), media_type="application/json")
