"""First load of a NEW graph with `neo4j-admin database import full` (local server only, offline).

Steps: refuse unless the local server's database is empty; compute the edges; write CSV files
under ``<data_dir>/server/import/bulk``; stop the server; import with
``--overwrite-destination``; start it again; create the schema (cxrneo.db.schema); verify the
counts and write GraphMeta exactly as ``cxrneo ingest`` would.
"""

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cxrneo.archive.codes import Codes
from cxrneo.db import server
from cxrneo.db.connection import Database
from cxrneo.db.ingest import oriented
from cxrneo.db.lease import writer_lease
from cxrneo.db.meta import graph_meta
from cxrneo.db.schema import build_vector_index, ensure_schema, vector_index_state
from cxrneo.errors import ConfigError, DatabaseError, InputError, ServerError
from cxrneo.filters import COLUMNS, stored_properties
from cxrneo.graph import EdgeFn, Edges, GraphStats, degree_stats, normalise, resolve_threshold, similarity_edges
from cxrneo.settings import Settings

ARRAY_DELIMITER = ";"
DATABASE = "neo4j"
_TYPES = {"labels": ":string[]", "text": "", "int": ":long"}  # a filter column's type in the import header
IMAGE_HEADER = ("id:ID(Image)", "path", *(f"{c.property}{_TYPES[c.kind]}" for c in COLUMNS if c.read is not None),
                "studyUid", "seriesUid", "code:float[]")
SIMILAR_HEADER = (":START_ID(Image)", ":END_ID(Image)", "cosine:double")
CHUNK = 2_000
SCHEMA_WAIT_S = 3600


class BulkReport(BaseModel):
    """What the bulk import stored and where the time went."""

    threshold: float
    nodes: int
    edges: int
    generation: int
    check_seconds: float  # start the server if stopped, check it is empty
    edge_seconds: float  # T and the exact edges (FAISS), as in plain ingest
    csv_seconds: float
    import_seconds: float
    restart_seconds: float  # stop before + start after the import
    schema_seconds: float  # constraints, indexes (the vector index when asked for), verification, GraphMeta
    load_seconds: float  # CSV + stop + import + start + schema: what replaces the transactions

    @property
    def rel_per_s(self) -> float:
        return self.edges / self.load_seconds if self.load_seconds > 0 else 0.0


def quote(text: str) -> str:
    """One CSV string field, always quoted (so "" stays an empty string, not a missing value)."""
    if "\n" in text or "\r" in text:
        raise InputError(f"{text[:40]!r} holds a line break: use plain `cxrneo ingest` for such values")
    return '"' + text.replace('"', '""') + '"'


def _labels(labels: Iterable[str]) -> str:
    for name in labels:
        if ARRAY_DELIMITER in name or not name:
            raise InputError(f"label {name!r} is empty or holds {ARRAY_DELIMITER!r}: use plain `cxrneo ingest`")
    return quote(ARRAY_DELIMITER.join(labels))


STORED = tuple(c for c in COLUMNS if c.read is not None)  # in stored_properties' order


def _field(kind: str, value: Any) -> str:
    """One filter column's CSV field."""
    if kind == "labels":
        return _labels(value)
    if kind == "int":
        return "" if value is None else str(int(value))
    return quote("" if value is None else str(value))


def image_lines(codes: Codes) -> Iterable[str]:
    """The data lines of the Image file (header: IMAGE_HEADER); codes as float32 round-trip text."""
    fmt = ARRAY_DELIMITER.join(["%.9g"] * codes.codes.shape[1])
    for r, row in zip(codes.images, codes.codes, strict=True):
        columns = [_field(c.kind, v) for c, v in zip(STORED, stored_properties(r).values(), strict=True)]
        fields = (quote(r.id), quote(r.path), *columns, quote(r.study_uid), quote(r.series_uid),
                  fmt % tuple(row.tolist()))
        yield ",".join(fields) + "\n"


def similar_lines(ids: list[str], edges: Edges) -> Iterable[str]:
    """The data lines of the SIMILAR file: smaller id -> larger id, cosine as the stored double."""
    a, b, cos, _ = oriented(ids, edges)
    qid = [quote(x) for x in ids]
    for s, d, c in zip(a.tolist(), b.tolist(), cos.tolist(), strict=True):
        yield f"{qid[s]},{qid[d]},{c!r}\n"


def _write(path: Path, header: Iterable[str], lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= CHUNK:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def write_csv(folder: Path, codes: Codes, edges: Edges) -> dict[str, Path]:
    """Write images.csv and similar.csv (header on the first line) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"images": folder / "images.csv", "similar": folder / "similar.csv"}
    _write(paths["images"], IMAGE_HEADER, image_lines(codes))
    _write(paths["similar"], SIMILAR_HEADER, similar_lines(codes.ids, edges))
    return paths


def admin_import(cfg: server.ServerConfig, paths: dict[str, Path], threads: int | None = None) -> None:
    """Run `neo4j-admin database import full` on the stopped local server's `neo4j` database."""
    args = ["database", "import", "full", DATABASE, f"--nodes=Image={paths['images']}",
            f"--relationships=SIMILAR={paths['similar']}", "--overwrite-destination=true",
            f"--array-delimiter={ARRAY_DELIMITER}", f"--report-file={paths['images'].parent / 'import.report'}"]
    if threads:
        args.append(f"--threads={threads}")
    cmd = [server.java(), "-cp", f"{cfg.dist / 'lib'}/*", f"-Dbasedir={cfg.home}", server.ADMIN, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=server.admin_env(cfg), cwd=cfg.home)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-4:])
        raise ServerError(f"neo4j-admin import failed (exit {done.returncode}): {tail[-600:]}")


def _local_config(settings: Settings, given: server.ServerConfig | None = None) -> server.ServerConfig:
    if settings.neo4j_database != DATABASE:
        raise ConfigError(f"bulk import writes the database {DATABASE!r}, not {settings.neo4j_database!r}")
    cfg = server.ServerConfig.from_uri(settings.data_dir, settings.neo4j_uri, settings.http_port,
                                       settings.neo4j_heap, settings.neo4j_pagecache)
    if given is not None:
        if (given.bolt_port, given.http_port) != (cfg.bolt_port, cfg.http_port):
            raise ConfigError("the server config's ports differ from the settings' URI")
        cfg = given
    if server.running_pid(cfg) is None and server.port_open(cfg.bolt_port):
        raise ConfigError(f"{settings.neo4j_uri} is not the server `cxrneo db start` runs from "
                          f"{settings.data_dir}: --bulk works on that local server only")
    return cfg


def _refuse_non_empty(settings: Settings) -> bool:
    """Refuse a database that holds anything; whether it has the vector index (the import replaces it)."""
    with Database.connect(settings) as db, writer_lease(db, "ingest --bulk"):
        meta = graph_meta(db)
        if meta is not None:
            raise ConfigError(f"the graph already holds {meta.nodes} images (GraphMeta): --bulk builds a new "
                              "graph only; use plain `cxrneo ingest`, or `cxrneo db reset --yes` first")
        left = db.read("count_all_nodes")[0]["nodes"]
        if left:
            raise ConfigError(f"the database holds {left} nodes: `cxrneo db reset --yes` first")
        return vector_index_state(db) is not None


def bulk_build(
    settings: Settings,
    codes: Codes,
    threshold: float | None = None,
    mean_degree: float | None = None,
    threads: int | None = None,
    cfg: server.ServerConfig | None = None,
    edge_fn: EdgeFn = similarity_edges,
    vector_index: bool = False,
) -> tuple[GraphStats, BulkReport]:
    """Codes -> T -> exact edges -> CSV -> offline import -> schema (the vector index with
    `vector_index` or when the empty database had it, built before this returns) -> verified GraphMeta.

    The server is left running. `cfg` overrides the server config derived from settings (its
    ports must match settings.neo4j_uri); tests use it for a small heap.
    """
    t0 = time.perf_counter()
    if len(codes) == 0:
        raise InputError("the codes file holds no codes: nothing to import")
    cfg = _local_config(settings, cfg)
    password = settings.password()
    server.start(cfg, password)  # a no-op when running; a stopped store must be looked into too
    vector_index = _refuse_non_empty(settings) or vector_index
    t1 = time.perf_counter()
    unit = normalise(codes.codes)
    t = resolve_threshold(None, threshold, mean_degree, unit)
    edges = edge_fn(unit, t)
    stats = degree_stats(len(codes), edges, t)
    t2 = time.perf_counter()
    paths = write_csv(cfg.home / "import" / "bulk", codes, edges)
    t3 = time.perf_counter()
    server.stop(cfg)
    t4 = time.perf_counter()
    try:
        admin_import(cfg, paths, threads)
    except ServerError:
        server.start(cfg, password)  # leave the (still empty) server running as it was
        raise
    t5 = time.perf_counter()
    server.start(cfg, password)
    t6 = time.perf_counter()
    with Database.connect(settings) as conn, writer_lease(conn, "ingest --bulk") as lease:
        db = lease.db  # every write fenced by the lease
        db.auto("write_empty_labels")
        ensure_schema(db, wait_seconds=SCHEMA_WAIT_S)
        if vector_index:
            build_vector_index(db, wait_seconds=SCHEMA_WAIT_S)
        counts = db.read("count_graph")[0]
        if counts["nodes"] != len(codes) or counts["edges"] != len(edges):
            raise DatabaseError(f"after the bulk import the graph holds {counts['nodes']} images and "
                                f"{counts['edges']} edges, expected {len(codes)} and {len(edges)}")
        out = db.write("merge_graph_meta", threshold=float(t), nodes=len(codes), edges=len(edges),
                       bump=1, codesSha256=codes.checkpoint_sha256, transformSha256="")[0]  # raw codes
    t7 = time.perf_counter()
    for p in paths.values():
        p.unlink(missing_ok=True)
    return stats, BulkReport(
        threshold=float(t), nodes=len(codes), edges=len(edges), generation=out["generation"],
        check_seconds=t1 - t0, edge_seconds=t2 - t1, csv_seconds=t3 - t2, import_seconds=t5 - t4,
        restart_seconds=(t4 - t3) + (t6 - t5), schema_seconds=t7 - t6, load_seconds=t7 - t2,
    )
