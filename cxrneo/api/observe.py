"""Around every request, outside the gate: its route template, status and duration counted for
Prometheus (cxrneo/api/monitor.py) and, with `serve --log-format json`, written as one JSON line
(cxrneo/api/logs.py). Refusals by the gate are counted too.

A query route tells what it answered with `answered` (the retrieval method and its exact rechecks);
the rest comes from the request's scope: the route the router matched, the request id and the
caller the gate set. A path no route matches is counted as ``unmatched``, never as itself.
"""

import time
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from cxrneo.api.gate import ASGIApp, Message, Receive, Scope, Send
from cxrneo.api.logs import LogSink
from cxrneo.api.monitor import Monitor
from cxrneo.service.searcher import QueryAnswer

UNMATCHED = "unmatched"


def answered(request: Request, answer: QueryAnswer) -> None:
    """Note a query's retrieval method and exact rechecks for the metrics and the log."""
    state = request.scope.setdefault("state", {})
    state["retrieval"], state["rechecks"] = answer.method, answer.rechecks


class Observe:
    """ASGI middleware: counts each request in ``monitor`` and writes its line to ``log`` (when given)."""

    def __init__(self, app: ASGIApp, monitor: Monitor, routes: list[BaseRoute], log: LogSink | None = None) -> None:
        """``routes``: the app's routes with their templates, looked up for a request refused before routing."""
        self.app, self.monitor, self.routes, self.log = app, monitor, routes, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, t0 = time.time(), time.perf_counter()
        path, root = scope.get("path", ""), scope.get("root_path", "")  # as asked: a mount changes the scope's
        status, counted = 500, False  # 500: what the client gets when the app raises before answering

        async def seen(message: Message) -> None:
            nonlocal status, counted
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                counted = True  # counted before the last byte leaves: a client that has its answer sees it
                self._done(scope, path, root, status, began, time.perf_counter() - t0)
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            if not counted:
                self._done(scope, path, root, status, began, time.perf_counter() - t0)

    def _done(self, scope: Scope, path: str, root: str, status: int, began: float, seconds: float) -> None:
        method = str(scope.get("method", ""))
        route = scope.get("route")
        template = str(route.path) if isinstance(route, APIRoute) else self._template(path, root, method)
        state: dict[str, Any] = scope.get("state") or {}
        retrieval = state.get("retrieval")
        self.monitor.request(template, method, status, seconds, retrieval, state.get("rechecks", 0))
        if self.log is not None:
            who = state.get("identity")
            self.log.request(began, state.get("request"), template, method, status, seconds, retrieval,
                             who.name if who is not None else None)

    def _template(self, path: str, root: str, method: str) -> str:
        """The template of the route a request was for, when no API route answered it: refused before
        routing, a static file, no such route (``unmatched``)."""
        asked = {"type": "http", "path": path, "root_path": root, "method": method}
        for candidate in self.routes:
            if candidate.matches(asked)[0] is not Match.NONE:
                return str(getattr(candidate, "path", UNMATCHED))
        return UNMATCHED
