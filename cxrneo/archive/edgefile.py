"""The edges file: the SIMILAR edges of a block of source rows of one codes file (`cxrneo edges`).

One ``.npz`` holds ``src``, ``dst`` (int64 rows of the codes file, src < dst), ``cosine`` (float32)
and ``meta``: ``{"format": "cxrneo-edges", "version": 1, "threshold": T, "n": rows of the codes
file, "rows": [a, b], "codes_sha256": cxrneo.archive.codes.digest}``. Parts of the rows of one codes file
merge into one whole file (`merge`), which `cxrneo ingest --edges` loads instead of computing.
"""

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrneo.archive.shards import Rows, check_partition
from cxrneo.errors import InputError
from cxrneo.graph import Edges

FORMAT = "cxrneo-edges"
VERSION = 1


@dataclass(frozen=True)
class EdgePart:
    """Every edge whose smaller row lies in `rows`, of the `n` codes with digest `codes_sha256`."""

    edges: Edges
    threshold: float
    rows: Rows
    n: int
    codes_sha256: str

    @property
    def whole(self) -> bool:
        return self.rows == (0, self.n)


def save(path: Path, part: EdgePart) -> None:
    """Write an edges file atomically (temp file, then rename)."""
    meta = {"format": FORMAT, "version": VERSION, "threshold": part.threshold, "n": part.n,
            "rows": list(part.rows), "codes_sha256": part.codes_sha256}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, src=part.edges.src.astype(np.int64), dst=part.edges.dst.astype(np.int64),
             cosine=part.edges.cosine.astype(np.float32), meta=np.array(json.dumps(meta)))
    tmp.replace(path)


ARRAYS = {"src", "dst", "cosine", "meta"}


def is_edges_file(path: Path) -> bool:
    """Whether `path` is meant as an edges file (a `src` array; else, for `cxrneo merge`, a codes
    file); `load` then checks it whole."""
    try:
        with zipfile.ZipFile(path) as z:
            return "src.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load(path: Path) -> EdgePart:
    """Read and check an edges file; any problem is one InputError line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such edges file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != ARRAYS:
                raise InputError(f"{path}: not a cxrneo edges file (arrays {sorted(z.files)})")
            src, dst, cos = z["src"], z["dst"], z["cosine"]
            meta = json.loads(str(z["meta"]))
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise InputError(f"{path}: not a readable edges file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise InputError(f"{path}: not a cxrneo edges file of version {VERSION}")
    try:
        a, b = (int(v) for v in meta["rows"])
        part = EdgePart(Edges(src.astype(np.int64), dst.astype(np.int64), cos.astype(np.float32)),
                        float(meta["threshold"]), (a, b), int(meta["n"]), str(meta["codes_sha256"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: malformed edges file meta ({e})") from e
    _check(part, str(path))
    return part


def _check(part: EdgePart, what: str) -> None:
    e, (a, b) = part.edges, part.rows
    if not 0 <= a <= b <= part.n:
        raise InputError(f"{what}: rows {a}:{b} lie outside the {part.n} codes")
    if not (e.src.ndim == e.dst.ndim == e.cosine.ndim == 1 and len(e.src) == len(e.dst) == len(e.cosine)):
        raise InputError(f"{what}: edge arrays differ in shape")
    if len(e) == 0:
        return
    if e.src.min() < a or e.src.max() >= b:
        raise InputError(f"{what}: an edge starts outside the part's rows {a}:{b}")
    if (e.src >= e.dst).any() or e.dst.max() >= part.n:
        raise InputError(f"{what}: edges must be row pairs src < dst < {part.n}")
    key = e.src * part.n + e.dst
    if (np.diff(key) <= 0).any():
        raise InputError(f"{what}: edges are not sorted by (src, dst) or an edge is doubled")
    if not np.isfinite(e.cosine).all() or float(e.cosine.min()) < part.threshold - 1e-6:
        raise InputError(f"{what}: edges below the threshold {part.threshold} (or not finite)")


def merge(parts: Sequence[EdgePart], names: Sequence[str]) -> EdgePart:
    """One whole edges file from parts of one codes file at one T: every row range once."""
    if not parts:
        raise InputError("no edges files to merge")
    first = parts[0]
    for p, name in zip(parts, names, strict=True):
        if (p.codes_sha256, p.n) != (first.codes_sha256, first.n):
            raise InputError(f"{name}: edges of other codes than {names[0]} (codes digest or row count differ)")
        if p.threshold != first.threshold:
            raise InputError(f"{name}: threshold {p.threshold} differs from {names[0]}'s {first.threshold}")
    order = check_partition([p.rows for p in parts], first.n, "edges parts")
    chosen = [parts[k] for k in order]
    edges = Edges(*(np.concatenate([getattr(p.edges, f) for p in chosen]) for f in ("src", "dst", "cosine")))
    whole = EdgePart(edges, first.threshold, (0, first.n), first.n, first.codes_sha256)
    _check(whole, "merged edges")
    return whole


def edges_for(part: EdgePart, n: int, codes_sha256: str, name: str) -> Edges:
    """The edges of a whole edges file, if it was computed from exactly these codes."""
    if part.codes_sha256 != codes_sha256 or part.n != n:
        raise InputError(f"{name}: these edges were computed from other codes (digest or row count differ)")
    if not part.whole:
        raise InputError(f"{name}: holds rows {part.rows[0]}:{part.rows[1]} of {part.n} only; "
                         "`cxrneo merge` the parts first")
    return part.edges
