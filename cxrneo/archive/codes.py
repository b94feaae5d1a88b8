"""The codes file: float32 image codes with their image records, as written by `cxrneo embed`.

One ``.npz`` file holds

* ``codes``  float32 array N x 1024 (one row per image),
* ``ids``    the image ids, in row order,
* ``meta``   a JSON document: ``{"version": 1, "checkpoint_sha256": ..., "label_set": ...,
  "labels": [...], "images": [ImageRecord, ...]}``.

Loading validates everything before a caller can write anything anywhere.
"""

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.archive.shards import check_partition
from cxrneo.errors import ConfigError, InputError
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

    def with_codes(self, codes: np.ndarray) -> "Codes":
        """The same images and metadata with other codes (e.g. transformed ones)."""
        return Codes(codes=codes, images=self.images, checkpoint_sha256=self.checkpoint_sha256,
                     label_set=self.label_set, labels=self.labels, extra=dict(self.extra))

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


def digest(codes: Codes) -> str:
    """sha256 of the code rows (float32) and the ids, in row order: what edges are computed from."""
    h = hashlib.sha256(np.ascontiguousarray(codes.codes, dtype="<f4").tobytes())
    h.update("\n".join(codes.ids).encode())
    return h.hexdigest()


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


def load(path: Path, part_ok: bool = False) -> Codes:
    """Read and validate a codes file; every problem is one InputError line. A part of a sharded
    `cxrneo embed` is refused unless `part_ok` (only `cxrneo merge` reads parts)."""
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
    extra = meta.get("extra", {})
    if "shard" in extra and not part_ok:
        sh = extra["shard"]
        raise InputError(f"{path}: this is part {sh.get('index')}/{sh.get('count')} of a sharded `cxrneo embed`; "
                         "combine the parts with `cxrneo merge` first")
    if not ids and "shard" not in extra:
        raise InputError(f"{path}: the codes file holds no codes (0 rows)")
    return Codes(
        codes=arr.astype(np.float32, copy=False),
        images=images,
        checkpoint_sha256=meta.get("checkpoint_sha256", ""),
        label_set=meta.get("label_set", ""),
        labels=tuple(str(x) for x in meta.get("labels", ())),
        extra=extra,
    )


def append(base: Codes, more: Codes) -> Codes:
    """The codes of ``base`` followed by those of ``more`` (same checkpoint and label set; no id twice)."""
    if (base.checkpoint_sha256, base.label_set) != (more.checkpoint_sha256, more.label_set):
        raise ConfigError("the new codes come from another checkpoint or label set than the codes file")
    return Codes(codes=np.concatenate([base.codes, more.codes]), images=base.images + more.images,
                 checkpoint_sha256=base.checkpoint_sha256, label_set=base.label_set, labels=base.labels,
                 extra=dict(base.extra))


def merge_parts(parts: list[Codes], names: list[str]) -> Codes:
    """The codes file of the unsharded run from the parts of `cxrneo embed --shard i/n`: one
    checkpoint, one table, every shard once, every row of each block written or skipped once."""
    if not parts:
        raise InputError("no codes parts to merge")
    info = []
    for p, name in zip(parts, names, strict=True):
        sh = p.extra.get("shard")
        if not isinstance(sh, dict):
            raise InputError(f"{name}: not a part of a sharded `cxrneo embed` (no shard record)")
        info.append(sh)
    first, head = parts[0], info[0]
    same = ("count", "table_rows", "table_sha256")
    for p, sh, name in zip(parts, info, names, strict=True):
        if (p.checkpoint_sha256, p.label_set, p.labels) != (first.checkpoint_sha256, first.label_set, first.labels):
            raise InputError(f"{name}: made with another checkpoint or label set than {names[0]}")
        if any(sh.get(k) != head.get(k) for k in same):
            raise InputError(f"{name}: a part of another table or shard count than {names[0]}")
        a, b = sh["rows"]
        done = sorted([*sh["written"], *(s[0] for s in sh["skipped"])])
        if done != list(range(a, b)):
            raise InputError(f"{name}: its rows {a}:{b} are not each written or skipped exactly once")
    indices = sorted(sh["index"] for sh in info)
    if indices != list(range(head["count"])):
        raise InputError(f"codes parts: shards {indices} given, expected each of 0..{head['count'] - 1} once")
    order = check_partition([tuple(sh["rows"]) for sh in info], head["table_rows"], "codes parts")
    extra = {k: v for k, v in first.extra.items() if k != "shard"}
    return Codes(
        codes=np.concatenate([parts[k].codes for k in order]).astype(np.float32),
        images=tuple(r for k in order for r in parts[k].images),
        checkpoint_sha256=first.checkpoint_sha256, label_set=first.label_set, labels=first.labels, extra=extra,
    )


def write_skipped(codes_path: Path, skipped: list[tuple[str, str, str]]) -> Path | None:
    """The list of unreadable images beside a codes file (`<stem>.skipped.csv`: id, path, error)."""
    if not skipped:
        return None
    import csv

    report = codes_path.with_name(codes_path.stem + ".skipped.csv")
    with open(report, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "path", "error"])
        w.writerows(skipped)
    return report


def skipped_of_parts(parts: list[Codes]) -> list[list[Any]]:
    """[row, id, path, message] of every image the parts skipped, by row."""
    return sorted(s for p in parts for s in p.extra.get("shard", {}).get("skipped", []))
