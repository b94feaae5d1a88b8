"""Load images and SIMILAR edges into Neo4j: batched, idempotent, resumable, verified."""

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from cxrneo.archive.codes import Codes
from cxrneo.db import snapshot, transform
from cxrneo.db.connection import Database
from cxrneo.db.lease import Lease, writer_lease
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.db.schema import build_vector_index, drop_vector_index, ensure_schema, vector_index_state
from cxrneo.errors import ConfigError, DatabaseError, InputError
from cxrneo.filters import stored_properties
from cxrneo.graph import EdgeFn, Edges, GraphStats, degree_stats, normalise, resolve_threshold, similarity_edges

NODE_BATCH = 1_000
# progress(phase, done, total): phases 'images' and 'edges'; the CLI renders it
Progress = Callable[[str, int, int], None]
EDGE_BATCH = 50_000
# Transactions in flight at once: the client builds the next batch while two commit. On the 2-core
# VM, rewriting 2.5 M edges at 112,120 codes: 1 writer of 10,000 edges 38,300 rel/s, 2 of 50,000
# 53,600 (scripts/bench_build.py; README, Build figures).
WRITERS = 2
MAX_WRITERS = 8


class IngestReport(BaseModel):
    """What an ingest wrote and what the graph holds afterwards."""

    threshold: float
    nodes: int
    edges: int
    nodes_written: int
    edges_created: int
    edges_merged: int
    sources_skipped: int
    generation: int
    changed: bool
    seconds: float
    node_seconds: float
    edge_seconds: float
    codes_transform: str = "raw codes"  # how the stored codes were transformed (cxrneo.db.transform)
    vector_index: str = "none"  # image_code afterwards: "built" by this ingest, "kept" (updated), "none"
    index_seconds: float = 0.0  # building it (part of `seconds`)

    @property
    def rel_per_s(self) -> float:
        written = self.edges_created + self.edges_merged
        return written / self.edge_seconds if self.edge_seconds > 0 else 0.0


def build(
    db: Database,
    codes: Codes,
    threshold: float | None = None,
    mean_degree: float | None = None,
    batch: int = EDGE_BATCH,
    progress: Progress | None = None,
    snapshot_dir: Path | None = None,
    edge_fn: EdgeFn = similarity_edges,
    writers: int = WRITERS,
    whiten: str | None = None,
    whiten_shrink: float = 0.0,
    vector_index: bool = False,
) -> tuple[GraphStats, IngestReport]:
    """Codes -> (the graph's transform, see cxrneo.db.transform) -> T -> exact edges of all codes
    (`edge_fn`: FAISS, a GPU, or a merged edges file) -> ingest (what `cxrneo ingest` runs); with
    `snapshot_dir`, the local snapshot of the new generation is written for fast readers; with
    `vector_index`, the vector index is built if the graph has none (see `ingest`)."""
    check_batch(batch, writers)
    if len(codes) == 0:
        raise InputError("the codes file holds no codes: nothing to ingest")
    meta = graph_meta(db)
    w, how = transform.for_ingest(db, meta, codes, whiten, whiten_shrink)
    if w is not None:
        codes = codes.with_codes(w.apply(codes.codes))
    unit = normalise(codes.codes)
    t = resolve_threshold(meta.threshold if meta else None, threshold, mean_degree, unit)
    edges = edge_fn(unit, t)
    stats = degree_stats(len(codes), edges, t)
    report = ingest(db, codes, edges, t, batch=batch, progress=progress, writers=writers,
                    transform_sha=w.sha256 if w is not None else "", vector_index=vector_index)
    report.codes_transform = how
    stored = graph_meta(db)
    if (snapshot_dir is not None and stored is not None and stored.writing is None
            and (stored.nodes, stored.edges) == (len(codes), len(edges))):
        snapshot.save(snapshot.from_arrays(codes.images, codes.codes, edges), snapshot_dir, stored)
    return stats, report


def check_batch(batch: int, writers: int = WRITERS) -> None:
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1 edge per transaction, got {batch}")
    if not 1 <= writers <= MAX_WRITERS:
        raise ConfigError(f"--writers must be 1 to {MAX_WRITERS} transactions at once, got {writers}")


def _check(db: Database, codes: Codes, edges: Edges, threshold: float) -> tuple[set[str], GraphMeta | None]:
    """Everything that can be refused is refused here, before the first write."""
    n = len(codes)
    if n == 0:
        raise InputError("the codes file holds no codes: nothing to ingest")
    if len(edges.dst) != len(edges) or len(edges.cosine) != len(edges):
        raise InputError("edge arrays differ in length")
    if len(edges) and (
        edges.src.min() < 0 or edges.dst.max() >= n or (edges.src >= edges.dst).any()
    ):
        raise InputError("edges must be row pairs src < dst within the codes")
    if len(edges) and float(edges.cosine.min()) < threshold - 1e-6:
        raise InputError(f"edges below the threshold {threshold} were given")
    meta = graph_meta(db)
    if meta is not None:
        resolve_threshold(meta.threshold, threshold, None, np.empty((0, 0)))
        if meta.codesSha256 and codes.checkpoint_sha256 and meta.codesSha256 != codes.checkpoint_sha256:
            raise InputError(
                f"codes come from checkpoint {codes.checkpoint_sha256[:16]}, the graph from "
                f"{meta.codesSha256[:16]}: codes of different models do not mix"
            )
    existing = {r["id"] for r in db.read("match_image_element_ids")}
    unknown = existing - set(codes.ids)
    if unknown:
        raise InputError(
            f"the graph holds {len(unknown)} images missing from this codes file "
            f"(e.g. {sorted(unknown)[0]}); pass the combined codes file (stored + new images)"
        )
    return existing, meta


def _image_row(codes: Codes, i: int) -> dict[str, object]:
    r = codes.images[i]
    return {
        "id": r.id, "path": r.path, "studyUid": r.study_uid, "seriesUid": r.series_uid,
        "columns": stored_properties(r),
        "code": codes.codes[i].tolist(),
        "codeBytes": np.ascontiguousarray(codes.codes[i], dtype="<f4").tobytes(),
    }


def oriented(ids: list[str], edges: Edges) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges as (smaller-id row, larger-id row, cosine), sorted by the smaller id; plus id ranks."""
    rank = np.empty(len(ids), np.int64)
    rank[np.argsort(np.array(ids, dtype=str), kind="stable")] = np.arange(len(ids))
    swap = rank[edges.src] > rank[edges.dst]
    a = np.where(swap, edges.dst, edges.src)
    b = np.where(swap, edges.src, edges.dst)
    order = np.lexsort((rank[b], rank[a]))
    return a[order], b[order], edges.cosine[order], rank


def _grouped_rows(
    eids: list[str], a: np.ndarray, b: np.ndarray, cos: np.ndarray
) -> list[dict[str, object]]:
    """One row per source: its elementId, its targets' elementIds and the cosines."""
    cuts = np.flatnonzero(np.diff(a)) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(a)]
    bl, cl = b.tolist(), cos.tolist()
    return [
        {"a": eids[int(a[s])], "bs": [eids[j] for j in bl[s:e]], "cs": cl[s:e]}
        for s, e in zip(starts, ends, strict=True)
    ]


def _source_batches(a: np.ndarray, sel: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """Positions `sel` (sorted, grouped by source) cut into batches of whole sources."""
    start = 0
    while start < len(sel):
        end = min(len(sel), start + batch)
        while end < len(sel) and a[sel[end]] == a[sel[end - 1]]:
            end += 1  # never split one source's edges: a stored source is all or nothing
        yield sel[start:end]
        start = end


def ingest(
    db: Database,
    codes: Codes,
    edges: Edges,
    threshold: float,
    batch: int = EDGE_BATCH,
    progress: Progress | None = None,
    writers: int = WRITERS,
    transform_sha: str = "",
    vector_index: bool = False,
) -> IngestReport:
    """Write missing images and SIMILAR edges (`edges` = ALL edges of `codes` at `threshold`; `codes`
    already in the graph's space, `transform_sha` the transform a new graph's codes went through).

    Images already stored are skipped. A source image whose stored out-edges already number
    its expected ones is skipped; one with none gets CREATE (fresh, fast); one partly stored
    gets MERGE. Up to `writers` transactions run at once; each holds whole sources, so no two
    touch the same pair. Counts are verified at the end and GraphMeta is updated.

    The vector index is built when `vector_index` asks for it or the graph already has it. A graph
    that has it keeps it up to date at each write; a first load (no image stored yet) drops it and
    builds it in one go after its writes, and returns once it is online.
    """
    check_batch(batch, writers)
    with writer_lease(db, "ingest") as lease:
        return _ingest(lease.db, codes, edges, threshold, batch, writers, progress, lease, transform_sha,
                       vector_index)


def _write_all(
    write: Callable[[list[dict[str, object]]], object], batches: Iterable[tuple[int, list[dict[str, object]]]],
    writers: int, lease: Lease, done: Callable[[int], None],
) -> None:
    """Run `write` (one statement, its own transaction) over (size, rows) batches, `writers` at once;
    the lease is checked before each batch is sent, and the first failure stops the rest and is raised."""
    with ThreadPoolExecutor(writers, thread_name_prefix="cxrneo-write") as pool:
        pending: dict[Future[object], int] = {}
        try:
            for size, rows in batches:
                while len(pending) >= 2 * writers:  # a bounded queue: rows are built while others commit
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()
                        done(pending.pop(f))
                lease.check()
                pending[pool.submit(write, rows)] = size
            for f in as_completed(list(pending)):
                f.result()
                done(pending.pop(f))
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def _prepare_indexes(db: Database, first_load: bool, asked: bool) -> str:
    """Ensure the schema and say what becomes of the vector index: "kept" (the graph has it, the
    writes update it), "built" (asked for, or a first load into a database that has it: dropped here
    and built in one go after the writes, so that no segment merge is left for later) or "none"."""
    ensure_schema(db)
    had = vector_index_state(db) is not None
    if had and first_load:
        drop_vector_index(db)
    return "kept" if had and not first_load else "built" if had or asked else "none"


def _ingest(
    db: Database, codes: Codes, edges: Edges, threshold: float, batch: int, writers: int,
    progress: Progress | None, lease: Lease, transform_sha: str = "", vector_index: bool = False,
) -> IngestReport:
    t0 = time.perf_counter()
    existing, meta = _check(db, codes, edges, threshold)
    ids = codes.ids
    a, b, cos, _ = oriented(ids, edges)
    expected = np.bincount(a, minlength=len(ids))
    stored = np.zeros(len(ids), np.int64)
    if existing:
        row_of = {x: i for i, x in enumerate(ids)}
        for r in db.read("count_out_edges"):
            stored[row_of[r["id"]]] = r["out"]
    if (stored > expected).any():
        bad = ids[int(np.flatnonzero(stored > expected)[0])]
        raise DatabaseError(
            f"image {bad} has more stored SIMILAR edges than these codes give at T={threshold}: "
            "the stored codes differ from this file"
        )
    index = _prepare_indexes(db, not existing, vector_index)
    new_rows = [i for i, x in enumerate(ids) if x not in existing]
    mode = np.where(stored[a] == 0, 1, np.where(stored[a] == expected[a], 0, 2))  # 0 skip 1 create 2 merge
    if meta is not None and (new_rows or (mode > 0).any()):
        # readers refuse from here until the verified end (a new graph has no GraphMeta yet)
        db.write("begin_graph_write", writing="ingest", seeded=False)
    say = progress or (lambda phase, n, total: None)
    counted = {"images": 0, "edges": 0}

    def advance(phase: str, total: int) -> Callable[[int], None]:
        def one(n: int) -> None:
            counted[phase] += n
            say(phase, counted[phase], total)
        return one

    say("images", 0, len(new_rows))
    images = ((len(chunk), [_image_row(codes, i) for i in chunk])
              for chunk in (new_rows[s : s + NODE_BATCH] for s in range(0, len(new_rows), NODE_BATCH)))
    _write_all(lambda rows: db.write("merge_images", rows=rows), images, writers, lease,
               advance("images", len(new_rows)))
    t1 = time.perf_counter()
    element = {r["id"]: r["element"] for r in db.read("match_image_element_ids")}
    eids = [element[x] for x in ids]
    total = int((mode > 0).sum())
    say("edges", 0, total)
    writes: tuple[tuple[int, Callable[[list[dict[str, object]]], object]], ...] = (
        (1, lambda rows: db.write("create_similar_edges", rows=rows)),
        (2, lambda rows: db.write("merge_similar_edges", rows=rows)),
    )
    for m, write in writes:
        batches = ((len(pos), _grouped_rows(eids, a[pos], b[pos], cos[pos]))
                   for pos in _source_batches(a, np.flatnonzero(mode == m), batch))
        _write_all(write, batches, writers, lease, advance("edges", total))
    t2 = time.perf_counter()
    if index == "built":
        build_vector_index(db)
    t3 = time.perf_counter()
    counts = db.read("count_graph")[0]
    if counts["nodes"] != len(ids) or counts["edges"] != len(edges):
        raise DatabaseError(
            f"after ingest the graph holds {counts['nodes']} images and {counts['edges']} edges, "
            f"expected {len(ids)} and {len(edges)}"
        )
    changed = (meta is None or meta.writing == "ingest"
               or (meta.nodes, meta.edges) != (counts["nodes"], counts["edges"]))
    lease.check()
    out = db.write(
        "merge_graph_meta", threshold=float(threshold), nodes=len(ids), edges=len(edges),
        bump=int(meta is None), codesSha256=codes.checkpoint_sha256,
        transformSha256=meta.transformSha256 if meta is not None else transform_sha,  # an existing graph's is frozen
    )[0]
    return IngestReport(
        threshold=float(threshold), nodes=len(ids), edges=len(edges), nodes_written=len(new_rows),
        edges_created=int((mode == 1).sum()), edges_merged=int((mode == 2).sum()),
        sources_skipped=int(((stored == expected) & (expected > 0)).sum()),
        generation=out["generation"], changed=changed,
        seconds=time.perf_counter() - t0, node_seconds=t1 - t0, edge_seconds=t2 - t1,
        vector_index=index, index_seconds=t3 - t2,
    )


def reset(db: Database) -> None:
    """Delete the whole graph under the writer lease; GraphMeta goes first, so readers refuse."""
    with writer_lease(db, "db reset") as lease:
        lease.db.write("delete_graph_meta")
        lease.db.auto("delete_everything")
