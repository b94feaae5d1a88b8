"""What the service is and offers: GET / (the page), GET /config (what the page may show),
GET /health (ready or why not) and GET /metrics (for Prometheus)."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from cxrneo.access.identity import Identity, Permission, Role
from cxrneo.api.answers import errors
from cxrneo.api.deps import ApiSettings, Archive, Caller, Config, MaybeCaller, Monitoring, need
from cxrneo.filters import describe
from cxrneo.pacs.keyobject import MAX_HITS, MAX_NOTE, TITLES
from cxrneo.retrieval.method import Method
from cxrneo.service.request import MAX_K
from cxrneo.service.searcher import Searcher

router = APIRouter()
WEB = Path(__file__).resolve().parents[2] / "web"  # the page's static files
NO_STORE = {"Cache-Control": "no-store"}


def version() -> str:
    try:
        return installed("cxrneo")
    except PackageNotFoundError:
        return "0"


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The viewer (static; it asks the token-protected routes for everything it shows)."""
    return FileResponse(WEB / "index.html", headers=NO_STORE)


@router.get("/config", responses=errors(401))
def config(searcher: Archive, settings: Config, who: Caller) -> dict[str, Any]:
    """What this service offers the viewer: methods, K's bound, image queries, pixels, Neo4j Browser, and
    `keep` (the titles and bounds of keeping hits in the PACS; null when this service does not write to one
    or the caller may not keep)."""
    pictures = searcher.files.root is not None or searcher.pacs is not None
    return {
        "version": version(), "methods": [m.value for m in Method], "max_k": MAX_K,
        "image_queries": searcher.image_queries, "pixels": pictures,
        "browser": settings.browser_url, "viewer_url": settings.viewer_url, "findings": searcher.findings(),
        "filters": describe(), "keep": _keep(searcher, settings, who),
        "features": ["filters", "examples", *(["sliders", "regions"] if searcher.image_queries else []),
                     *(["maps"] if searcher.image_queries and pictures else [])],
    }


def _keep(searcher: Searcher, settings: ApiSettings, who: Identity) -> dict[str, Any] | None:
    """What the page offers to keep ticked hits in the PACS (None: this service does not write to one, or
    the caller's role may not keep)."""
    if not settings.pacs_write or searcher.pacs is None or not who.may(Permission.KEEP):
        return None
    return {"titles": {word: code.meaning for word, code in TITLES.items()}, "max_hits": MAX_HITS, "max_note": MAX_NOTE}


@router.get("/health")
def health(searcher: Archive, who: MaybeCaller) -> dict[str, Any]:
    """ok / not ready / empty / unavailable; with the token (or none set) also the generations, counts,
    threshold and checkpoint hashes."""
    doc = searcher.health()
    return doc if who is not None else {"status": doc["status"]}


@router.get("/metrics", response_class=Response, dependencies=[Depends(need(Role.MONITOR))], responses={
    200: {"content": {"text/plain": {}, "application/openmetrics-text": {}},
          "description": "Prometheus metrics (no patient data; the text format, or OpenMetrics when asked)."},
    **errors(401, 403)})
def metrics(request: Request, monitor: Monitoring) -> Response:
    """The service's metrics for Prometheus: requests, query latencies, exact rechecks, the scan kernel,
    the graph served, caches, the heavy-work queue, PACS retrievals. Needs the monitor role or above."""
    body, kind = monitor.scrape(request.headers.get("accept", ""))
    return Response(body, media_type=kind)
