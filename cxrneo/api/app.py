"""The HTTP API of `cxrneo serve`: the retrieval service for other programs (FastAPI, OpenAPI at /docs).

GET  /           the viewer (cxrneo/web): query by image or id, results with findings, the neighbourhood
POST /query      {"id": ...} or {"code": [...]} as JSON, or an image file as multipart form data
POST /query/image  the same upload, as its own documented route
GET  /images/{id}  the stored record of one image
GET  /images/{id}/pixels?size=N  a stored image as a PNG (files only under `serve --images DIR`)
POST /images/render  an uploaded image as a PNG, as the model reads it
POST /subgraph   the SIMILAR edges among some images, with the Cypher for Neo4j Browser
GET  /explain?query=ID&hit=ID  where two stored images are alike (similarity maps, PNG or JSON; &region= a box of the query)
POST /keep       similar cases kept in the PACS as a DICOM key object (`serve --dicomweb URL --pacs-write`)
GET  /config     what this service offers the viewer
GET  /health     Neo4j reachable, generations, checkpoint hash
GET  /metrics    Prometheus metrics (the monitor role or above; cxrneo/api/monitor.py)

The routes live in cxrneo/api/routes (one router per concern) and take what they need from the
dependencies of cxrneo/api/deps.py. Every error is JSON `{"error": "one line"}` with a 4xx/5xx
status, never a stack trace (cxrneo/api/answers.py).
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cxrneo.access.authenticate import Authenticator
from cxrneo.api import answers
from cxrneo.api.deps import ApiSettings
from cxrneo.api.gate import LOOPBACK_NAMES, Gate
from cxrneo.api.logs import LogSink
from cxrneo.api.monitor import Monitor
from cxrneo.api.notes import Trail
from cxrneo.api.observe import Observe
from cxrneo.api.routes import admin, archive, explain, info, keep, neighbourhood, query
from cxrneo.api.uploads import MULTIPART_SLACK
from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import Workers


def create_app(
    searcher: Searcher, token: str | None = None, max_upload_bytes: int = 20 << 20, browser_url: str | None = None,
    viewer_url: str | None = None, workers: Workers | None = None, access: Authenticator | None = None,
    trail: Trail | None = None, hosts: frozenset[str] = LOOPBACK_NAMES, log: LogSink | None = None,
    pacs_write: bool = False,
) -> FastAPI:
    """The app around one shared Searcher (which follows the graph's generations per request); heavy
    work goes through ``workers`` (a bounded queue with a deadline; by default 2 threads, 8 waiting, 30 s).
    ``access``: the credentials it takes (default: ``token`` alone, loopback); ``trail``: where the
    audit entries go (`cxrneo serve` always keeps one); ``hosts``: the Host names it answers for; ``log``:
    where each request's JSON line goes (None: no line per request); ``pacs_write``: POST /keep may store
    key objects in the searcher's PACS."""
    app = FastAPI(title="cxrneo", summary="Content-based chest X-ray retrieval over a Neo4j graph",
                  version=info.version())
    app.state.searcher = searcher
    app.state.settings = ApiSettings(max_upload_bytes, browser_url, viewer_url, pacs_write)
    app.state.workers = workers or Workers()
    app.state.access = access or Authenticator(token=token)
    app.state.audit_file = getattr(trail, "path", None)
    # who, how large and the audit entry are settled around the routes (cxrneo/api/gate.py); the roles
    # are each router's dependency (cxrneo/api/deps.py: need)
    app.add_middleware(Gate, access=app.state.access, max_body=max_upload_bytes + MULTIPART_SLACK, hosts=hosts,
                       trail=trail)
    answers.install(app)
    routers = (info, query, archive, explain, neighbourhood, keep, admin)
    for routes in routers:
        app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=info.WEB), name="static")
    app.state.monitor = Monitor(searcher, app.state.workers, info.version())
    known = [r for r in app.router.routes if hasattr(r, "path")] + [r for m in routers for r in m.router.routes]
    app.add_middleware(Observe, monitor=app.state.monitor, routes=known, log=log)  # outside the gate
    return app
