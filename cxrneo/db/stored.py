"""StoredGraph: the stored graph as a Retriever, opened from a local snapshot, followed across updates."""

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.db import snapshot, transform
from cxrneo.db.connection import Database
from cxrneo.db.generations import state_key
from cxrneo.db.meta import GraphMeta, graph_meta, meta_of, queryable
from cxrneo.db.queries import cypher
from cxrneo.errors import InputError, NotFoundError
from cxrneo.filters import Facets
from cxrneo.records import ImageRecord
from cxrneo.retrieval.engine import Retriever
from cxrneo.retrieval.fastest import Chosen, Directions, Loaded, float32
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.scan import BatchedScan
from cxrneo.whiten import Whitening


@dataclass(frozen=True)
class Generation:
    """One open generation of the stored graph, built whole: its GraphMeta (checked: complete and
    current), the Retriever that answers for it, its filter columns and its patients."""

    meta: GraphMeta
    retriever: Retriever
    facets: Facets
    precision: str  # the first pass over its codes (float32, bfloat16, lowrank-64, ...)
    patient_of: dict[str, str] = field(repr=False)  # image -> patient ("" unknown)
    images_of: dict[str, list[str]] = field(repr=False)  # patient -> images
    rechecks: float | None = None  # exact values per query its first pass needed when measured

    @classmethod
    def of(cls, meta: GraphMeta, retriever: Retriever, facets: Facets, precision: str,
           patients: Sequence[str], rechecks: float | None = None) -> "Generation":
        """A generation whose images (the retriever's rows) belong to ``patients`` ("" unknown)."""
        patient_of = dict(zip(retriever.ids, patients, strict=True))
        images_of: dict[str, list[str]] = {}
        for i, p in patient_of.items():
            if p:
                images_of.setdefault(p, []).append(i)
        return cls(meta, retriever, facets, precision, patient_of, images_of, rechecks)

    def patient_images(self, image_id: str) -> frozenset[str]:
        """Every stored image of the patient of `image_id` (itself included)."""
        return frozenset(self.images_of.get(self.patient_of.get(image_id, ""), ())) | {image_id}


class StoredGraph:
    """The current Generation of the graph in Neo4j, rebuilt only when GraphMeta's generations change.

    The codes, adjacency, filter columns and communities come from a local snapshot (see
    cxrneo.db.snapshot); image records (labels, path, ...) are read from Neo4j per request.
    Thread-safe: one open at a time; a Generation is never changed once built.
    """

    def __init__(
        self, db: Database, cache: Path | None = None, prefetch: bool = False,
        kernel: Callable[[Loaded], Chosen] = float32,
    ) -> None:
        """`kernel`: chooses the first pass over a generation's codes (float32 BLAS unless a chooser
        is given, e.g. cxrneo.retrieval.fastest.choose)."""
        self.db = db
        self.kernel = kernel
        self.cache = cache
        self.prefetch = prefetch  # build the largest communities' blocks whenever a generation opens
        self._open: Generation | None = None
        self._transforms: dict[str, Whitening] = {}  # by digest: the graph's code transform (whitening)
        self._lock = threading.Lock()

    @property
    def meta(self) -> GraphMeta | None:
        """GraphMeta of the generation open now (None before the first)."""
        return self._open.meta if self._open is not None else None

    @property
    def opened(self) -> Generation | None:
        """The generation open now, as last opened (no round trip to Neo4j; None before the first)."""
        return self._open

    @property
    def precision(self) -> str | None:
        """The first pass of the generation open now."""
        return self._open.precision if self._open is not None else None

    @property
    def scan_rechecks(self) -> float | None:
        """Exact values per query that first pass needed when it was chosen (None: not measured)."""
        return self._open.rechecks if self._open is not None else None

    def current(self) -> Generation:
        """The generation GraphMeta names now (opened when it changed)."""
        return self.follow(graph_meta(self.db))

    def follow(self, stored: GraphMeta | None) -> Generation:
        """The generation that `stored` (GraphMeta as just read; None: no graph) names, opened when it is not
        the one open now; NotReadyError when it cannot answer queries."""
        meta = queryable(stored)
        with self._lock:
            generation = self._open
            if generation is None or state_key(generation.meta) != state_key(meta):
                self._open = None  # free the old one before opening the new one
                if meta.transformSha256 and meta.transformSha256 not in self._transforms:
                    self._transforms[meta.transformSha256] = transform.load(self.db, meta.transformSha256)
                generation = self._open = self._build(meta)
            return generation

    def _build(self, meta: GraphMeta) -> Generation:
        snap, community = snapshot.open_snapshot(self.db, meta, self.cache)
        if not snap.ids:
            raise NotFoundError("the database holds no images: run `cxrneo ingest` first")
        view = MemoryGraph.from_csr(snap.ids, snap.indptr, snap.indices, community)
        unit, n = snap.unit, len(snap.ids)
        reader = snapshot.rows_of(unit)  # single rows: read from the file, not mapped (see release below)
        fitted: list[Principal | None] = []  # the archive's principal directions, fitted once when first asked

        def principal() -> Principal | None:
            if not fitted:
                fitted.append(Principal.fit(reader, n))
            return fitted[0]

        w = self._transforms.get(meta.transformSha256) if meta.transformSha256 else None
        chosen = self.kernel(Loaded(np.ascontiguousarray(unit, dtype=np.float32), reader, meta.threshold,
                                    Directions(principal, None if w is None else w.basis.T)))
        kernel = chosen.kernel
        rows = reader if kernel.name != "float32" else None
        if rows is not None:  # the float32 codes are read only row by row from now on
            snapshot.release(unit)
        retriever = Retriever(view, unit, snap.ids, meta.threshold,
                              scan=BatchedScan(kernel, unit if rows is None else rows), rows=rows, principal=principal)
        if self.prefetch:  # a service: what its queries would otherwise build, under a lock, on first use
            retriever.graph.prefetch()
            retriever.familiarity()
        return Generation.of(meta, retriever, snap.facets(), kernel.name, snap.patients, chosen.rechecks)

    def in_graph_space(self, meta: GraphMeta, code: np.ndarray) -> np.ndarray:
        """A new code (an uploaded image's, a client's) in the space of the stored codes: through the
        graph's transform when it has one (cxrneo.db.transform), else as it is."""
        code = np.asarray(code, dtype=np.float32).reshape(-1)
        w = self._transform(meta)
        if w is None:
            return code
        if code.shape[0] != w.basis.shape[0]:
            raise InputError(f"code has {code.shape[0]} values, the graph's codes {w.basis.shape[0]}")
        out: np.ndarray = w.apply(code[None])[0]
        return out

    def direction_in_graph_space(self, meta: GraphMeta, direction: np.ndarray) -> np.ndarray:
        """A direction of the raw code space (a classifier row) in the space of the stored codes."""
        w = self._transform(meta)
        return np.asarray(direction, np.float32) if w is None else w.direction(direction)

    def _transform(self, meta: GraphMeta) -> Whitening | None:
        if not meta.transformSha256:
            return None
        with self._lock:
            w = self._transforms.get(meta.transformSha256)
        if w is None:
            w = transform.load(self.db, meta.transformSha256)
            with self._lock:
                self._transforms[meta.transformSha256] = w
        return w

    def stored_meta(self) -> GraphMeta | None:
        """GraphMeta as stored now (None for an empty database); DatabaseError when Neo4j is down."""
        return graph_meta(self.db)

    def retriever(self) -> Retriever:
        """The Retriever of the current generation."""
        return self.current().retriever

    def records(self, ids: Sequence[str]) -> dict[str, ImageRecord]:
        """Labels, patient, view, sex and age of the given images (for displaying hits)."""
        return {r["id"]: _record(r) for r in self.db.read("find_images", ids=list(ids))}

    def meta_and_records(self, ids: Sequence[str]) -> tuple[GraphMeta | None, dict[str, ImageRecord]]:
        """GraphMeta as stored now (None: no graph) and the records of the given images, read together in
        one statement (how an answer computed in memory is checked against the stored generation)."""
        rows = self.db.read("fetch_meta_and_images", ids=list(ids))
        if not rows:
            return None, {}
        return meta_of(rows[0]), {r["id"]: _record(r) for r in rows[0]["images"]}

    def subgraph(self, ids: Sequence[str]) -> dict[str, object]:
        """The stored images among ``ids`` with their communities, and the SIMILAR edges between them."""
        found = self.db.read("find_images", ids=list(ids))
        edges = self.db.read("match_subgraph", ids=list(ids))
        return {
            "nodes": [{"id": r["id"], "community": r["community"], "labels": list(r["labels"] or ())} for r in found],
            "edges": [{"source": e["source"], "target": e["target"], "cosine": e["cosine"]} for e in edges],
            "cypher": browser_cypher(ids),
        }

    def image(self, image_id: str) -> dict[str, object]:
        """The stored record of one image (no code), NotFoundError when absent."""
        rows = self.db.read("find_image", id=image_id)
        if not rows:
            raise NotFoundError(f"no image {image_id!r} in the database")
        row = rows[0]
        row["labels"] = list(row["labels"] or [])
        return row


def _record(r: dict[str, Any]) -> ImageRecord:
    """A row of find_images (or an entry of fetch_meta_and_images' images) as the record a hit shows."""
    return ImageRecord(id=r["id"], labels=tuple(r["labels"] or ()), patient_id=r["patientId"] or "",
                       view=r["view"] or "", sex=r["sex"] or "", age=r["age"],
                       study_uid=r["studyUid"] or "", series_uid=r["seriesUid"] or "")


def browser_cypher(ids: Sequence[str]) -> str:
    """The subgraph statement with the ids written in as a Cypher list: text for Neo4j Browser's editor,
    never run by cxrneo (JSON string literals are valid Cypher string literals)."""
    return cypher("browse_subgraph").replace("$ids", "[" + ", ".join(json.dumps(str(i)) for i in ids) + "]")


def example_queries(db: Database, n: int = 3) -> list[str]:
    """Ids of stored images with findings and the most neighbours (for demos and smoke tests)."""
    return [str(r["id"]) for r in db.read("find_example_queries", n=n)]
