"""An archive in memory for route tests: what cxrneo.db.stored.StoredGraph offers a Searcher, built from
codes and records with the package's own graph rule and snapshot (no Neo4j)."""

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from cxrneo.db import snapshot
from cxrneo.db.meta import GraphMeta
from cxrneo.db.stored import Generation, browser_cypher
from cxrneo.errors import NotFoundError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.records import ImageRecord
from cxrneo.retrieval import MemoryGraph, Retriever


class MemoryArchive:
    """One generation of a graph over ``codes`` (rows of ``records``) at cosine threshold ``threshold``;
    communities are given per row (a stand-in for Louvain)."""

    db = None

    def __init__(self, records: Sequence[ImageRecord], codes: np.ndarray, threshold: float,
                 community: Sequence[int]) -> None:
        unit = normalise(np.asarray(codes, np.float32))
        edges = similarity_edges(unit, threshold)
        snap = snapshot.from_arrays(records, unit, edges)
        order = {r.id: i for i, r in enumerate(records)}
        com = np.array([community[order[i]] for i in snap.ids], np.int64)
        view = MemoryGraph.from_csr(snap.ids, snap.indptr, snap.indices, com)
        meta = GraphMeta(threshold=threshold, nodes=len(snap.ids), edges=snap.edges, generation=1,
                         communityGeneration=1, graphId=str(uuid.uuid4()), dataGeneration=1)
        self.generation = Generation.of(meta, Retriever(view, snap.unit, snap.ids, threshold), snap.facets(),
                                        "float32", snap.patients)
        self.by_id = {r.id: r for r in records}
        self.community = dict(zip(snap.ids, com.tolist(), strict=True))
        self.pairs = {(snap.ids[a], snap.ids[b]) for a in range(len(snap.ids))
                      for b in snap.indices[snap.indptr[a]:snap.indptr[a + 1]].tolist() if a < b}
        self.unit = dict(zip(snap.ids, np.asarray(snap.unit), strict=True))

    meta = property(lambda self: self.generation.meta)
    opened = property(lambda self: self.generation)
    precision = "float32"
    scan_rechecks = None

    def current(self) -> Generation:
        return self.generation

    def follow(self, stored: GraphMeta | None) -> Generation:
        return self.generation

    def stored_meta(self) -> GraphMeta:
        return self.generation.meta

    def meta_and_records(self, ids: Sequence[str]) -> tuple[GraphMeta, dict[str, ImageRecord]]:
        return self.generation.meta, self.records(ids)

    def retriever(self) -> Retriever:
        return self.generation.retriever

    def in_graph_space(self, meta: GraphMeta, code: np.ndarray) -> np.ndarray:
        return np.asarray(code, np.float32).reshape(-1)

    def direction_in_graph_space(self, meta: GraphMeta, direction: np.ndarray) -> np.ndarray:
        return np.asarray(direction, np.float32)

    def records(self, ids: Sequence[str]) -> dict[str, ImageRecord]:
        return {i: self.by_id[i] for i in ids if i in self.by_id}

    def image(self, image_id: str) -> dict[str, Any]:
        if image_id not in self.by_id:
            raise NotFoundError(f"no image {image_id!r} in the database")
        r = self.by_id[image_id]
        return {"id": r.id, "path": r.path, "labels": list(r.labels), "patientId": r.patient_id, "view": r.view,
                "sex": r.sex, "age": r.age, "studyUid": r.study_uid, "seriesUid": r.series_uid, "split": r.split,
                "community": self.community[image_id]}

    def subgraph(self, ids: Sequence[str]) -> dict[str, object]:
        found = [i for i in dict.fromkeys(ids) if i in self.by_id]
        edges = [{"source": a, "target": b, "cosine": float(self.unit[a] @ self.unit[b])}
                 for a in found for b in found if (a, b) in self.pairs]
        return {"nodes": [{"id": i, "community": self.community[i], "labels": list(self.by_id[i].labels)}
                          for i in found], "edges": edges, "cypher": browser_cypher(ids)}
