"""Neo4jGraph: the GraphView of the stored graph, cached until GraphMeta's generations change."""

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.db.connection import Database
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.errors import ConfigError, NotFoundError
from cxrneo.graph import normalise
from cxrneo.records import CommunityStats, Hit, ImageRecord
from cxrneo.retrieval.engine import Method, Retriever

PAGE = 2_000
SUBGRAPHS_KEPT = 8


class Neo4jGraph:
    """Reads community statistics, LINKED counts, codes and community subgraphs through cypher/.

    Everything read is kept in memory, keyed by (generation, communityGeneration); `refresh`
    (called by `retriever`) drops it all when an ingest or a community run changed the graph.
    """

    def __init__(self, db: Database, page: int = PAGE) -> None:
        self.db = db
        self.page = page
        self.meta: GraphMeta | None = None
        self._clear()

    def _clear(self) -> None:
        self._stats: dict[int, CommunityStats] | None = None
        self._links: dict[int, dict[int, int]] | None = None
        self._ids: list[str] | None = None
        self._unit: np.ndarray | None = None
        self._community: dict[str, int] = {}
        self._subgraphs: OrderedDict[int, dict[str, list[str]]] = OrderedDict()
        self._retriever: Retriever | None = None

    def refresh(self) -> GraphMeta:
        """Read GraphMeta; drop every cache when the graph or its communities changed."""
        meta = graph_meta(self.db)
        if meta is None:
            raise NotFoundError("the database holds no cxrneo graph: run `cxrneo ingest` first")
        if meta.communityGeneration != meta.generation:
            raise ConfigError(
                f"communities (generation {meta.communityGeneration}) are older than the graph "
                f"(generation {meta.generation}): run `cxrneo communities` first"
            )
        old = self.meta
        if old is None or (old.generation, old.communityGeneration) != (
            meta.generation,
            meta.communityGeneration,
        ):
            self._clear()
        self.meta = meta
        return meta

    def retriever(self) -> Retriever:
        """A Retriever over the current graph, rebuilt only when the graph changed."""
        meta = self.refresh()
        if self._retriever is None:
            ids, unit = self.codes()
            self._retriever = Retriever(self, unit, ids, meta.threshold)
        return self._retriever

    def codes(self) -> tuple[list[str], np.ndarray]:
        """Every image id (sorted) and its unit code, read once per generation in pages."""
        if self._ids is None or self._unit is None:
            ids: list[str] = []
            rows: list[list[float]] = []
            after = ""
            while True:
                page = self.db.read("read_image_codes", after=after, limit=self.page)
                for r in page:
                    if r["community"] is None:
                        raise ConfigError(f"image {r['id']} has no community: run `cxrneo communities`")
                    ids.append(r["id"])
                    rows.append(r["code"])
                    self._community[r["id"]] = int(r["community"])
                if len(page) < self.page:
                    break
                after = page[-1]["id"]
            if not ids:
                raise NotFoundError("the database holds no images: run `cxrneo ingest` first")
            self._ids, self._unit = ids, normalise(np.array(rows, dtype=np.float32))
        return self._ids, self._unit

    @property
    def total_edges(self) -> int:
        return (self.meta or self.refresh()).edges

    def community_stats(self) -> Mapping[int, CommunityStats]:
        if self._stats is None:
            self._stats = {
                int(r["id"]): CommunityStats(id=r["id"], n=r["n"], l=r["l"], d=r["d"])
                for r in self.db.read("read_community_stats")
            }
        return self._stats

    def between(self, c: int) -> Mapping[int, int]:
        if self._links is None:
            links: dict[int, dict[int, int]] = {}
            for r in self.db.read("read_community_links"):
                a, b, e = int(r["a"]), int(r["b"]), int(r["edges"])
                links.setdefault(a, {})[b] = e
                links.setdefault(b, {})[a] = e
            self._links = links
        return self._links.get(c, {})

    def community_of(self, image_id: str) -> int:
        self.codes()
        try:
            return self._community[image_id]
        except KeyError:
            raise NotFoundError(f"no image {image_id!r} in the database") from None

    def members(self, c: int) -> Sequence[str]:
        return list(self._subgraph(c))

    def neighbours(self, image_id: str) -> Sequence[str]:
        return self._subgraph(self.community_of(image_id))[image_id]

    def _subgraph(self, c: int) -> dict[str, list[str]]:
        hit = self._subgraphs.get(c)
        if hit is None:
            hit = {
                r["id"]: list(r["neighbours"]) for r in self.db.read("read_community_subgraph", community=c)
            }
            self._subgraphs[c] = hit
            while len(self._subgraphs) > SUBGRAPHS_KEPT:
                self._subgraphs.popitem(last=False)
        else:
            self._subgraphs.move_to_end(c)
        return hit

    def records(self, ids: Sequence[str]) -> dict[str, ImageRecord]:
        """Labels and patient of the given images (for displaying hits)."""
        return {
            r["id"]: ImageRecord(id=r["id"], labels=tuple(r["labels"] or ()), patient_id=r["patientId"] or "")
            for r in self.db.read("find_images", ids=list(ids))
        }

    def patient_images(self, patient_id: str) -> frozenset[str]:
        """Every image id of one patient."""
        if not patient_id:
            return frozenset()
        return frozenset(r["id"] for r in self.db.read("find_patient_images", patientId=patient_id))


@dataclass(frozen=True)
class Answer:
    """Hits (with their findings) and the time the retrieval itself took."""

    hits: list[Hit]
    seconds: float
    excluded: int


def answer(
    graph: Neo4jGraph,
    code: np.ndarray,
    k: int,
    method: Method = Method.COMMUNITY,
    strict: bool = False,
    exclude: frozenset[str] = frozenset(),
) -> Answer:
    """Retrieve for one query code against the stored graph; labels come from the Image nodes."""
    retriever = graph.retriever()
    t0 = time.perf_counter()
    hits = retriever.query(code, k, method=method, strict=strict, exclude=exclude)
    seconds = time.perf_counter() - t0
    records = graph.records([h.image_id for h in hits])
    hits = [
        h.model_copy(update={"labels": records[h.image_id].labels}) if h.image_id in records else h
        for h in hits
    ]
    return Answer(hits=hits, seconds=seconds, excluded=len(exclude))


def stored_query(
    graph: Neo4jGraph, image_id: str, exclude_patient: bool
) -> tuple[np.ndarray, frozenset[str]]:
    """The stored code of a database image and what its query excludes: itself (and its patient)."""
    code = graph.retriever().code_of(image_id)
    exclude = {image_id}
    if exclude_patient:
        rec = graph.records([image_id]).get(image_id)
        exclude |= graph.patient_images(rec.patient_id if rec else "")
    return code, frozenset(exclude)


def example_queries(db: Database, n: int = 3) -> list[str]:
    """Ids of stored images with findings and the most neighbours (for demos and smoke tests)."""
    return [str(r["id"]) for r in db.read("find_example_queries", n=n)]
