"""The jobs behind the CLI's write and server commands: one call each, taking the settings.

The CLI parses and presents; these open the database (or the local server's files), check the
options that need knowledge of the system, and run the library. Query jobs live in
cxrneo/service.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cxrneo.db.connection import Database
from cxrneo.errors import ConfigError
from cxrneo.settings import Settings

if TYPE_CHECKING:
    from cxrneo.db.bulk import BulkReport
    from cxrneo.db.communities import CommunityReport
    from cxrneo.db.ingest import IngestReport
    from cxrneo.db.server import ServerConfig
    from cxrneo.evaluate import EvalOptions, EvalResult
    from cxrneo.graph import GraphStats


def server_config(s: Settings) -> "ServerConfig":
    from cxrneo.db.server import ServerConfig

    return ServerConfig.from_uri(s.data_dir, s.neo4j_uri, s.http_port, s.neo4j_heap, s.neo4j_pagecache)


def start_server(s: Settings, say: Callable[[str], None]) -> tuple[bool, "ServerConfig"]:
    """Assemble (first time only) and start the local server; (started now?, its config)."""
    from cxrneo.db import server

    cfg = server_config(s)
    password = s.password()  # before anything is assembled or written
    if not (cfg.dist / "ASSEMBLED").exists():
        say(f"assembling Neo4j + GDS from Maven Central into {cfg.dist} ...")
        say(f"assembled in {server.assemble(cfg):.0f} s")
    return server.start(cfg, password), cfg


def stop_server(s: Settings) -> bool:
    from cxrneo.db import server

    return server.stop(server_config(s))


def reset_graph(s: Settings) -> None:
    """Delete the whole graph, under the writer lease."""
    from cxrneo.db.ingest import reset

    with Database.connect(s) as db:
        reset(db)


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


def ingest_file(
    s: Settings, codes_file: Path, threshold: float | None, mean_degree: float | None, batch: int, bulk: bool,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple["GraphStats", "IngestReport | BulkReport"]:
    """Load a codes file into the graph (transactional, or the offline bulk import)."""
    from cxrneo.codes import load
    from cxrneo.db.ingest import build, check_batch

    check_batch(batch)  # before anything is read or written
    codes = load(codes_file)
    if bulk:
        from cxrneo.db.bulk import bulk_build

        return bulk_build(s, codes, threshold=threshold, mean_degree=mean_degree)
    with Database.connect(s) as db:
        return build(db, codes, threshold=threshold, mean_degree=mean_degree, batch=batch, progress=progress,
                     snapshot_dir=s.snapshot_dir)


def detect_communities(s: Settings, concurrency: int, reseed: bool) -> "CommunityReport":
    from cxrneo.db.communities import MAX_CONCURRENCY, detect

    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be 1 to {MAX_CONCURRENCY} (OpenGDS's limit), got {concurrency}")
    with Database.connect(s) as db:
        return detect(db, concurrency=concurrency, seed_from_existing=reseed)


def evaluate_file(
    s: Settings, codes_file: Path, opts: "EvalOptions", in_memory: bool, progress: Callable[[int], None]
) -> "EvalResult":
    """Evaluate on a codes file: GDS Louvain in Neo4j, or (in_memory) networkx Louvain."""
    from cxrneo import codes as codes_io
    from cxrneo.evaluate import evaluate, louvain_in_memory

    data = codes_io.load(codes_file)
    if in_memory:
        return evaluate(data, opts, lambda c, e, t: louvain_in_memory(c, e, t, opts.seed), progress=progress)
    from cxrneo.service import gds_communities

    with Database.connect(s) as db:
        return evaluate(data, opts, gds_communities(db), progress=progress)
