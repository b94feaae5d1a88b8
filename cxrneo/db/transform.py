"""The graph's code transform (whitening learned from the archive), stored in Neo4j beside the graph.

The stored Image codes, T, the SIMILAR edges, the communities and the vector index (when built) live in the
transformed space; GraphMeta.transformSha256 names the `CodeTransform` node they went through
(empty: raw codes). A new code (an uploaded image, a client's code) is transformed by the same
arrays before it is searched. Which transform an ingest uses:

* an existing graph keeps its own (frozen: incremental ingests reuse it; an explicit request for
  another is refused in one line);
* a new graph is raw unless `--whiten auto|N` asks for one, fitted on the codes being ingested;
  `auto` chooses dimension and shrinkage on a patient split of them, by their findings.
"""

from typing import Any

import numpy as np

from cxrneo.archive.codes import Codes
from cxrneo.db.connection import Database
from cxrneo.db.meta import GraphMeta
from cxrneo.errors import ConfigError, NotReadyError
from cxrneo.whiten import Spectrum, Whitening, option

AUTO_K = 10  # precision@10 decides `auto`, as the paper's tables


def _arrays(row: dict[str, Any]) -> Whitening:
    try:
        width, dim = int(row["width"]), int(row["dim"])
        mean = np.frombuffer(row["mean"], dtype="<f4")
        basis = np.frombuffer(row["basis"], dtype="<f4").reshape(width, dim)
        scale = np.frombuffer(row["scale"], dtype="<f4")
    except (TypeError, ValueError) as e:
        raise NotReadyError(f"the stored code transform {str(row.get('sha256'))[:12]} is damaged ({e})") from None
    w = Whitening.from_arrays({"mean": mean, "basis": basis, "scale": scale,
                               "shrink": np.asarray([float(row["shrink"] or 0.0)])})
    if w.sha256 != row["sha256"]:
        raise NotReadyError(f"the stored code transform {str(row['sha256'])[:12]} does not match its digest: "
                            "rebuild the graph (`cxrneo db reset`, then `cxrneo ingest --whiten ...`)")
    return w


def load(db: Database, sha256: str) -> Whitening:
    """The stored transform with this digest (NotReadyError when it is missing or damaged)."""
    rows = db.read("find_code_transforms", sha256=sha256)
    if not rows:
        raise NotReadyError(f"the graph's code transform {sha256[:12]} is missing from the database: rebuild the "
                            "graph (`cxrneo db reset`, then `cxrneo ingest --whiten ...`)")
    return _arrays(rows[0])


def of_graph(db: Database, meta: GraphMeta) -> Whitening | None:
    """The transform the stored codes went through, or None for raw codes."""
    return load(db, meta.transformSha256) if meta.transformSha256 else None


def save(db: Database, w: Whitening) -> None:
    db.write("merge_code_transform", sha256=w.sha256, dim=w.dim, width=int(w.basis.shape[0]), shrink=float(w.shrink),
             mean=w.mean.astype("<f4").tobytes(), basis=np.ascontiguousarray(w.basis, dtype="<f4").tobytes(),
             scale=w.scale.astype("<f4").tobytes())


def fit(codes: Codes, whiten: str, shrink: float = 0.0) -> tuple[Whitening, str]:
    """A new graph's transform from its own codes: `auto` (chosen by their findings) or a dimension."""
    from cxrneo.evaluation.evaluate import auto_whitening

    if whiten == "auto":
        w, how, _ = auto_whitening(codes, AUTO_K, codes.label_set or "nih")
        return w, f"whitened to {w.dim} dimensions (shrinkage {w.shrink:g}); {how}"
    w = Spectrum.of(codes.codes).whitening(int(whiten), shrink)
    return w, f"whitened to {w.dim} dimensions (shrinkage {shrink:g})"


def for_ingest(db: Database, meta: GraphMeta | None, codes: Codes, whiten: str | None,
               shrink: float = 0.0) -> tuple[Whitening | None, str]:
    """Which transform an ingest of ``codes`` uses (see the module docstring), and a line saying so;
    a newly fitted one is stored before any image is written."""
    whiten = option(whiten) if whiten is not None else None
    if meta is not None:
        stored = of_graph(db, meta)
        if stored is None and whiten not in (None, "none"):
            raise ConfigError("this graph holds raw codes: whitening needs a new graph "
                              "(`cxrneo db reset`, then `cxrneo ingest --whiten ...`)")
        if stored is not None and whiten == "none":
            raise ConfigError(f"this graph's codes are whitened ({stored.dim} dimensions): its transform is "
                              "reused; rebuild the graph for raw codes")
        return stored, (f"the graph's whitening ({stored.dim} dimensions) reused" if stored else "raw codes")
    if whiten in (None, "none"):
        return None, "raw codes"
    w, how = fit(codes, whiten, shrink)
    earlier = [r["sha256"] for r in db.read("find_code_transforms", sha256=None)]
    if earlier and earlier != [w.sha256]:  # an interrupted first build wrote images through another
        raise ConfigError("an interrupted first build used another code transform: `cxrneo db reset`, then "
                          "ingest again")
    save(db, w)
    return w, how
