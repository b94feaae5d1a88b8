"""`cxrneo embed`: image codes of a table through a trained checkpoint, resumable in shards."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from cxrneo.archive import codes as codes_file
from cxrneo.archive.codes import CODE_WIDTH
from cxrneo.archive.shards import even_rows
from cxrneo.embed import checkpoint, runtime
from cxrneo.embed.data import loader
from cxrneo.embed.model import CxrNet
from cxrneo.errors import InputError
from cxrneo.tables.table import Table


@dataclass(frozen=True)
class EmbedResult:
    out: Path
    written: int
    skipped: int
    skipped_report: Path | None


def work_dir(out: Path) -> Path:
    """Partial shards of an unfinished run live next to the output."""
    return out.with_name(out.name + ".parts")


def _manifest(sha: str, table: Table, size: int, rows: tuple[int, int]) -> dict[str, Any]:
    ids = "\n".join(r.id for r in table.records).encode()
    import hashlib

    return {
        "checkpoint_sha256": sha,
        "ids_sha256": hashlib.sha256(ids).hexdigest(),
        "n": len(table),
        "size": size,
        "rows": list(rows),
    }


def _codes_of(
    model: CxrNet,
    table: Table,
    rows: range,
    size: int,
    batch_size: int,
    workers: int,
    dev: torch.device,
    bar: Any,
    task: Any,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Codes of the readable rows among ``rows`` (absolute row numbers) and the errors of the others."""
    every = table.paths  # a property that builds the list: once, not per row
    paths = [every[i] for i in rows]
    got_rows, got_codes, errors = [], [], []
    with torch.inference_mode():
        for batch in loader(paths, size, batch_size, workers, pin=dev.type == "cuda"):
            errors += [(rows.start + i, msg) for i, msg in batch.errors]
            if len(batch.rows):
                x = runtime.prepare(batch.x, dev)
                with runtime.autocast(dev):
                    code = model.code(x)
                got_rows.append(batch.rows.numpy() + rows.start)
                got_codes.append(code.float().cpu().numpy())
            bar.advance(task, len(batch.rows) + len(batch.errors))
    if not got_rows:
        return np.empty(0, np.int64), np.empty((0, model.code_width), np.float32), errors
    return np.concatenate(got_rows), np.concatenate(got_codes).astype(np.float32), errors


def embed(
    ckpt: Path,
    table: Table,
    out: Path,
    batch_size: int = 64,
    workers: int = 2,
    device: str = "auto",
    shard_size: int = 2048,
    console: Console | None = None,
    shard: tuple[int, int] | None = None,
) -> EmbedResult:
    """Write the codes of every readable image of ``table`` to ``out``; skipped images to a CSV.

    With ``shard=(i, n)`` only the i-th of n even blocks of rows (cut at multiples of
    ``shard_size``, where an unsharded run cuts its batches too) is embedded, into a part that
    `cxrneo merge` combines with the others (`cxrneo.archive.codes.merge_parts`)."""
    ckpt = checkpoint.resolve(ckpt)
    doc = checkpoint.load(ckpt)
    if list(table.label_set.labels) != list(doc["labels"]):
        raise InputError(f"{ckpt}: trained on label set {doc['label_set']!r}, not {table.label_set.name!r}")
    sha = checkpoint.sha256(ckpt)
    size = int(doc["config"]["size"])
    dev = runtime.device(device)
    model = checkpoint.model_from(doc).to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    split_of = {i: "train" for i in doc["split"]["train"]} | {i: "val" for i in doc["split"]["val"]}
    table = table.with_splits(split_of)

    out = Path(out)
    work = work_dir(out)
    first, stop = (0, len(table)) if shard is None else even_rows(len(table), *shard, align=shard_size)
    manifest = _manifest(sha, table, size, (first, stop))
    if work.is_dir():
        try:
            same = json.loads((work / "manifest.json").read_text()) == manifest
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(work)  # shards of another run: start over
    work.mkdir(parents=True, exist_ok=True)
    (work / "manifest.json").write_text(json.dumps(manifest))

    starts = range(first, stop, shard_size)
    with runtime.progress(console) as bar:
        task = bar.add_task("embed", total=stop - first, info=runtime.device_name(dev))
        for start in starts:
            piece = work / f"shard-{start:09d}.npz"
            rows = range(start, min(start + shard_size, stop))
            if piece.is_file():
                bar.advance(task, len(rows))
                continue
            got_rows, got_codes, errors = _codes_of(
                model, table, rows, size, batch_size, workers, dev, bar, task
            )
            tmp = piece.with_name(piece.stem + ".tmp.npz")
            np.savez(
                tmp,
                rows=got_rows,
                codes=got_codes,
                error_rows=np.array([i for i, _ in errors], np.int64),
                errors=np.array([m for _, m in errors], dtype=str),
            )
            tmp.replace(piece)
    part = None if shard is None else {"index": shard[0], "count": shard[1], "rows": [first, stop],
                                       "table_rows": len(table), "table_sha256": manifest["ids_sha256"]}
    return _merge(work, starts, table, doc, sha, out, part)


def _merge(
    work: Path, starts: range, table: Table, doc: dict[str, Any], sha: str, out: Path, part: dict[str, Any] | None
) -> EmbedResult:
    rows_l, codes_l, errors = [], [], []
    for start in starts:
        with np.load(work / f"shard-{start:09d}.npz", allow_pickle=False) as z:
            rows_l.append(z["rows"])
            codes_l.append(z["codes"])
            errors += list(zip(z["error_rows"].tolist(), z["errors"].tolist(), strict=True))
    rows = np.concatenate(rows_l) if rows_l else np.empty(0, np.int64)
    arr = np.concatenate(codes_l).astype(np.float32) if codes_l else np.empty((0, CODE_WIDTH), np.float32)
    bad = ~np.isfinite(arr).all(axis=1) | ~(np.abs(arr) > 0).any(axis=1)
    errors += [(int(rows[i]), "code is all zero or not finite") for i in np.flatnonzero(bad)]
    rows, arr = rows[~bad], arr[~bad]
    if len(rows) == 0 and part is None:
        raise InputError(f"no image of the table could be read (see {out.with_suffix('.skipped.csv')})")
    report = codes_file.write_skipped(out, [(table.records[i].id, table.records[i].path, msg) for i, msg in sorted(errors)])
    extra: dict[str, Any] = {"size": int(doc["config"]["size"]), "arch": doc.get("arch", "densenet121")}
    if part is not None:  # what `cxrneo merge` checks: every row of the block written or skipped
        part["written"] = rows.tolist()
        part["skipped"] = [[i, table.records[i].id, table.records[i].path, msg] for i, msg in sorted(errors)]
        extra["shard"] = part
    result = codes_file.Codes(
        codes=arr,
        images=tuple(table.records[int(i)] for i in rows),
        checkpoint_sha256=sha,
        label_set=doc["label_set"],
        labels=tuple(doc["labels"]),
        extra=extra,
    )
    codes_file.save(out, result)
    shutil.rmtree(work)
    return EmbedResult(out, len(rows), len(errors), report)


def code_of_image(ckpt: Path, path: Path, device: str = "auto") -> np.ndarray:
    """The float32 code of one image file through a checkpoint (for image queries)."""
    from cxrneo.embed.encoder import Encoder

    return Encoder(ckpt, device).code(path)
