"""POST /query (a stored id, ids or a code as JSON; or image files as multipart) and POST /query/image."""

from fastapi import APIRouter, Request

from cxrneo.api.answers import COMMON, errors
from cxrneo.api.deps import Archive, Caller, Config, Work
from cxrneo.api.uploads import body_schema, image_form, is_form, json_body, named
from cxrneo.errors import InputError
from cxrneo.service.request import ImageQuery, QueryRequest, parse
from cxrneo.service.searcher import QueryAnswer, Searcher
from cxrneo.service.workers import Workers, in_time

router = APIRouter()


@router.post("/query", response_model=QueryAnswer, openapi_extra=body_schema(json=QueryRequest, form=ImageQuery),
             responses=errors(*COMMON, 400, 404, 413))
async def query(request: Request, searcher: Archive, config: Config, work: Work, _: Caller) -> QueryAnswer:
    """Query by stored id or code (JSON), or by an uploaded image file (multipart, as /query/image)."""
    if is_form(request):
        return await _images(request, searcher, work, config.max_upload_bytes)
    req = parse(QueryRequest, await json_body(request, config.max_upload_bytes))
    return await in_time(work.deadline, searcher.search, req)


@router.post("/query/image", response_model=QueryAnswer, openapi_extra=body_schema(form=ImageQuery),
             responses=errors(*COMMON, 400, 404, 413))
async def query_image(request: Request, searcher: Archive, config: Config, work: Work, _: Caller) -> QueryAnswer:
    """Query by an uploaded image file, embedded by the service's checkpoint (`serve --checkpoint`)."""
    return await _images(request, searcher, work, config.max_upload_bytes)


async def _images(request: Request, searcher: Searcher, work: Workers, limit: int) -> QueryAnswer:
    async with image_form(request, limit) as (files, options):
        try:
            return await work.run(searcher.search_images, files, options)
        except InputError as e:
            raise named(e, files) from None
