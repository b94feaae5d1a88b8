"""The codes file: float32 image codes with their image records, as written by `cxrneo embed`.

One ``.npz`` file holds

* ``codes``  float32 array N x 1024 (one row per image),
* ``ids``    the image ids, in row order,
* ``meta``   a JSON document: ``{"version": 1, "checkpoint_sha256": ..., "label_set": ...,
  "labels": [...], "images": [ImageRecord, ...]}``.

Loading validates everything before a caller can write anything anywhere.
"""

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.errors import InputError
from cxrneo.records import ImageRecord

CODE_WIDTH = 1024
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Codes:
    """Image codes and their records, row i of ``codes`` belongs to ``images[i]``."""

    codes: np.ndarray
    images: tuple[ImageRecord, ...]
    checkpoint_sha256: str = ""
    label_set: str = ""
    labels: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self.codes, [r.id for r in self.images])

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, rows: np.ndarray | list[int]) -> "Codes":
        """The codes of the given rows, same metadata."""
        idx = np.asarray(rows, dtype=np.int64)
        return Codes(
            codes=self.codes[idx],
            images=tuple(self.images[i] for i in idx),
            checkpoint_sha256=self.checkpoint_sha256,
            label_set=self.label_set,
            labels=self.labels,
            extra=dict(self.extra),
        )


def validate(codes: np.ndarray, ids: list[str], width: int = CODE_WIDTH) -> None:
    """Refuse codes that later steps cannot use, with one clear message."""
    if codes.ndim != 2 or codes.shape[1] != width:
        raise InputError(f"codes must be N x {width}, got shape {tuple(codes.shape)}")
    if codes.shape[0] != len(ids):
        raise InputError(f"{codes.shape[0]} code rows but {len(ids)} image ids")
    if not np.issubdtype(codes.dtype, np.floating):
        raise InputError(f"codes must be floating point, got {codes.dtype}")
    bad = ~np.isfinite(codes).all(axis=1)
    if bad.any():
        first = [ids[i] for i in np.flatnonzero(bad)[:3]]
        raise InputError(f"{int(bad.sum())} code rows hold NaN or inf (first: {', '.join(first)})")
    zero = ~(np.abs(codes) > 0).any(axis=1)
    if zero.any():
        first = [ids[i] for i in np.flatnonzero(zero)[:3]]
        raise InputError(f"{int(zero.sum())} code rows are all zero (first: {', '.join(first)})")
    seen: set[str] = set()
    for i in ids:
        if not i:
            raise InputError("an image id is empty")
        if i in seen:
            raise InputError(f"duplicate image id {i!r}")
        seen.add(i)


def save(path: Path, codes: Codes) -> None:
    """Write a codes file atomically (temp file, then rename)."""
    meta = {
        "version": FORMAT_VERSION,
        "checkpoint_sha256": codes.checkpoint_sha256,
        "label_set": codes.label_set,
        "labels": list(codes.labels),
        "images": [r.model_dump() for r in codes.images],
        "extra": codes.extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        codes=np.ascontiguousarray(codes.codes, dtype=np.float32),
        ids=np.array(codes.ids, dtype=str),
        meta=np.array(json.dumps(meta)),
    )
    tmp.replace(path)


def _read(path: Path) -> tuple[np.ndarray, list[str], Any]:
    """The three arrays of a codes file; any damage to the archive is one InputError."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the codes file is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a codes file (expected an .npz archive written by `cxrneo embed`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise InputError(f"{path}: not a codes file (expected an .npz archive)")
            missing = {"codes", "ids", "meta"} - set(z.files)
            if missing:
                raise InputError(f"{path}: not a cxrneo codes file (missing {sorted(missing)})")
            arr = z["codes"]
            ids = [str(i) for i in z["ids"]]
            meta = json.loads(str(z["meta"]))
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise InputError(f"{path}: damaged codes file (truncated or corrupt archive: {_first_line(e)})") from e
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{path}: unreadable codes file ({_first_line(e)})") from e
    return arr, ids, meta


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load(path: Path) -> Codes:
    """Read and validate a codes file; every problem is one InputError line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such codes file")
    arr, ids, meta = _read(path)
    if not isinstance(meta, dict):
        raise InputError(f"{path}: malformed codes file (meta is a JSON {type(meta).__name__}, not an object)")
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: codes file version {meta.get('version')} is not {FORMAT_VERSION}")
    if not isinstance(meta.get("images"), list):
        raise InputError(f"{path}: malformed image metadata (meta.images is not a list)")
    if not isinstance(meta.get("extra", {}), dict) or not isinstance(meta.get("labels", []), list):
        raise InputError(f"{path}: malformed codes file (meta.extra or meta.labels has the wrong type)")
    if not all(isinstance(meta.get(k, ""), str) for k in ("checkpoint_sha256", "label_set")):
        raise InputError(f"{path}: malformed codes file (checkpoint_sha256 or label_set is not a string)")
    try:
        images = tuple(ImageRecord(**r) for r in meta["images"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: malformed image metadata ({_first_line(e)})") from e
    if [r.id for r in images] != ids:
        raise InputError(f"{path}: image metadata does not match the id column")
    try:
        validate(arr, ids)
    except InputError as e:
        raise InputError(f"{path}: {e}") from e
    if not ids:
        raise InputError(f"{path}: the codes file holds no codes (0 rows)")
    return Codes(
        codes=arr.astype(np.float32, copy=False),
        images=images,
        checkpoint_sha256=meta.get("checkpoint_sha256", ""),
        label_set=meta.get("label_set", ""),
        labels=tuple(str(x) for x in meta.get("labels", ())),
        extra=meta.get("extra", {}),
    )
