"""The HTTP API of `cxrneo serve`: the retrieval service for other programs (FastAPI, OpenAPI at /docs).

GET  /           the viewer (cxrneo/web): query by image or id, results with findings, the neighbourhood
POST /query      {"id": ...} or {"code": [...]} as JSON, or an image file as multipart form data
POST /query/image  the same upload, as its own documented route
GET  /images/{id}  the stored record of one image
GET  /images/{id}/pixels?size=N  a stored image as a PNG (files only under `serve --images DIR`)
POST /images/render  an uploaded image as a PNG, as the model reads it
POST /subgraph   the SIMILAR edges among some images, with the Cypher for Neo4j Browser
GET  /explain?query=ID&hit=ID  where two stored images are alike (similarity maps, PNG or JSON)
GET  /config     what this service offers the viewer
GET  /health     Neo4j reachable, generations, checkpoint hash

Every error is JSON `{"error": "one line"}` with a 4xx/5xx status, never a stack trace.
"""

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxrneo.embed.images import read_grey
from cxrneo.errors import (
    BusyError,
    ConfigError,
    CxrneoError,
    DatabaseError,
    InputError,
    NotFoundError,
    NotReadyError,
    ServiceError,
    TooLargeError,
)
from cxrneo.filters import filter_fields
from cxrneo.gate import Gate
from cxrneo.gate import authorised as gate_authorised
from cxrneo.overlay import pair_png, scale_of, side_png
from cxrneo.pixels import MAX_SIZE, MIN_SIZE, render
from cxrneo.request import MAX_K, MAX_NAME, ImageQuery, Name, QueryRequest, from_form, parse
from cxrneo.retrieval.method import Method
from cxrneo.service import QueryAnswer, Searcher
from cxrneo.settings import Settings
from cxrneo.workers import Workers, in_time

log = logging.getLogger("cxrneo.api")
WEB = Path(__file__).resolve().parent / "web"  # the viewer's static files
NO_STORE = {"Cache-Control": "no-store"}
MULTIPART_SLACK = 64 << 10  # room for a multipart body's boundaries and small fields around an upload
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}
MAX_FILES = 16  # image files in one multipart query (the query and its examples)
MAX_FIELDS = 32  # text fields in one multipart query
MAX_FIELD_BYTES = 256 << 10  # one text field of a multipart query


class ErrorAnswer(BaseModel):
    """Every error: one line, never a stack trace."""

    error: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route may give (all ErrorAnswer)."""
    words = {400: "Bad request", 401: "Missing or wrong token", 404: "Not found", 413: "Too large",
             422: "Invalid parameter", 503: "Busy, past its deadline, or the graph is not ready"}
    return {c: {"model": ErrorAnswer, "description": words[c]} for c in codes}


COMMON = (401, 422, 503)
ImageId = Annotated[str, PathParam(max_length=MAX_NAME, description="A stored image id.")]


class SubgraphRequest(BaseModel):
    """Images whose neighbourhood to draw (a query's hits, and the query when it is stored)."""

    ids: list[Name] = Field(min_length=1, max_length=MAX_K + 1, description="Stored image ids.")


def _status(e: CxrneoError) -> int:
    if isinstance(e, NotReadyError | DatabaseError | ServiceError):
        return 503
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, TooLargeError):
        return 413
    if isinstance(e, ConfigError | InputError):
        return 400
    return 500


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def create_app(
    searcher: Searcher, token: str | None = None, max_upload_bytes: int = 20 << 20, browser_url: str | None = None,
    viewer_url: str | None = None, workers: Workers | None = None,
) -> FastAPI:
    """The app around one shared Searcher (which follows the graph's generations per request); heavy
    work goes through ``workers`` (a bounded queue with a deadline; by default 2 threads, 8 waiting, 30 s)."""
    heavy = workers or Workers()
    deadline = heavy.deadline
    app = FastAPI(title="cxrneo", summary="Content-based chest X-ray retrieval over a Neo4j graph",
                  version=_version())

    # the token and the size are checked from the headers before any route runs (cxrneo/gate.py); the
    # dependency below says the same in the OpenAPI schema and guards any route the gate would let by
    app.add_middleware(Gate, token=token, max_body=max_upload_bytes + MULTIPART_SLACK)

    def authorised(request: Request) -> None:
        if not gate_authorised(dict(request.headers), token):
            raise HTTPException(401, "missing or wrong bearer token")

    auth = [Depends(authorised)]

    @app.exception_handler(CxrneoError)
    async def _cxrneo_error(_: Request, e: CxrneoError) -> JSONResponse:
        headers = {"Retry-After": str(e.retry_after)} if isinstance(e, BusyError) else None
        return JSONResponse({"error": _one_line(str(e))}, status_code=_status(e), headers=headers)

    @app.exception_handler(StarletteHTTPException)  # ours and the router's (404, 405): one JSON line each
    async def _http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
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

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The viewer (static; it asks the token-protected routes below for everything it shows)."""
        return FileResponse(WEB / "index.html", headers=NO_STORE)

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/config", dependencies=auth, responses=_errors(401))
    def config() -> dict[str, Any]:
        """What this service offers the viewer: methods, K's bound, image queries, pixels, Neo4j Browser."""
        return {
            "version": _version(), "methods": [m.value for m in Method], "max_k": MAX_K,
            "image_queries": searcher.image_queries,
            "pixels": searcher.files.root is not None or searcher.pacs is not None,
            "browser": browser_url, "viewer_url": viewer_url, "findings": searcher.findings(),
            "features": ["filters", "examples", *(["sliders"] if searcher.image_queries else []),
                         *(["maps"] if searcher.image_queries and (searcher.files.root or searcher.pacs) else [])],
            "filters": filter_fields(),
        }

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        """ok / not ready / empty / unavailable; with the token (or none set) also the generations, counts,
        threshold and checkpoint hashes."""
        doc = searcher.health()
        return doc if gate_authorised(dict(request.headers), token) else {"status": doc["status"]}

    @app.get("/images/{image_id}", dependencies=auth, responses=_errors(*COMMON, 404))
    async def image(image_id: ImageId) -> dict[str, Any]:
        """The stored record of one image: labels, patient, view, community, ..."""
        return await in_time(deadline, searcher.image, image_id)

    @app.get("/images/{image_id}/pixels", dependencies=auth, response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "The image as an 8-bit grey PNG."},
                        **_errors(*COMMON, 404)})
    async def pixels(image_id: ImageId, size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)] = 256) -> Response:
        """A stored image as a PNG, longest side `size`, rendered as embedding reads it (DICOM windowed)."""
        try:
            png = await in_time(deadline, searcher.pixels, image_id, size)
        except InputError as e:
            raise HTTPException(422, str(e)) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    @app.post("/images/render", dependencies=auth, response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "The upload as an 8-bit grey PNG."},
                         **_errors(*COMMON, 400, 413)})
    async def render_upload(
        file: Annotated[UploadFile, File(description="A chest X-ray: PNG, JPEG or DICOM.")],
        size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)] = 512,
    ) -> Response:
        """An uploaded image as the model reads it (the viewer's preview of a query file; nothing is kept)."""
        with _uploaded(file) as (path, name):
            await _save(file, path, max_upload_bytes)
            try:
                png = await heavy.run(render, path, size)
            except TooLargeError as e:
                raise TooLargeError(str(e).replace(str(path), name)) from None
            except InputError as e:
                raise HTTPException(422, str(e).replace(str(path), name)) from None
        return Response(png, media_type="image/png")

    @app.get("/explain", dependencies=auth, response_model=None,
             responses={200: {"content": {"image/png": {}, "application/json": {}},
                              "description": "The pair as a PNG, one side's overlay, or the grids as JSON."},
                        **_errors(*COMMON, 400, 404, 413)})
    async def explain(
        query: Annotated[str, Query(max_length=MAX_NAME, description="A stored image id.")],
        hit: Annotated[str, Query(max_length=MAX_NAME, description="Another stored image id.")],
        form: Annotated[Literal["png", "json"], Query(alias="format")] = "png",
        side: Annotated[Literal["pair", "query", "hit"], Query(description="Both images, or one with its map.")] = "pair",
        size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)] = 320,
    ) -> Response | dict[str, Any]:
        """Where two archived X-rays are alike: each image's map of per-cell contributions to their
        cosine (the maps sum to it exactly), drawn over the image (`serve --checkpoint` and `--images`)."""
        def work() -> Response | dict[str, Any]:
            maps, qpath, hpath = searcher.explain(query, hit)
            if form == "json":
                return {"query": query, "hit": hit, "cosine": maps.cosine, "grid": list(maps.query.shape),
                        "query_map": maps.query.tolist(), "hit_map": maps.hit.tolist()}
            greys = [read_grey(p, size) for p in (qpath, hpath)]
            if side == "pair":
                png = pair_png(greys[0], greys[1], maps, (query, hit))
            else:
                png = side_png(*((greys[0], maps.query) if side == "query" else (greys[1], maps.hit)), scale_of(maps))
            return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300",
                                                                   "X-Cosine": f"{maps.cosine:.6f}"})
        return await heavy.run(work)

    @app.post("/subgraph", dependencies=auth, responses=_errors(*COMMON, 400))
    async def subgraph(req: SubgraphRequest) -> dict[str, Any]:
        """The stored images among `ids`, their communities, the SIMILAR edges between them and the
        Cypher that shows the same subgraph in Neo4j Browser."""
        return await in_time(deadline, searcher.subgraph, req.ids)

    @app.post("/query", dependencies=auth, response_model=QueryAnswer,
              openapi_extra=_body_schema(json=QueryRequest, form=ImageQuery), responses=_errors(*COMMON, 400, 404, 413))
    async def query(request: Request) -> QueryAnswer:
        """Query by stored id or code (JSON), or by an uploaded image file (multipart, as /query/image)."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await _image_query(request)
        req = parse(QueryRequest, _json(await _body(request)))
        return await in_time(deadline, searcher.search, req)

    @app.post("/query/image", dependencies=auth, response_model=QueryAnswer,
              openapi_extra=_body_schema(form=ImageQuery), responses=_errors(*COMMON, 400, 404, 413))
    async def query_image(request: Request) -> QueryAnswer:
        """Query by an uploaded image file, embedded by the service's checkpoint (`serve --checkpoint`)."""
        return await _image_query(request)

    async def _body(request: Request) -> bytes:
        body = await request.body()  # the gate has bounded it
        if len(body) > max_upload_bytes:
            raise HTTPException(413, f"request larger than {max_upload_bytes} bytes")
        return body

    async def _image_query(request: Request) -> QueryAnswer:
        """The one place uploads are read: the form's options validated as the JSON route's, the file
        bounded and kept in a private temporary file while it is embedded."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InputError("image queries are multipart form data with the image in the field 'file'")
        form = await _form(request)
        try:
            return await _answer_uploads(form)
        finally:
            await form.close()  # the spooled uploads

    async def _answer_uploads(form: Any) -> QueryAnswer:
        uploads = [u for u in form.getlist("file") if not isinstance(u, str)]
        if not uploads:
            raise InputError("multipart queries need an image file in the field 'file'")
        options = from_form({n: v for n, v in form.multi_items() if n != "file" and isinstance(v, str)})
        room = max_upload_bytes
        with ExitStack() as stack:
            files = []
            for upload in uploads:
                files.append(stack.enter_context(_uploaded(upload)))
                room -= await _save(upload, files[-1][0], room)
            try:
                return await heavy.run(searcher.search_images, files, options)
            except InputError as e:  # name the uploads, not the temporary files
                message = str(e)
                for path, name in files:
                    message = message.replace(str(path), name)
                raise type(e)(message) from None

    return app


def _json(raw: bytes) -> Any:
    """A JSON body, any decoding problem a one-line InputError (bad UTF-8, huge numbers, deep nesting)."""
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
    """A multipart body within bounds: at most MAX_FILES files and MAX_FIELDS fields of MAX_FIELD_BYTES.
    A body refused part way is read to its end first (the gate bounds it), so that the client, still
    sending, reads the one-line answer instead of a reset connection."""
    done = False

    async def receive() -> Any:
        nonlocal done
        message = await request.receive()
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    try:
        form = await Request(request.scope, receive).form(max_files=MAX_FILES, max_fields=MAX_FIELDS,
                                                          max_part_size=MAX_FIELD_BYTES)
    except StarletteHTTPException as e:
        while not done:
            await receive()
        raise InputError(_one_line(str(e.detail))) from None
    return form


@contextmanager
def _uploaded(upload: Any) -> Iterator[tuple[Path, str]]:
    """A private temporary file for an upload (removed afterwards) and the name the client gave it."""
    name = Path(getattr(upload, "filename", "") or "upload").name
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="cxrneo-upload-") as tmp:
        yield Path(tmp) / f"upload{suffix if suffix in IMAGE_SUFFIXES else '.png'}", name


async def _save(upload: Any, path: Path, room: int) -> int:
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


def _body_schema(json: type[BaseModel] | None = None, form: type[BaseModel] | None = None) -> dict[str, Any]:
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxrneo")
    except PackageNotFoundError:
        return "0"


class ServeOptions(BaseModel):
    """How `cxrneo serve` runs (its flags)."""

    host: str = "127.0.0.1"
    port: int = 8000
    checkpoint: Path | None = None
    device: str = "auto"
    max_upload_mb: float = 20.0
    blas_threads: int = 1
    images: Path | None = None
    browser_url: str | None = None  # None: the local server's Browser when Neo4j is on loopback; "": no link
    viewer_url: str | None = None  # a study viewer's address with {StudyInstanceUID} (and {SeriesInstanceUID})
    dicomweb: str | None = None  # a PACS to retrieve images from over WADO-RS when no local file has them
    ca_bundle: Path | None = None
    heavy_workers: int = 2  # threads for heavy work (uploads embedded, maps, renders)
    heavy_queue: int = 8  # heavy jobs that may wait; past that 503 with Retry-After
    deadline: float = 30.0  # seconds a request may take before a one-line 503

    def check(self) -> None:
        check_viewer_url(self.viewer_url)
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if self.blas_threads < 1:
            raise ConfigError(f"--blas-threads must be at least 1, got {self.blas_threads}")
        if self.max_upload_mb <= 0:
            raise ConfigError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.heavy_workers < 1 or self.heavy_queue < 0:
            raise ConfigError(f"--heavy-workers must be at least 1 and --heavy-queue 0 or more, got "
                              f"{self.heavy_workers} and {self.heavy_queue}")
        if not 0 < self.deadline <= 3600:
            raise ConfigError(f"--deadline must be 0 to 3600 seconds, got {self.deadline}")
        if self.images is not None and not self.images.is_dir():
            raise ConfigError(f"--images: {self.images} is not a folder")


STOP_SECONDS = 3  # how long a stopping service waits for the requests in flight
MAX_CONNECTIONS = 512  # connections and tasks at once; past that uvicorn answers 503 at once

VIEWER_FIELDS = ("{StudyInstanceUID}", "{SeriesInstanceUID}", "{SOPInstanceUID}")


def check_viewer_url(template: str | None) -> None:
    """A viewer URL template is an http(s) address naming {StudyInstanceUID}, with no other field."""
    from urllib.parse import urlsplit

    if template is None:
        return
    rest = template
    for field in VIEWER_FIELDS:
        rest = rest.replace(field, "")
    if urlsplit(template).scheme not in ("http", "https") or "{StudyInstanceUID}" not in template \
            or "{" in rest or "}" in rest:
        raise ConfigError("--viewer-url must be an http(s) address with {StudyInstanceUID} (and optionally "
                          "{SeriesInstanceUID}, {SOPInstanceUID}), e.g. http://pacs:8042/ui/app/#/viewer?study={StudyInstanceUID}")


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def browser_url(settings: Settings, given: str | None) -> str | None:
    """Where Neo4j Browser is: as given, else the local server's HTTP port when Neo4j is on loopback."""
    from urllib.parse import urlsplit

    if given is not None:
        return given or None
    host = urlsplit(settings.neo4j_uri).hostname or ""
    return f"http://{host}:{settings.http_port}/browser/" if _is_loopback(host) else None


def _bounded_malloc() -> None:
    """glibc: a fixed mmap threshold (allocations of 256 kB and more come from the system and go back to
    it when freed, rather than growing the heap after the first large buffer is freed) and at most two
    arenas, so that a long-running service's memory stays near what it uses (a no-op elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 256 << 10)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def serve(settings: Settings, opts: ServeOptions, say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Open the graph (and the checkpoint) and serve until interrupted (what `cxrneo serve` runs)."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    opts.check()
    _bounded_malloc()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if not _is_loopback(opts.host) and not token:
        warn(f"serving on {opts.host} without CXRNEO_API_TOKEN: anyone who reaches it can query")
    # One BLAS thread: a float32 scan runs on one core while the other serves HTTP, Python and
    # Neo4j round trips (measured on 2 cores: a batch of 8 in 114 ms instead of 169 ms).
    threadpool_limits(limits=opts.blas_threads, user_api="blas")
    pacs = None
    if opts.dicomweb:
        from cxrneo.dicomweb import DicomWeb

        pacs = DicomWeb.from_settings(opts.dicomweb, settings, opts.ca_bundle)
    searcher = Searcher.connect(settings, opts.checkpoint, opts.device, opts.images, pacs, serving=True)
    try:
        searcher.warm()
        say(f"graph open: {searcher.health().get('images')} images, generation "
            f"{searcher.graph.meta.generation if searcher.graph.meta else '-'}")
    except CxrneoError as e:  # not ready yet (no graph, communities pending): serve anyway, /health says why
        warn(str(e))
    app = create_app(searcher, token=token, max_upload_bytes=int(opts.max_upload_mb * (1 << 20)),
                     browser_url=browser_url(settings, opts.browser_url), viewer_url=opts.viewer_url,
                     workers=Workers(opts.heavy_workers, opts.heavy_queue, opts.deadline))
    shown = "localhost" if opts.host in ("127.0.0.1", "::1") else opts.host
    say(f"cxrneo serving on http://{opts.host}:{opts.port} (the viewer: http://{shown}:{opts.port}/ ; OpenAPI at /docs)"
        + (", token required" if token else ""))
    try:
        # SIGTERM or Ctrl-C: connections still open after STOP_SECONDS are cut, and heavy work left running
        # in the daemon worker threads is abandoned (nothing the service does writes to the graph)
        uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=STOP_SECONDS, limit_concurrency=MAX_CONNECTIONS)
    finally:
        searcher.close()
