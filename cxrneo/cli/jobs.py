"""The jobs behind the CLI's write and server commands: one call each, taking the settings.

The CLI parses and presents; these open the database (or the local server's files), check the
options that need knowledge of the system, and run the library. Query jobs live in
cxrneo/service/searcher.py.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cxrneo.db.connection import Database
from cxrneo.errors import ConfigError
from cxrneo.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from cxrneo.archive.edgefile import EdgePart
    from cxrneo.archive.shards import Rows
    from cxrneo.db.backup import Manifest
    from cxrneo.db.bulk import BulkReport
    from cxrneo.db.communities import CommunityReport
    from cxrneo.db.ingest import IngestReport
    from cxrneo.db.server import ServerConfig
    from cxrneo.evaluation.boxed import BoxResult
    from cxrneo.evaluation.evaluate import EvalOptions, EvalResult
    from cxrneo.graph import EdgeFn, Edges, GraphStats
    from cxrneo.pacs.dicomweb import DicomWeb
    from cxrneo.pacs.keeping import Kept
    from cxrneo.pacs.keyobject import KeepRequest


def server_config(s: Settings) -> "ServerConfig":
    from cxrneo.db.server import ServerConfig

    return ServerConfig.from_uri(s.data_dir, s.neo4j_uri, s.http_port, s.neo4j_heap, s.neo4j_pagecache)


def start_server(s: Settings, say: Callable[[str], None]) -> tuple[bool, "ServerConfig"]:
    """Assemble (first time only) and start the local server; (started now?, its config). A
    database an unfinished `db load` set aside is put back first (cxrneo/db/aside.py)."""
    from cxrneo.db import aside, server

    cfg = server_config(s)
    password = s.password()  # before anything is assembled or written
    if not (cfg.dist / "ASSEMBLED").exists():
        say(f"assembling Neo4j + GDS from Maven Central into {cfg.dist} ...")
        say(f"assembled in {server.assemble(cfg):.0f} s")
    if aside.recover(cfg):
        say(f"put back the database an unfinished `db load` had set aside in {aside.aside_dir(cfg)}")
    return server.start(cfg, password), cfg


def stop_server(s: Settings) -> bool:
    from cxrneo.db import server

    return server.stop(server_config(s))


def dump_graph(s: Settings, out: Path) -> "Manifest":
    """`cxrneo db dump`: the local server's database to a file, checked (see cxrneo.db.backup)."""
    from cxrneo.db import backup

    return backup.dump(s, server_config(s), out)


def load_graph(s: Settings, src: Path, warn: Callable[[str], None]) -> "Manifest":
    """`cxrneo db load`: a dump in place of the local server's database, checked against its record
    (the file before anything is touched, the graph before the old one is dropped); `warn` gets
    the one-line warnings (a record too old to hold the file's SHA-256)."""
    from cxrneo.db import backup

    return backup.load(s, server_config(s), src, warn)


def reset_graph(s: Settings) -> None:
    """Delete the whole graph, under the writer lease."""
    from cxrneo.db.ingest import reset

    with Database.connect(s) as db:
        reset(db)


def vector_index(s: Settings, build: bool) -> tuple[bool, float]:
    """`cxrneo db vector-index build|drop` under the writer lease: (whether it changed anything,
    seconds taken). A build returns once the index is online."""
    import time

    from cxrneo.db import schema
    from cxrneo.db.lease import writer_lease

    t0 = time.perf_counter()
    with Database.connect(s) as db, writer_lease(db, f"db vector-index {'build' if build else 'drop'}") as lease:
        had = schema.vector_index_state(lease.db) is not None
        if build:
            schema.build_vector_index(lease.db)
        else:
            schema.drop_vector_index(lease.db)
    return had != build, time.perf_counter() - t0


@dataclass(frozen=True)
class Status:
    pid: int | None
    home: Path
    listening: bool
    versions: dict[str, str] | None
    http_address: str


def status(s: Settings) -> Status:
    """The local server's process, and the versions of whatever answers at the URI (password permitting)."""
    from cxrneo.db import server

    cfg = server_config(s)
    pid = server.running_pid(cfg)
    listening = pid is not None or server.port_open(cfg.bolt_port)
    versions = None
    if listening and s.neo4j_password is not None:
        with Database.connect(s) as db:
            versions = {k: str(v) for k, v in db.read("show_versions")[0].items()}
    return Status(pid=pid, home=cfg.home, listening=listening, versions=versions, http_address=cfg.http_address)


def edge_builder(device: str) -> "EdgeFn":
    """Exact edges on `device`: cpu -> FAISS; cuda -> torch on the GPU (cxrneo/embed/edges.py);
    auto -> the GPU when PyTorch sees one, else FAISS. Both give the same edge set."""
    from cxrneo.graph import similarity_edges

    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return similarity_edges
    from cxrneo.embed import runtime

    dev = runtime.device(device)
    if dev.type == "cpu":
        return similarity_edges
    from cxrneo.embed.edges import device_edges

    def on_gpu(unit_codes: "np.ndarray", threshold: float, *, rows: "Rows | None" = None) -> "Edges":
        return device_edges(unit_codes, threshold, rows=rows, device=dev)

    return on_gpu


def ingest_file(
    s: Settings, codes_file: Path, threshold: float | None, mean_degree: float | None, batch: int, bulk: bool,
    progress: Callable[[str, int, int], None] | None = None, edges_file: Path | None = None, device: str = "auto",
    writers: int = 2, whiten: str | None = None, whiten_shrink: float = 0.0, vector_index: bool = False,
) -> tuple["GraphStats", "IngestReport | BulkReport"]:
    """Load a codes file into the graph (transactional, or the offline bulk import); its edges
    computed on `device`, or read from a whole edges file of these codes (`cxrneo edges`/`merge`);
    whitened as the graph's transform says (`whiten` chooses one for a new graph); `vector_index`
    builds the optional vector index before it returns."""
    from cxrneo.archive import codes as codes_io
    from cxrneo.db.ingest import build, check_batch

    check_batch(batch, writers)  # before anything is read or written
    if whiten not in (None, "none") and (bulk or edges_file is not None):
        raise ConfigError("--whiten computes its edges from the transformed codes: not with --bulk or --edges")
    codes = codes_io.load(codes_file)
    if edges_file is not None:
        from cxrneo.archive import edgefile

        if threshold is not None or mean_degree is not None:
            raise ConfigError("--edges fixes T (the edges file's); give neither --threshold nor --mean-degree")
        part = edgefile.load(edges_file)
        edges = edgefile.edges_for(part, len(codes), codes_io.digest(codes), str(edges_file))
        threshold = part.threshold

        def edge_fn(unit_codes: "np.ndarray", threshold: float, *, rows: "Rows | None" = None) -> "Edges":
            return edges  # checked against these codes above; T is the file's

    else:
        edge_fn = edge_builder(device)
    if bulk:
        from cxrneo.db.bulk import bulk_build

        return bulk_build(s, codes, threshold=threshold, mean_degree=mean_degree, edge_fn=edge_fn,
                          vector_index=vector_index)
    with Database.connect(s) as db:
        return build(db, codes, threshold=threshold, mean_degree=mean_degree, batch=batch, progress=progress,
                     snapshot_dir=s.snapshot_dir, edge_fn=edge_fn, writers=writers, whiten=whiten,
                     whiten_shrink=whiten_shrink, vector_index=vector_index)


def edges_of_file(
    codes_file: Path, out: Path, threshold: float | None, mean_degree: float | None,
    shard: str | None, rows: str | None, device: str,
) -> tuple["EdgePart", "GraphStats"]:
    """`cxrneo edges`: the edges of a block of source rows (a shard, a range, or all) into a file."""
    from cxrneo.archive import codes as codes_io
    from cxrneo.archive import edgefile
    from cxrneo.archive.shards import parse_rows, parse_shard, triangle_rows
    from cxrneo.graph import degree_stats, normalise, resolve_threshold

    if shard is not None and rows is not None:
        raise ConfigError("give --shard or --rows, not both")
    if threshold is None and mean_degree is None:
        raise ConfigError("give --threshold (the graph's T) or --mean-degree")
    build = edge_builder(device)  # refuses a bad device before any work
    codes = codes_io.load(codes_file)
    n = len(codes)
    span = (triangle_rows(n, *parse_shard(shard)) if shard is not None
            else parse_rows(rows, n) if rows is not None else (0, n))
    unit = normalise(codes.codes)
    t = resolve_threshold(None, threshold, mean_degree, unit)
    edges = build(unit, t, rows=span)
    part = edgefile.EdgePart(edges, t, span, n, codes_io.digest(codes))
    edgefile.save(out, part)
    return part, degree_stats(n, edges, t)


@dataclass(frozen=True)
class MergeReport:
    kind: str  # "codes" or "edges"
    parts: int
    rows: int
    written: int  # codes or edges in the merged file
    skipped_report: Path | None


def merge_files(parts: list[Path], out: Path) -> MergeReport:
    """`cxrneo merge`: parts of a sharded `embed` or `edges` into the file of the unsharded run, verified."""
    from cxrneo.archive import codes as codes_io
    from cxrneo.archive import edgefile

    if not parts:
        raise ConfigError("name the part files to merge")
    if out.resolve() in {p.resolve() for p in parts}:
        raise ConfigError(f"--out {out} is one of the parts; write the merged file elsewhere")
    names = [str(p) for p in parts]
    if all(edgefile.is_edges_file(p) for p in parts):
        whole = edgefile.merge([edgefile.load(p) for p in parts], names)
        edgefile.save(out, whole)
        return MergeReport("edges", len(parts), whole.n, len(whole.edges), None)
    codes_parts = [codes_io.load(p, part_ok=True) for p in parts]
    merged = codes_io.merge_parts(codes_parts, names)
    skipped = codes_io.skipped_of_parts(codes_parts)
    codes_io.save(out, merged)
    report = codes_io.write_skipped(out, [(i, path, msg) for _, i, path, msg in skipped])
    return MergeReport("codes", len(parts), len(merged) + len(skipped), len(merged), report)


@dataclass(frozen=True)
class WatchReport:
    """One poll of `cxrneo watch`."""

    instances: int  # in the PACS (of the watched modalities)
    new: int  # embedded and ingested in this poll
    images: int  # in the graph afterwards
    generation: int
    communities_run: bool


def watch_once(
    s: Settings, client: "DicomWeb", checkpoint: Path, codes_file: Path, folder: Path, modalities: tuple[str, ...],
    since: str | None = None, mean_degree: float | None = None, device: str = "auto",
) -> WatchReport:
    """One poll: retrieve the PACS's instances not retrieved yet, embed those not in the codes file,
    append them to it, bring the graph up to the codes file (incremental ingest under the writer
    lease) and its communities up to the graph (the seeded update). Every step is idempotent and
    resumes, so a poll killed anywhere is completed by the next one: nothing lost, nothing doubled."""
    from cxrneo import labels as lsets
    from cxrneo.archive import codes as codes_io
    from cxrneo.db.communities import detect
    from cxrneo.db.ingest import build
    from cxrneo.db.meta import graph_meta
    from cxrneo.embed import checkpoint as ckpt_file
    from cxrneo.embed.extract import embed
    from cxrneo.tables.pacs import pacs_table

    existing = codes_io.load(codes_file) if codes_file.is_file() else None
    known = set(existing.ids) if existing is not None else set()
    label_set = lsets.get(str(ckpt_file.load(checkpoint)["label_set"]))
    table = pacs_table(client, folder, label_set, modalities, since).table
    new_rows = [i for i, r in enumerate(table.records) if r.id not in known]
    codes = existing
    if new_rows:
        part = codes_file.with_name(f"{codes_file.stem}-new.npz")
        embed(checkpoint, table.subset(new_rows), part, workers=0, device=device)
        more = codes_io.load(part)
        codes = more if existing is None else codes_io.append(existing, more)
        tmp = codes_file.with_name(f".{codes_file.stem}-{os.getpid()}.npz")
        codes_io.save(tmp, codes)
        os.replace(tmp, codes_file)  # the codes file is whole before and after
        part.unlink(missing_ok=True)
    assert codes is not None  # pacs_table refuses an empty PACS
    ran = False
    with Database.connect(s) as db:
        meta = graph_meta(db)
        if meta is None or meta.writing is not None or meta.nodes != len(codes):
            build(db, codes, mean_degree=mean_degree if meta is None else None, snapshot_dir=s.snapshot_dir)
            meta = graph_meta(db)
        if meta is not None and (meta.writing is not None or meta.communityGeneration != meta.generation):
            detect(db)
            ran = True
            meta = graph_meta(db)
        assert meta is not None
        return WatchReport(instances=len(table), new=len(new_rows), images=meta.nodes, generation=meta.generation,
                           communities_run=ran)


def keep_cases(s: Settings, dicomweb: str, ca_bundle: Path | None, req: "KeepRequest", observer: str) -> "Kept":
    """`cxrneo keep`: the cases of ``req`` kept in the PACS at ``dicomweb`` as a key object by ``observer``
    (the images' UIDs from the graph, the document stored over STOW-RS; cxrneo.pacs.keeping)."""
    from cxrneo import __version__
    from cxrneo.pacs.dicomweb import DicomWeb
    from cxrneo.pacs.keeping import keep
    from cxrneo.service.searcher import Searcher

    client = DicomWeb.from_settings(dicomweb, s, ca_bundle)
    searcher = Searcher.connect(s)
    try:
        return keep(client, searcher.image, req, observer, f"cxrneo {__version__}")
    finally:
        searcher.close()


def detect_communities(s: Settings, concurrency: int, reseed: bool) -> "CommunityReport":
    from cxrneo.db.communities import MAX_CONCURRENCY, detect

    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be 1 to {MAX_CONCURRENCY} (OpenGDS's limit), got {concurrency}")
    with Database.connect(s) as db:
        return detect(db, concurrency=concurrency, seed_from_existing=reseed)


def map_drawer(checkpoint: Path, size: int = 128) -> Callable[[Path, Path], bytes]:
    """(query file, hit file) -> the hit drawn with its similarity map (the report's gallery), one
    forward pass per pair, each pair drawn once."""
    from functools import lru_cache

    from cxrneo.embed.encoder import Encoder
    from cxrneo.embed.images import read_grey
    from cxrneo.service.overlay import scale_of, side_png

    encoder = Encoder(checkpoint, "auto")

    @lru_cache(maxsize=512)
    def draw(query: Path, hit: Path) -> bytes:
        maps = encoder.explain(query, hit)
        return side_png(read_grey(hit, size), maps.hit, scale_of(maps))

    return draw


def evaluate_file(
    s: Settings, codes_file: Path, opts: "EvalOptions", in_memory: bool, progress: Callable[[int], None]
) -> "EvalResult":
    """Evaluate on a codes file: GDS Louvain on a projection beside the served graph (never
    written), or (in_memory) networkx Louvain."""
    from cxrneo.archive import codes as codes_io
    from cxrneo.evaluation.evaluate import evaluate, louvain_in_memory

    data = codes_io.load(codes_file)
    if in_memory:
        return evaluate(data, opts, lambda c, e, t: louvain_in_memory(c, e, t, opts.seed), progress=progress)
    from cxrneo.db.evaluation import gds_communities

    with Database.connect(s) as db:
        return evaluate(data, opts, gds_communities(db), progress=progress)


def evaluate_boxes_file(
    s: Settings, codes_file: Path, boxes_file: Path, checkpoint: Path, image_root: Path, k: int,
    mean_degree: float, seed: int, in_memory: bool,
) -> "BoxResult":
    """Region against whole-image queries on expert boxes (cxrneo.evaluation.boxed): each box's code
    from its image file's cells through the checkpoint that made the codes."""
    from cxrneo.archive import codes as codes_io
    from cxrneo.embed.encoder import Encoder
    from cxrneo.evaluation import report
    from cxrneo.evaluation.boxed import Boxed, evaluate_boxes, read_boxes
    from cxrneo.evaluation.evaluate import louvain_in_memory

    data = codes_io.load(codes_file)
    boxes = read_boxes(boxes_file)
    encoder = Encoder(checkpoint, "auto")
    if data.checkpoint_sha256 and data.checkpoint_sha256 != encoder.sha256:
        raise ConfigError(f"{checkpoint} is not the checkpoint that made {codes_file}")
    records = {r.id: r for r in data.images}

    def region(b: Boxed) -> "np.ndarray":
        path = report.image_file(records[b.image_id], image_root) or image_root / b.image_id
        return encoder.region(path, b.box)[0]

    if in_memory:
        return evaluate_boxes(data, boxes, region, lambda c, e, t: louvain_in_memory(c, e, t, seed), k=k,
                              mean_degree=mean_degree, seed=seed)
    from cxrneo.db.evaluation import gds_communities

    with Database.connect(s) as db:
        return evaluate_boxes(data, boxes, region, gds_communities(db), k=k, mean_degree=mean_degree, seed=seed)
