"""Local snapshots of the stored graph, so that a reader opens an archive in milliseconds.

A snapshot holds the image ids (sorted), their filter columns (cxrneo.filters.COLUMNS: findings,
patient, view, sex, age, split, ...), their unit codes and the symmetric
CSR adjacency of the SIMILAR edges, as plain ``.npy`` files under the cache folder, keyed by
GraphMeta's ``graphId`` and ``dataGeneration`` (the generation at which images or edges last
changed; community runs do not move it); the communities are one more file keyed by
``communityGeneration``. ``cxrneo ingest`` writes it from the codes it has in hand; a reader that
finds none reads it once from Neo4j (codes as float32 bytes) and keeps it for every later
process. Files are written to a temporary folder and renamed, and checked against GraphMeta's
counts when opened, so a half-written or foreign snapshot is never used.
"""

import hashlib
import json
import mmap
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.db.connection import Database
from cxrneo.db.generations import communities_unchanged, data_generation, data_unchanged
from cxrneo.db.meta import GraphMeta, graph_meta
from cxrneo.errors import ConfigError, DatabaseError, InputError, NotReadyError
from cxrneo.filters import COLUMN, SNAPSHOT_COLUMNS, Facets
from cxrneo.graph import Edges, normalise
from cxrneo.records import ImageRecord

VERSION = 3  # 2: the filter columns; 3: one file per column of cxrneo.filters.COLUMNS
PAGE = 2_000
ARRAYS = ("ids", "unit", "indptr", "indices", *(f"col-{p}" for p in SNAPSHOT_COLUMNS))


@dataclass(frozen=True)
class Snapshot:
    """The stored graph in row order (ids ascending): unit codes, symmetric CSR adjacency and the
    filter columns (by property, as `cxrneo.filters.Column.snapshot` keeps them)."""

    ids: list[str]
    unit: np.ndarray  # float32, N x width, unit rows
    indptr: np.ndarray  # int64, N + 1
    indices: np.ndarray  # int32, neighbour rows, ascending within a row; every edge twice
    columns: dict[str, list[Any]]

    @property
    def edges(self) -> int:
        return int(self.indices.size // 2)

    @property
    def patients(self) -> list[str]:
        return [str(p) for p in self.columns["patientId"]]

    def facets(self) -> Facets:
        """The filter columns (cxrneo/filters.py)."""
        return Facets.from_columns(self.columns)


def from_arrays(records: Sequence[ImageRecord], codes: np.ndarray, edges: Edges) -> Snapshot:
    """A snapshot of codes with their records (any row order) and their edges (row pairs), re-ordered by id."""
    ids = [r.id for r in records]
    order = np.argsort(np.array(ids, dtype=str), kind="stable")
    new_row = np.empty(len(ids), np.int64)
    new_row[order] = np.arange(len(ids))
    src, dst = new_row[edges.src], new_row[edges.dst]
    indptr, indices = _csr(len(ids), src, dst)
    ordered = [records[i] for i in order]
    return Snapshot(
        ids=[r.id for r in ordered], unit=normalise(np.asarray(codes)[order]), indptr=indptr, indices=indices,
        columns={p: [COLUMN[p].snapshot(COLUMN[p].value(r)) for r in ordered] for p in SNAPSHOT_COLUMNS},
    )


def _csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heads = np.concatenate([src, dst]).astype(np.int64)
    tails = np.concatenate([dst, src]).astype(np.int64)
    order = np.lexsort((tails, heads))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(heads, minlength=n))]).astype(np.int64)
    return indptr, tails[order].astype(np.int32)


def folder(cache: Path, meta: GraphMeta) -> Path:
    """Where the snapshot of this graph's images and edges lives."""
    try:  # a database value becomes a path only as a canonical UUID (never "..", "/", ...)
        graph_id = str(uuid.UUID(meta.graphId))
    except ValueError:
        graph_id = ""
    if graph_id != meta.graphId:
        raise NotReadyError(f"GraphMeta.graphId {meta.graphId[:40]!r} is not a UUID: the graph's metadata was "
                            "changed by hand; rebuild it (`cxrneo db reset`, then `cxrneo ingest`)")
    return Path(cache) / graph_id / f"g{data_generation(meta)}"


def save(snap: Snapshot, cache: Path, meta: GraphMeta) -> Path | None:
    """Write the snapshot atomically (None when the graph has no graphId to key it by)."""
    if not meta.graphId:
        return None
    target = folder(cache, meta)
    if (target / "manifest.json").is_file():
        if load(cache, meta) is not None:
            return target
        shutil.rmtree(target, ignore_errors=True)  # damaged: replaced below
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        arrays = {
            "ids": np.array(snap.ids, dtype=str),
            "unit": np.ascontiguousarray(snap.unit, dtype=np.float32),
            "indptr": snap.indptr,
            "indices": snap.indices,
            **{f"col-{p}": _array(p, snap.columns[p]) for p in SNAPSHOT_COLUMNS},
        }
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        manifest = {"version": VERSION, "graphId": meta.graphId, "generation": data_generation(meta),
                    "nodes": len(snap.ids), "edges": snap.edges,
                    "sha256": {name: _file_sha256(tmp / f"{name}.npy") for name in arrays}}
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:  # another process saved the same generation first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(target.parent, keep=target.name)
    _prune_graphs(Path(cache), keep=target.parent.name)
    return target


def _array(prop: str, values: Sequence[Any]) -> np.ndarray:
    return np.array(values, dtype=np.int64 if COLUMN[prop].kind == "int" else str)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _prune(graph_folder: Path, keep: str) -> None:
    """Drop snapshots of older generations of the same graph (best effort)."""
    for old in graph_folder.glob("g*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _prune_graphs(cache: Path, keep: str) -> None:
    """Drop the snapshots of other graphs (a `db reset` and a rebuild give a new graphId; the old one's
    snapshot would stay forever). Only UUID-named folders are touched (best effort; a cache only)."""
    for old in cache.iterdir():
        try:
            canonical = str(uuid.UUID(old.name)) == old.name
        except ValueError:
            canonical = False
        if canonical and old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load(cache: Path, meta: GraphMeta) -> Snapshot | None:
    """The saved snapshot of this generation, memory-mapped; None when absent or not matching."""
    if not meta.graphId:
        return None
    path = folder(cache, meta)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        sums = manifest.pop("sha256", None)
        expected = {"version": VERSION, "graphId": meta.graphId, "generation": data_generation(meta),
                    "nodes": meta.nodes, "edges": meta.edges}
        if manifest != expected or not isinstance(sums, dict) or set(sums) != set(ARRAYS):
            return None
        if any(_file_sha256(path / f"{name}.npy") != sums[name] for name in ARRAYS):
            return None  # damaged on disk: read again and replaced
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in ARRAYS}
    except (OSError, ValueError, AttributeError):
        return None
    snap = Snapshot(
        ids=arrays["ids"].tolist(), unit=arrays["unit"], indptr=np.asarray(arrays["indptr"]),
        indices=arrays["indices"], columns={p: arrays[f"col-{p}"].tolist() for p in SNAPSHOT_COLUMNS},
    )
    n = len(snap.ids)
    if (snap.unit.shape[0] != n or snap.indptr.shape != (n + 1,) or int(snap.indptr[-1]) != snap.indices.size
            or any(len(c) != n for c in snap.columns.values())):
        return None
    return snap


def read(db: Database, meta: GraphMeta, page: int = PAGE) -> Snapshot:
    """Read the whole stored graph once, in pages by id, and check it against GraphMeta."""
    ids: list[str] = []
    columns: dict[str, list[Any]] = {p: [] for p in SNAPSHOT_COLUMNS}
    rows: list[np.ndarray] = []
    outs: list[list[str]] = []
    after = ""
    while True:
        got = db.read("read_snapshot_page", after=after, limit=page, columns=list(SNAPSHOT_COLUMNS))
        for r in got:
            ids.append(r["id"])
            for p, v in zip(SNAPSHOT_COLUMNS, r["columns"], strict=True):
                columns[p].append(COLUMN[p].snapshot(v))
            if r["codeBytes"] is not None:
                rows.append(np.frombuffer(r["codeBytes"], dtype="<f4"))
            else:
                rows.append(np.asarray(r["code"], dtype=np.float32))
            outs.append(r["out"])
        if len(got) < page:
            break
        after = got[-1]["id"]
    if len(ids) != meta.nodes:
        raise DatabaseError(f"the database holds {len(ids)} images but GraphMeta says {meta.nodes}: "
                            "rerun the interrupted `cxrneo ingest`")
    if len({r.size for r in rows}) > 1:
        raise DatabaseError("stored codes differ in width")
    row_of = {x: i for i, x in enumerate(ids)}
    counts = np.fromiter((len(o) for o in outs), np.int64, len(outs))
    src = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
    try:
        dst = np.fromiter((row_of[b] for o in outs for b in o), np.int64, int(counts.sum()))
    except KeyError as e:
        raise DatabaseError(f"an edge points to image {e.args[0]!r}, which is not stored") from None
    if src.size != meta.edges:
        raise DatabaseError(f"the database holds {src.size} SIMILAR edges but GraphMeta says {meta.edges}: "
                            "rerun the interrupted `cxrneo ingest`")
    indptr, indices = _csr(len(ids), src, dst)
    unit = normalise(np.stack(rows)) if rows else np.empty((0, 0), np.float32)
    return Snapshot(ids=ids, unit=unit, indptr=indptr, indices=indices, columns=columns)



def communities(db: Database, snap: Snapshot, cache: Path | None, meta: GraphMeta) -> np.ndarray:
    """The community of every snapshot row (cached per communityGeneration); verified against GraphMeta
    after the read, so an answer never comes from a partition half rewritten by a community run."""
    path = None
    if cache is not None and meta.graphId:
        path = folder(cache, meta) / f"community-c{meta.communityGeneration}.npy"
        try:
            com: np.ndarray = np.load(path, allow_pickle=False)
            if com.shape == (len(snap.ids),):
                return com
        except (OSError, ValueError):
            pass
    got = db.read("read_image_communities")
    if [r["id"] for r in got] != snap.ids:
        raise DatabaseError("the stored images changed while the graph was read: retry")
    missing = [r["id"] for r in got if r["community"] is None]
    if missing:
        raise ConfigError(f"image {missing[0]} has no community: run `cxrneo communities`")
    com = np.array([int(r["community"]) for r in got], dtype=np.int64)
    after = graph_meta(db)  # a community run that began meanwhile rewrites Image.community in place
    if not communities_unchanged(meta, after):
        raise NotReadyError("the graph changed while its communities were read: retry")
    if path is not None and path.parent.is_dir():  # kept only under the generation it was read at
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        np.save(tmp, com, allow_pickle=False)
        os.replace(tmp, path)
    return com


def open_snapshot(db: Database, meta: GraphMeta, cache: Path | None) -> tuple[Snapshot, np.ndarray]:
    """The snapshot of the current generation with its communities: from the cache, else read once."""
    snap = load(cache, meta) if cache is not None else None
    if snap is None:
        snap = read(db, meta)
        after = graph_meta(db)
        if not data_unchanged(meta, after):
            raise DatabaseError("the graph changed while it was read: retry")
        if cache is not None:
            save(snap, cache, meta)
    return snap, communities(db, snap, cache, meta)


class RowFile:
    """Rows of a memory-mapped float32 codes file, read with pread: what they cost is a copy, not
    resident pages of this process (a service that reads a few rows per query stays small)."""

    def __init__(self, unit: "np.memmap[Any, Any]") -> None:
        self.shape = unit.shape
        self._row_bytes = int(unit.shape[1]) * 4
        self._offset = int(unit.offset)
        self._fd = os.open(str(unit.filename), os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64).ravel()
        out = np.empty((rows.size, self.shape[1]), np.float32)
        for i, r in enumerate(rows.tolist()):
            if not 0 <= r < self.shape[0]:
                raise IndexError(f"row {r} outside the {self.shape[0]} codes")
            if os.preadv(self._fd, [memoryview(out[i])], self._offset + r * self._row_bytes) != self._row_bytes:
                raise InputError("the snapshot's codes file is shorter than its header says")
        return out


def rows_of(unit: np.ndarray) -> "np.ndarray | RowFile":
    """What reads single rows of these codes: a RowFile for a memory-mapped file, else the array."""
    if isinstance(unit, np.memmap) and unit.filename and unit.dtype == np.float32 and unit.ndim == 2 \
            and unit.flags.c_contiguous:
        return RowFile(unit)
    return unit


def release(unit: np.ndarray) -> None:
    """Drop this process's resident pages of a memory-mapped codes file (they stay in the page cache
    and come back row by row when read); nothing for codes in memory."""
    mapped = getattr(unit, "_mmap", None)
    if isinstance(mapped, mmap.mmap):
        mapped.madvise(mmap.MADV_DONTNEED)
