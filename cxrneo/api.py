"""The HTTP API of `cxrneo serve`: the retrieval service for other programs (FastAPI, OpenAPI at /docs).

POST /query      {"id": ...} or {"code": [...]} as JSON, or an image file as multipart form data
POST /query/image  the same upload, as its own documented route
GET  /images/{id}  the stored record of one image
GET  /health     Neo4j reachable, generations, checkpoint hash

Every error is JSON `{"error": "one line"}` with a 4xx/5xx status, never a stack trace.
"""

import hmac
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from cxrneo.errors import ConfigError, CxrneoError, DatabaseError, InputError, NotFoundError, NotReadyError
from cxrneo.retrieval.engine import Method
from cxrneo.service import MAX_K, QueryAnswer, Searcher, parse_code
from cxrneo.settings import Settings

log = logging.getLogger("cxrneo.api")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff"}


class QueryRequest(BaseModel):
    """A stored image id or a code, and how to retrieve."""

    id: str | None = Field(None, description="A stored image id (it and, optionally, its patient are left out).")
    code: list[float] | None = Field(None, description="A code that is not in the graph (e.g. 1024 floats).")
    k: int = Field(10, ge=1, le=MAX_K, description="How many images to return.")
    method: Method = Field(Method.COMMUNITY, description="Retrieval method.")
    strict: bool = Field(False, description="Stop when weighted modularity stops rising (may return fewer).")
    exclude_patient: bool = Field(False, description="Also leave out the query patient's other images (id only).")

    @model_validator(mode="after")
    def _one_target(self) -> "QueryRequest":
        if (self.id is None) == (self.code is None):
            raise ValueError("give exactly one of id and code")
        if self.code is not None and self.exclude_patient:
            raise ValueError("exclude_patient needs an id (a code has no patient)")
        return self


def _status(e: CxrneoError) -> int:
    if isinstance(e, NotReadyError | DatabaseError):
        return 503
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, ConfigError | InputError):
        return 400
    return 500


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def create_app(searcher: Searcher, token: str | None = None, max_upload_bytes: int = 20 << 20) -> FastAPI:
    """The app around one shared Searcher (which follows the graph's generations per request)."""
    app = FastAPI(title="cxrneo", summary="Content-based chest X-ray retrieval over a Neo4j graph",
                  version=_version())

    def authorised(request: Request) -> None:
        if not token:
            return
        got = request.headers.get("authorization", "")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())):
            raise HTTPException(401, "missing or wrong bearer token")

    auth = [Depends(authorised)]

    @app.exception_handler(CxrneoError)
    async def _cxrneo_error(_: Request, e: CxrneoError) -> JSONResponse:
        return JSONResponse({"error": _one_line(str(e))}, status_code=_status(e))

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, e: HTTPException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status_code == 401 else None
        return JSONResponse({"error": _one_line(str(e.detail))}, status_code=e.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": _one_line(f"{where + ': ' if where else ''}{first.get('msg', 'bad request')}")},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Neo4j reachable, generation and communityGeneration, the checkpoint's hash."""
        return searcher.health()

    @app.get("/images/{image_id}", dependencies=auth)
    def image(image_id: str) -> dict[str, Any]:
        """The stored record of one image: labels, patient, view, community, ..."""
        return searcher.image(image_id)

    @app.post(
        "/query", dependencies=auth, response_model=QueryAnswer,
        openapi_extra={"requestBody": {"content": {
            "application/json": {"schema": QueryRequest.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "k": {"type": "integer"},
                "method": {"type": "string"}, "strict": {"type": "boolean"}}}},
        }, "required": True}},
    )
    async def query(request: Request) -> QueryAnswer:
        """Query by stored id or code (JSON), or by an uploaded image file (multipart, as /query/image)."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InputError("multipart queries need an image file in the field 'file'")
            return await _image_query(upload, str(form.get("k", "10")), str(form.get("method", "community")),
                                      str(form.get("strict", "false")))
        raw = await _body(request)
        try:
            req = QueryRequest.model_validate(json.loads(raw or b"null"))
        except json.JSONDecodeError:
            raise InputError("the request body is not JSON (or use multipart with an image file)") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InputError(f"{where + ': ' if where else ''}{first['msg']}") from None
        if req.id is not None:
            return await run_in_threadpool(searcher.by_id, req.id, req.k, req.method, req.strict, req.exclude_patient)
        return await run_in_threadpool(searcher.by_code, parse_code(req.code), req.k, req.method, req.strict)

    @app.post("/query/image", dependencies=auth, response_model=QueryAnswer)
    async def query_image(
        file: Annotated[UploadFile, File(description="A chest X-ray: PNG, JPEG or DICOM.")],
        k: Annotated[str, Form()] = "10",
        method: Annotated[str, Form()] = "community",
        strict: Annotated[str, Form()] = "false",
    ) -> QueryAnswer:
        """Query by an uploaded image file, embedded by the service's checkpoint (`serve --checkpoint`)."""
        return await _image_query(file, k, method, strict)

    async def _body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes:
            raise HTTPException(413, f"request larger than {max_upload_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload_bytes:
                raise HTTPException(413, f"request larger than {max_upload_bytes} bytes")
        return bytes(body)

    async def _image_query(upload: Any, k: str, method: str, strict: str) -> QueryAnswer:
        try:
            k_int = int(k)
        except ValueError:
            raise InputError(f"k must be a whole number, got {k!r}") from None
        if strict.lower() not in ("true", "false", "1", "0"):
            raise InputError(f"strict must be true or false, got {strict!r}")
        name = Path(getattr(upload, "filename", "") or "upload").name
        suffix = Path(name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            suffix = ".png"
        data = await upload.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"upload larger than {max_upload_bytes} bytes")
        if not data:
            raise InputError("the uploaded file is empty")
        with tempfile.TemporaryDirectory(prefix="cxrneo-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                return await run_in_threadpool(searcher.by_image, path, k_int, method,
                                               strict.lower() in ("true", "1"), name)
            except InputError as e:  # name the upload, not the temporary file
                raise InputError(str(e).replace(str(path), name)) from None

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxrneo")
    except PackageNotFoundError:
        return "0"


def serve(
    settings: Settings, host: str, port: int, checkpoint: Path | None, device: str, max_upload_mb: float,
    blas_threads: int, say: Callable[[str], None], warn: Callable[[str], None],
) -> None:
    """Open the graph (and the checkpoint) and serve until interrupted (what `cxrneo serve` runs)."""
    import ipaddress

    import uvicorn
    from threadpoolctl import threadpool_limits

    if not 0 < port < 65536:
        raise ConfigError(f"port must be 1-65535, got {port}")
    if blas_threads < 1:
        raise ConfigError(f"--blas-threads must be at least 1, got {blas_threads}")
    if max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    token = settings.api_token.get_secret_value() if settings.api_token else None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        warn(f"serving on {host} without CXRNEO_API_TOKEN: anyone who reaches it can query")
    # One BLAS thread: the batched scan runs on one core while the other serves HTTP, Python and
    # Neo4j round trips (measured on 2 cores: a batch of 8 in 114 ms instead of 169 ms; same bits).
    threadpool_limits(limits=blas_threads, user_api="blas")
    searcher = Searcher.connect(settings, checkpoint, device)
    try:
        searcher.warm()
        say(f"graph open: {searcher.health().get('images')} images, generation "
            f"{searcher.graph.meta.generation if searcher.graph.meta else '-'}")
    except CxrneoError as e:  # not ready yet (no graph, communities pending): serve anyway, /health says why
        warn(str(e))
    app = create_app(searcher, token=token, max_upload_bytes=int(max_upload_mb * (1 << 20)))
    say(f"cxrneo serving on http://{host}:{port} (OpenAPI at /docs)" + (", token required" if token else ""))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        searcher.close()
