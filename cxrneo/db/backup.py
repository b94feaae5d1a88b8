"""Backup and restore of the local server's graph: `neo4j-admin database dump` / `load` (offline, as the
Community edition allows), each checked.

`dump` records beside the dump file (FILE.json) what the graph held: GraphMeta, the stored counts,
the answers of a few probe queries, and the dump file's size and SHA-256. It holds the writer lease
from the reading of that record until the server is up again after the dump, so no write lands in
between (the dump holds that lease too; the record names it, and a load knows it for a dead one).

`load` never risks the graph it replaces. It checks the file's size and SHA-256 against the record
before it touches anything (a record of an older cxrneo has none: a one-line warning says the file
could not be checked). It then stops the server, sets the database aside (cxrneo/db/aside.py, which
also says how a killed load is repaired), loads, starts the server and compares GraphMeta, the
counts and the probe answers with the record. On any failure the old database is put back and the
server started again, so the old graph answers; the old one is deleted only once the new one
verified. No writer may hold the lease when a dump or load begins.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from cxrneo.db import aside, server
from cxrneo.db.connection import Database
from cxrneo.db.lease import Lease, claim, release, writer_lease
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.errors import ConfigError, CxrneoError, DatabaseError, InputError, ServerError
from cxrneo.retrieval.question import Question
from cxrneo.settings import Settings

DATABASE = aside.DATABASE
PROBES = 3  # stored images whose answers a dump records
PROBE_K = 10


class Manifest(BaseModel):
    """What a dump held: its GraphMeta (None for an empty database), counts and probe answers; the
    dump file's size and SHA-256, and the writer lease the dump held (all three absent in the
    records of an older cxrneo, which are still read)."""

    version: int = 2
    meta: GraphMeta | None
    counts: dict[str, int]
    probes: dict[str, dict[str, list[str]]]  # image id -> method -> ids of the answer
    size: int | None = None
    sha256: str | None = None
    lease: str = ""  # the lease owner stored in the dump: dead once the dump is loaded

    def same_graph(self, other: "Manifest") -> list[str]:
        """What differs between the graphs two records describe (empty when they agree)."""
        return [k for k in ("meta", "counts", "probes") if getattr(self, k) != getattr(other, k)]


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


def _file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 in hex) of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return path.stat().st_size, h.hexdigest()


def _give_back(settings: Settings, held: Lease) -> None:
    """Release a lease held across a server restart, through a new connection (the old one's
    sockets died with the server). A lease the database no longer holds is left alone."""
    held._stop.set()
    try:
        with Database.connect(settings) as db:
            release(dataclasses.replace(held, db=db.fenced(held.owner)))
    except CxrneoError:
        pass  # the server is not up: the lease expires, or the next writer on this host recovers it


def dump(settings: Settings, cfg: server.ServerConfig, out: Path) -> Manifest:
    """Dump the local server's database to ``out`` (+ ``out``.json), stopping and restarting it."""
    out = Path(out).expanduser().absolute()
    if out.exists():
        raise ConfigError(f"{out} exists: choose a new file (a backup is never overwritten)")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a folder")
    password = settings.password()
    with Database.connect(settings) as db:
        held = claim(db, "db dump")  # refused while a writer runs; held until the server is back
        try:
            state = _state(db).model_copy(update={"lease": held.owner})
        except BaseException:
            release(held)
            raise
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".cxrneo-dump-", dir=out.parent))
        server.stop(cfg)
        try:
            _admin(cfg, "database", "dump", DATABASE, f"--to-path={tmp}")
            done = tmp / f"{DATABASE}.dump"
            done.chmod(0o600)
            size, digest = _file_digest(done)
            state = state.model_copy(update={"size": size, "sha256": digest})
            record = tmp / "record.json"
            record.write_text(state.model_dump_json(indent=1), encoding="utf-8")
            record.chmod(0o600)
            os.replace(done, out)
            os.replace(record, manifest_path(out))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            server.start(cfg, password)
    finally:
        _give_back(settings, held)
    return state


def _record(src: Path, warn: Callable[[str], None]) -> Manifest:
    """The dump's record, after checking the dump file against it (nothing touched yet)."""
    if not src.is_file():
        raise InputError(f"{src}: no such dump file")
    path = manifest_path(src)
    try:
        want = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError(f"{path}: missing (written by `cxrneo db dump` beside the dump)") from None
    except ValueError as e:
        raise InputError(f"{path}: unreadable ({str(e).splitlines()[0]})") from None
    if want.sha256 is None or want.size is None:
        warn(f"warning: {path} records no SHA-256 (an older cxrneo wrote it): {src} could not be checked")
        return want
    size, digest = _file_digest(src)
    if (size, digest) != (want.size, want.sha256):
        raise InputError(f"{src} does not match its record {path.name} (size {size} vs {want.size} bytes, "
                         f"SHA-256 {digest[:16]}... vs {want.sha256[:16]}...): damaged or another dump's "
                         "record; nothing was changed")
    return want


def _verify(settings: Settings, want: Manifest, src: Path) -> None:
    """Compare the loaded graph with the record (under the lease; the dump's own lease is dead)."""
    with Database.connect(settings) as db, writer_lease(db, "db load (check)", dead=want.lease):
        differs = want.same_graph(_state(db))
    if differs:
        raise DatabaseError(f"the loaded database differs from the dump's record ({', '.join(differs)}): "
                            f"{src} may be damaged or another dump's; the previous database is back")


def _replace(settings: Settings, cfg: server.ServerConfig, src: Path, want: Manifest, password: str) -> None:
    """With the server stopped: set the database aside, load, start, verify; on any failure (an
    interrupt too) put the old database back and start the server on it."""
    aside.set_aside(cfg)
    tmp = Path(tempfile.mkdtemp(prefix=".cxrneo-load-"))
    try:
        try:
            os.symlink(src, tmp / f"{DATABASE}.dump")
            _admin(cfg, "database", "load", DATABASE, f"--from-path={tmp}", "--overwrite-destination=true")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        server.start(cfg, password)
        _verify(settings, want, src)
    except BaseException:
        server.stop(cfg)
        aside.put_back(cfg)
        server.start(cfg, password)
        raise
    aside.discard(cfg)


def load(settings: Settings, cfg: server.ServerConfig, src: Path,
         warn: Callable[[str], None] = lambda line: None) -> Manifest:
    """Replace the local server's database by the dump ``src``, checked against ``src``.json
    before (the file) and after (the graph); the old database stays until the new one verified."""
    src = Path(src).expanduser().absolute()
    want = _record(src, warn)
    password = settings.password()
    if aside.recover(cfg):
        warn(f"put back the database an unfinished `db load` had set aside in {aside.aside_dir(cfg)}")
        server.start(cfg, password)
    with Database.connect(settings) as db:
        held = claim(db, "db load")  # refused here while a writer runs
    try:
        server.stop(cfg)
        _replace(settings, cfg, src, want, password)
    finally:
        _give_back(settings, held)  # a no-op on the loaded database; releases it on the old one
    return want
