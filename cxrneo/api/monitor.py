"""What an IT team's Prometheus reads from `cxrneo serve` (GET /metrics): one registry per app, so that
several apps in one process (tests) never share a series.

Per request (cxrneo/api/observe.py) a counter and, for queries, two histograms are updated; everything
else is read when Prometheus scrapes, from what the service holds already: the generation it has open
(no Neo4j round trip), its caches, the heavy-work queue. No label ever carries a patient, an image, a
user or a path: routes are templates (``/images/{image_id}``), methods and statuses come from fixed
sets, caches and retrieval methods are the service's own names.
"""

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from cxrneo.service.searcher import Searcher
from cxrneo.service.workers import Workers

QUERY_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECHECKS = (0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "other"


class Monitor:
    """The metrics of one app: the per-request instruments and, read at scrape time, the service's state."""

    def __init__(self, searcher: Searcher, workers: Workers, version: str) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("cxrneo_http_requests", "HTTP requests answered, by route template, method and "
                                 "status.", ("route", "method", "status"), registry=self.registry)
        self._seconds = Histogram("cxrneo_query_duration_seconds", "Time to answer a query request (POST /query, "
                                  "/query/image), by retrieval method.", ("retrieval",), buckets=QUERY_SECONDS,
                                  registry=self.registry)
        self._rechecks = Histogram("cxrneo_query_exact_rechecks", "Exact cosines a query needed after the first "
                                   "pass over the codes.", buckets=RECHECKS, registry=self.registry)
        self._children: dict[tuple[str, str, int], Any] = {}  # the series, each found once (labels() costs)
        self._timers: dict[str, Any] = {}
        self.registry.register(_State(searcher, workers, version))

    def request(self, route: str, method: str, status: int, seconds: float, retrieval: str | None,
                rechecks: int) -> None:
        """One answered request (``retrieval``: the method of a query, None for other requests)."""
        key = (route, method if method in HTTP_METHODS else "other", status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._requests.labels(key[0], key[1], str(status))
        child.inc()
        if retrieval is not None:
            timer = self._timers.get(retrieval)
            if timer is None:
                timer = self._timers[retrieval] = self._seconds.labels(retrieval)
            timer.observe(seconds)
            self._rechecks.observe(rechecks)

    def scrape(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the format the scraper asks for (Prometheus text, or OpenMetrics), and its type."""
        encode, kind = choose_encoder(accept)
        return encode(self.registry), kind


class _State:
    """A collector of what the service holds, read at scrape time."""

    def __init__(self, searcher: Searcher, workers: Workers, version: str) -> None:
        self.searcher, self.workers, self.version = searcher, workers, version

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("cxrneo_build", "The cxrneo version serving.", {"version": self.version})
        yield from self._graph()
        yield from self._caches()
        yield from self._queue()
        yield from self._pacs()

    def _graph(self) -> Iterator[Metric]:
        opened = self.searcher.graph.opened  # the generation the last request opened: no round trip
        if opened is None:
            return
        yield InfoMetricFamily("cxrneo_scan_kernel", "The first pass over the codes of the open generation.",
                               {"kernel": opened.precision})
        meta = opened.meta
        for name, value, what in (
                ("cxrneo_graph_generation", meta.generation, "GraphMeta's generation of the graph served."),
                ("cxrneo_graph_community_generation", meta.communityGeneration,
                 "GraphMeta's generation of the communities served."),
                ("cxrneo_graph_images", meta.nodes, "Images in the graph served."),
                ("cxrneo_graph_edges", meta.edges, "SIMILAR edges in the graph served."),
                ("cxrneo_graph_threshold", meta.threshold, "The cosine threshold T of the graph served.")):
            yield GaugeMetricFamily(name, what, value=value)

    def _caches(self) -> Iterator[Metric]:
        held = GaugeMetricFamily("cxrneo_cache_held", "What a cache holds, in its unit (bytes, images, entries).",
                                 labels=("cache", "unit"))
        limit = GaugeMetricFamily("cxrneo_cache_limit", "A cache's bound, in its unit.", labels=("cache", "unit"))
        entries = GaugeMetricFamily("cxrneo_cache_entries", "Entries a cache holds.", labels=("cache",))
        hits = CounterMetricFamily("cxrneo_cache_hits", "Lookups a cache answered.", labels=("cache",))
        misses = CounterMetricFamily("cxrneo_cache_misses", "Lookups a cache could not answer.", labels=("cache",))
        for name, use in self.searcher.caches().items():
            held.add_metric((name, use.unit), use.held)
            limit.add_metric((name, use.unit), use.limit)
            entries.add_metric((name,), use.entries)
            hits.add_metric((name,), use.hits)
            misses.add_metric((name,), use.misses)
        yield from (held, limit, entries, hits, misses)

    def _queue(self) -> Iterator[Metric]:
        stats = self.workers.stats()
        yield GaugeMetricFamily("cxrneo_heavy_jobs", "Heavy jobs (uploads, maps, renders) queued or running.",
                                value=stats["admitted"])
        yield GaugeMetricFamily("cxrneo_heavy_capacity", "Heavy jobs that may be queued or running at once.",
                                value=stats["capacity"])
        yield CounterMetricFamily("cxrneo_heavy_refused", "Heavy jobs refused with 503 (queue full).",
                                  value=stats["refused"])
        yield CounterMetricFamily("cxrneo_heavy_abandoned", "Heavy jobs abandoned past the deadline.",
                                  value=stats["abandoned"])

    def _pacs(self) -> Iterator[Metric]:
        cache = self.searcher.instances
        if cache is None:
            return
        yield CounterMetricFamily("cxrneo_pacs_retrievals", "Instances retrieved from the PACS over WADO-RS "
                                  "(tried).", value=cache.misses)
        yield CounterMetricFamily("cxrneo_pacs_retrieval_failures", "Retrievals from the PACS that failed.",
                                  value=cache.failed)
