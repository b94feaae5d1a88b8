"""A labelled image table, format-independent: records, file paths, targets and masks."""

import csv
import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cxrneo.embed.labelsets import LabelSet
from cxrneo.errors import InputError
from cxrneo.records import ImageRecord

FORMATS = ("nih", "chexpert", "csv")


@dataclass(frozen=True)
class RawRow:
    """One row as a format reader sees it: a record without labels and its raw findings."""

    record: ImageRecord
    findings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """Images in row order with their label-set targets; ``known`` is False where uncertain."""

    records: tuple[ImageRecord, ...]
    targets: np.ndarray
    known: np.ndarray
    label_set: LabelSet

    def __len__(self) -> int:
        return len(self.records)

    @property
    def paths(self) -> list[Path]:
        return [Path(r.path) for r in self.records]

    def subset(self, rows: Sequence[int]) -> "Table":
        idx = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            records=tuple(self.records[i] for i in idx),
            targets=self.targets[idx],
            known=self.known[idx],
        )

    def with_splits(self, split_of: Mapping[str, str]) -> "Table":
        """The same table with each record's ``split`` set from an id -> split mapping."""
        recs = tuple(r.model_copy(update={"split": split_of.get(r.id, "")}) for r in self.records)
        return replace(self, records=recs)


def build(rows: Sequence[RawRow], label_set: LabelSet, source: Path) -> Table:
    """Encode raw rows with a label set; refuses an empty table and duplicate ids."""
    if not rows:
        raise InputError(f"{source}: no image rows")
    n, width = len(rows), len(label_set.labels)
    targets = np.zeros((n, width), dtype=np.float32)
    known = np.ones((n, width), dtype=bool)
    records = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if row.record.id in seen:
            raise InputError(f"{source}: duplicate image id {row.record.id!r}")
        seen.add(row.record.id)
        targets[i], known[i] = label_set.encode(row.findings)
        labels = label_set.positives(row.findings)
        records.append(row.record.model_copy(update={"labels": labels}))
    return Table(tuple(records), targets, known, label_set)


def read_rows(path: Path, required: Sequence[str], max_rows: int | None) -> Iterator[dict[str, str]]:
    """Rows of a CSV (optionally .gz) as dicts; a missing file or column is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such label file")
    try:
        raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            for i, row in enumerate(reader):
                if max_rows is not None and i >= max_rows:
                    return
                yield row
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: unreadable label file ({e})") from e


def parse_age(text: str) -> int | None:
    """'58', '058Y', '6M' or '' -> years (None when unknown)."""
    text = (text or "").strip().upper()
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        return None
    value = int(digits)
    if text.endswith("M"):
        return value // 12
    if text.endswith(("D", "W")):
        return 0
    return value


def read_table(
    fmt: str,
    labels: Path,
    images: Path,
    label_set: LabelSet,
    max_images: int | None = None,
) -> Table:
    """Read a label file of format nih|chexpert|csv, image paths resolved under ``images``."""
    from cxrneo.embed import chexpert, nih, plaincsv

    readers = {"nih": nih.read, "chexpert": chexpert.read, "csv": plaincsv.read}
    if fmt not in readers:
        raise InputError(f"unknown dataset format {fmt!r} (choose one of: {', '.join(FORMATS)})")
    if fmt != "csv" and label_set.source != fmt:
        raise InputError(f"label set {label_set.name!r} reads {label_set.source} findings, not {fmt} ones")
    rows = readers[fmt](Path(labels), Path(images).expanduser().absolute(), max_images)
    return build(rows, label_set, Path(labels))
