"""Backup and restore of the local server's graph: `neo4j-admin database dump` / `load` (offline, as the
Community edition allows), each checked.

`dump` records beside the dump file (FILE.json) what the graph held: GraphMeta, the stored counts
and the answers of a few probe queries. `load` puts the dump in place of the database, starts the
server again and refuses in one line unless GraphMeta, the counts and the probe answers are the
same as at the dump. The local server is stopped for either and started again afterwards, error
or not; no writer may hold the lease when a dump or load begins.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel

from cxrneo.db import server
from cxrneo.db.connection import Database
from cxrneo.db.lease import writer_lease
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.errors import ConfigError, DatabaseError, InputError, ServerError
from cxrneo.retrieval.question import Question
from cxrneo.settings import Settings

DATABASE = "neo4j"
PROBES = 3  # stored images whose answers a dump records
PROBE_K = 10


class Manifest(BaseModel):
    """What a dump held: its GraphMeta (None for an empty database), counts and probe answers."""

    version: int = 1
    meta: GraphMeta | None
    counts: dict[str, int]
    probes: dict[str, dict[str, list[str]]]  # image id -> method -> ids of the answer


def _state(db: Database) -> Manifest:
    """The graph as it is now: GraphMeta, counts, and (when it can answer) the probe answers."""
    from cxrneo.db.stored import StoredGraph, example_queries

    meta = graph_meta(db)
    counts = {k: int(v) for k, v in db.read("count_graph")[0].items()}
    probes: dict[str, dict[str, list[str]]] = {}
    if meta is not None and meta.writing is None and meta.communityGeneration == meta.generation:
        retriever = StoredGraph(db, None).retriever()  # read from Neo4j itself, no local snapshot
        for image in example_queries(db, PROBES):
            code, alone = retriever.code_of(image), frozenset({image})
            probes[image] = {m: [h.image_id for h in retriever.query(code, Question(PROBE_K, m, exclude=alone))]
                             for m in ("knn", "community")}
    stable = meta.model_dump(exclude={"storedNodes", "storedEdges", "storedCommunities", "storedLinked"}) \
        if meta is not None else None
    return Manifest(meta=GraphMeta(**stable) if stable else None, counts=counts, probes=probes)


def _admin(cfg: server.ServerConfig, *args: str) -> None:
    cmd = [server.java(), "-cp", f"{cfg.dist / 'lib'}/*", f"-Dbasedir={cfg.home}", server.ADMIN, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=server.admin_env(cfg), cwd=cfg.home)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-4:])
        raise ServerError(f"neo4j-admin {args[0]} {args[1]} failed (exit {done.returncode}): {tail[-600:]}")


def manifest_path(dump_file: Path) -> Path:
    return dump_file.with_name(dump_file.name + ".json")


def _idle(db: Database, what: str) -> Manifest:
    """The state to record or compare, read while no writer runs (the lease is held for the read)."""
    with writer_lease(db, what):
        return _state(db)


def dump(settings: Settings, cfg: server.ServerConfig, out: Path) -> Manifest:
    """Dump the local server's database to ``out`` (+ ``out``.json), stopping and restarting it."""
    out = Path(out).expanduser().absolute()
    if out.exists():
        raise ConfigError(f"{out} exists: choose a new file (a backup is never overwritten)")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a folder")
    password = settings.password()
    with Database.connect(settings) as db:
        state = _idle(db, "db dump")
    tmp = Path(tempfile.mkdtemp(prefix=".cxrneo-dump-", dir=out.parent))
    server.stop(cfg)
    try:
        _admin(cfg, "database", "dump", DATABASE, f"--to-path={tmp}")
        os.replace(tmp / f"{DATABASE}.dump", out)
        manifest_path(out).write_text(state.model_dump_json(indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        server.start(cfg, password)
    return state


def load(settings: Settings, cfg: server.ServerConfig, src: Path) -> Manifest:
    """Replace the local server's database by the dump ``src`` and check it against ``src``.json."""
    src = Path(src).expanduser().absolute()
    if not src.is_file():
        raise InputError(f"{src}: no such dump file")
    try:
        want = Manifest.model_validate_json(manifest_path(src).read_text(encoding="utf-8"))
    except OSError:
        raise InputError(f"{manifest_path(src)}: missing (written by `cxrneo db dump` beside the dump)") from None
    except ValueError as e:
        raise InputError(f"{manifest_path(src)}: unreadable ({str(e).splitlines()[0]})") from None
    password = settings.password()
    with Database.connect(settings) as db, writer_lease(db, "db load"):
        pass  # refused here while a writer runs
    tmp = Path(tempfile.mkdtemp(prefix=".cxrneo-load-"))
    server.stop(cfg)
    try:
        os.symlink(src, tmp / f"{DATABASE}.dump")
        _admin(cfg, "database", "load", DATABASE, f"--from-path={tmp}", "--overwrite-destination=true")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        server.start(cfg, password)
    with Database.connect(settings) as db:
        got = _idle(db, "db load (check)")
    if got != want:
        differs = [k for k in ("meta", "counts", "probes") if getattr(got, k) != getattr(want, k)]
        raise DatabaseError(f"the loaded database differs from the dump's record ({', '.join(differs)}): "
                            f"{src} may be damaged or another dump's")
    return got
