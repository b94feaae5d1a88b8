"""Request bodies within bounds: JSON decoded with one-line errors, multipart forms with at most
MAX_FILES files and MAX_FIELDS fields, uploads copied in chunks to private temporary files (never
whole in memory) and removed afterwards; and the OpenAPI description of such bodies."""

import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxrneo.api.answers import one_line
from cxrneo.errors import InputError
from cxrneo.service.request import QueryOptions, from_form

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}
MULTIPART_SLACK = 64 << 10  # room for a multipart body's boundaries and small fields around an upload
MAX_FILES = 16  # image files in one multipart query (the query and its examples)
MAX_FIELDS = 32  # text fields in one multipart query
MAX_FIELD_BYTES = 256 << 10  # one text field of a multipart query
Files = list[tuple[Path, str]]  # private temporary files and the names the client gave them


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def json_body(request: Request, limit: int) -> Any:
    """A JSON body, any decoding problem a one-line InputError (bad UTF-8, huge numbers, deep nesting)."""
    raw = await request.body()  # the gate has bounded it
    if len(raw) > limit:
        raise HTTPException(413, f"request larger than {limit} bytes")
    try:
        return json.loads(raw or b"null")
    except RecursionError:
        raise InputError("the request body is nested too deeply") from None
    except UnicodeDecodeError:
        raise InputError("the request body is not UTF-8 text") from None
    except ValueError as e:  # malformed JSON, or a number too long to read
        detail = str(e).split(":")[0] if not isinstance(e, json.JSONDecodeError) else "not JSON"
        raise InputError(f"the request body is not valid JSON ({detail}; or use multipart with an image file)") \
            from None


async def _form(request: Request) -> Any:
    """A multipart body within bounds. A body refused part way is read to its end first (the gate
    bounds it), so that the client, still sending, reads the one-line answer, not a reset connection."""
    done = False

    async def receive() -> Any:
        nonlocal done
        message = await request.receive()
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    try:
        return await Request(request.scope, receive).form(max_files=MAX_FILES, max_fields=MAX_FIELDS,
                                                          max_part_size=MAX_FIELD_BYTES)
    except StarletteHTTPException as e:
        while not done:
            await receive()
        raise InputError(one_line(str(e.detail))) from None


@asynccontextmanager
async def image_form(request: Request, limit: int) -> AsyncIterator[tuple[Files, QueryOptions]]:
    """The one place query uploads are read: the form's options validated as the JSON route's, each
    file in a private temporary file while the block runs (``limit`` bytes for all of them)."""
    if not is_form(request):
        raise InputError("image queries are multipart form data with the image in the field 'file'")
    form = await _form(request)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(form.close)  # the spooled uploads
        uploads = [u for u in form.getlist("file") if not isinstance(u, str)]
        if not uploads:
            raise InputError("multipart queries need an image file in the field 'file'")
        options = from_form({n: v for n, v in form.multi_items() if n != "file" and isinstance(v, str)})
        files: Files = []
        for upload in uploads:
            files.append(stack.enter_context(temporary(upload)))
            limit -= await save(upload, files[-1][0], limit)
        yield files, options


def named(e: InputError, files: Files) -> InputError:
    """The same error naming the uploads, not their temporary files."""
    message = str(e)
    for path, name in files:
        message = message.replace(str(path), name)
    return type(e)(message)


@contextmanager
def temporary(upload: Any) -> Iterator[tuple[Path, str]]:
    """A private temporary file for an upload (removed afterwards) and the name the client gave it."""
    name = Path(getattr(upload, "filename", "") or "upload").name
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="cxrneo-upload-") as tmp:
        yield Path(tmp) / f"upload{suffix if suffix in IMAGE_SUFFIXES else '.png'}", name


async def save(upload: Any, path: Path, room: int) -> int:
    """Copy an upload to ``path`` in chunks (never whole in memory); its bytes. 413 past ``room`` bytes
    (what is left of the request's upload limit), InputError for an empty file."""
    size = 0
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > room:
                raise HTTPException(413, "uploads larger than the service's upload limit (--max-upload-mb)")
            out.write(chunk)
    if not size:
        raise InputError("the uploaded file is empty")
    return size


def body_schema(json: type[BaseModel] | None = None, form: type[BaseModel] | None = None) -> dict[str, Any]:
    """An OpenAPI request body generated from the request models (references inlined)."""
    def inline(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema()
        defs = schema.pop("$defs", {})

        def walk(x: Any) -> Any:
            if isinstance(x, dict):
                ref = x.get("$ref")
                return walk(defs[ref.rsplit("/", 1)[1]]) if isinstance(ref, str) else {k: walk(v) for k, v in x.items()}
            return [walk(v) for v in x] if isinstance(x, list) else x
        out: dict[str, Any] = walk(schema)
        return out

    content = {}
    if json is not None:
        content["application/json"] = {"schema": inline(json)}
    if form is not None:
        content["multipart/form-data"] = {"schema": inline(form)}
    return {"requestBody": {"content": content, "required": True}}
