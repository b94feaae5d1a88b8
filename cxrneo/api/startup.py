"""Process start-up of `cxrneo serve`: its options checked, the graph and the checkpoint opened, the
app built (cxrneo/api/app.py) and served by uvicorn until interrupted."""

import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from cxrneo.access.authenticate import Authenticator
from cxrneo.api.app import create_app
from cxrneo.api.gate import LOOPBACK_NAMES
from cxrneo.api.logs import LogSink
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
    pacs_cache_mb: int = 2048  # with dicomweb: the retrieved instances kept, in MB (LRU)
    pacs_write: bool = False  # with dicomweb: POST /keep may store key objects in it (read-only otherwise)
    heavy_workers: int = 2  # threads for heavy work (uploads embedded, maps, renders)
    heavy_queue: int = 8  # heavy jobs that may wait; past that 503 with Retry-After
    deadline: float = 30.0  # seconds a request may take before a one-line 503
    allowed_hosts: list[str] = []  # Host names it answers for, beside the loopback names and the bind address
    audit: Path | None = None  # the audit trail (default: Settings.audit_file, beside the database)
    audit_syslog: str | None = None  # also send each entry to syslog: udp://host:port or tcp://host:port
    oidc_issuer: str | None = None  # single sign-on: the identity provider whose JWTs are accepted
    oidc_audience: str | None = None
    oidc_role_claim: str = "roles"
    tls_cert: Path | None = None  # HTTPS: a PEM certificate (chain) and its private key
    tls_key: Path | None = None
    log_format: str = "text"  # text: warnings and errors as plain lines, no line per request; json: see api/logs.py
    log_file: Path | None = None  # with json: the log's file (default stderr)

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
        if self.pacs_write and not self.dicomweb:
            raise ConfigError("--pacs-write needs --dicomweb (the PACS to store key objects in)")
        if self.pacs_cache_mb < 1:
            raise ConfigError(f"--pacs-cache-mb must be at least 1, got {self.pacs_cache_mb}")
        if self.images is not None and not self.images.is_dir():
            raise ConfigError(f"--images: {self.images} is not a folder")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"--log-format must be text or json, got {self.log_format!r}")
        if self.log_file is not None and self.log_format != "json":
            raise ConfigError("--log-file holds the JSON log: add --log-format json")
        self._check_access()

    def _check_access(self) -> None:
        if (self.oidc_issuer is None) != (self.oidc_audience is None):
            raise ConfigError("single sign-on needs both --oidc-issuer and --oidc-audience")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("HTTPS needs both --tls-cert and --tls-key")
        for given in (self.tls_cert, self.tls_key):
            if given is not None and not given.is_file():
                raise ConfigError(f"--tls-cert/--tls-key: {given} is not a file")
        for host in self.allowed_hosts:
            if not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", host):
                raise ConfigError(f"--allowed-host takes a host name or address without a port, got {host!r}")

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    def hosts(self) -> frozenset[str]:
        """The Host names this service answers for: the loopback names, the bind address and, bound to
        every interface, this machine's names; plus --allowed-host."""
        import socket

        names = set(LOOPBACK_NAMES) | {h.strip("[]").lower() for h in self.allowed_hosts}
        if self.host in ("0.0.0.0", "::"):
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        else:
            names.add(self.host.strip("[]").lower())
        return frozenset(names)


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


def access_of(settings: Settings, opts: ServeOptions) -> Authenticator:
    """The credentials the service takes: the users' keys, CXRNEO_API_TOKEN, the identity provider's
    tokens. A service bound beyond loopback with none of them refuses to start (it would serve anyone)."""
    from cxrneo.access.users import UserStore

    oidc = None
    if opts.oidc_issuer and opts.oidc_audience:
        from cxrneo.access.oidc import OidcVerifier

        oidc = OidcVerifier(opts.oidc_issuer, opts.oidc_audience, opts.oidc_role_claim, opts.ca_bundle)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    access = Authenticator(token=token, users=UserStore(settings.users_file), oidc=oidc, loopback=opts.loopback)
    if not access.configured() and not opts.loopback:
        raise ConfigError(f"refusing to serve on {opts.host} without authentication: add a user "
                          "(cxrneo users add NAME --role viewer), set CXRNEO_API_TOKEN or give --oidc-issuer")
    return access


def serve(settings: Settings, opts: ServeOptions, say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Open the graph (and the checkpoint) and serve until interrupted (what `cxrneo serve` runs)."""
    import uvicorn
    from threadpoolctl import threadpool_limits
    from uvicorn.config import LOGGING_CONFIG

    opts.check()
    log = _json_log(opts)
    if log is not None:  # the start-up's warnings become JSON lines of the log too
        import logging

        warn = logging.getLogger("cxrneo.serve").warning
    access = access_of(settings, opts)
    from cxrneo.access.audit import AuditTrail

    if not opts.loopback and opts.tls_cert is None:
        warn(f"serving on {opts.host} over plain HTTP: keys and images cross the network in clear "
             "(give --tls-cert/--tls-key, or put a TLS proxy in front)")
    _bounded_malloc()
    # One BLAS thread: a float32 scan runs on one core while the other serves HTTP, Python and
    # Neo4j round trips (measured on 2 cores: a batch of 8 in 114 ms instead of 169 ms).
    threadpool_limits(limits=opts.blas_threads, user_api="blas")
    pacs = None
    if opts.dicomweb:
        from cxrneo.pacs.dicomweb import DicomWeb

        pacs = DicomWeb.from_settings(opts.dicomweb, settings, opts.ca_bundle)
    trail = AuditTrail(opts.audit or settings.audit_file, syslog=opts.audit_syslog)
    searcher = Searcher.connect(settings, opts.checkpoint, opts.device, opts.images, pacs, serving=True,
                                pacs_cache_bytes=opts.pacs_cache_mb << 20)
    try:
        searcher.warm()
        health = searcher.health()
        say(f"graph open: {health.get('images')} images, generation "
            f"{searcher.graph.meta.generation if searcher.graph.meta else '-'}; first pass {health.get('scan')} "
            f"on {health.get('cpu')}")
    except CxrneoError as e:  # not ready yet (no graph, communities pending): serve anyway, /health says why
        warn(str(e))
    app = create_app(searcher, max_upload_bytes=int(opts.max_upload_mb * (1 << 20)),
                     browser_url=browser_url(settings, opts.browser_url), viewer_url=opts.viewer_url,
                     workers=Workers(opts.heavy_workers, opts.heavy_queue, opts.deadline), access=access,
                     trail=trail, hosts=opts.hosts(), log=log, pacs_write=opts.pacs_write)
    scheme, shown = ("https" if opts.tls_cert else "http"), "localhost" if opts.host in ("127.0.0.1", "::1") else opts.host
    say(f"cxrneo serving on {scheme}://{opts.host}:{opts.port} (the viewer: {scheme}://{shown}:{opts.port}/ ; "
        f"OpenAPI at /docs); {'authentication required' if access.configured() else 'no authentication (loopback)'}"
        f"; audit trail {trail.path}")
    try:
        # SIGTERM or Ctrl-C: connections still open after STOP_SECONDS are cut, and heavy work left running
        # in the daemon worker threads is abandoned (nothing the service does writes to the graph)
        # no access log: each request's line is ours (api/logs.py), without query strings; with json,
        # uvicorn's own records go through the root logger's JSON handler (log_config None)
        uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=STOP_SECONDS, limit_concurrency=MAX_CONNECTIONS,
                    ssl_certfile=opts.tls_cert, ssl_keyfile=opts.tls_key,
                    log_config=None if log is not None else LOGGING_CONFIG)
    finally:
        searcher.close()
        trail.close()
        if log is not None:
            log.close()


def _json_log(opts: ServeOptions) -> LogSink | None:
    """With --log-format json: the sink of the request lines, which also takes every warning and error."""
    if opts.log_format != "json":
        return None
    from cxrneo.api.logs import install

    try:
        log = LogSink.open(opts.log_file)
    except OSError as e:
        raise ConfigError(f"--log-file: cannot write {opts.log_file}: {e.strerror or e}") from None
    install(log)
    return log
