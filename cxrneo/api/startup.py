"""Process start-up of `cxrneo serve`: its options checked, the graph and the checkpoint opened, the
app built (cxrneo/api/app.py) and served by uvicorn until interrupted."""

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from cxrneo.api.app import create_app
from cxrneo.errors import ConfigError, CxrneoError
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import Workers
from cxrneo.settings import Settings


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
        from cxrneo.pacs.dicomweb import DicomWeb

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
