"""A labelled image table, format-independent: records, file paths, targets and masks."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cxrneo.errors import InputError
from cxrneo.labels import LabelSet
from cxrneo.records import ImageRecord
from cxrneo.tables import chexpert, nih, plaincsv
from cxrneo.tables.rows import RawRow

FORMATS = ("nih", "chexpert", "csv")
_READERS = {"nih": nih.read, "chexpert": chexpert.read, "csv": plaincsv.read}


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


def read_table(
    fmt: str,
    labels: Path,
    images: Path,
    label_set: LabelSet,
    max_images: int | None = None,
) -> Table:
    """Read a label file of format nih|chexpert|csv, image paths resolved under ``images``."""
    if fmt not in _READERS:
        raise InputError(f"unknown dataset format {fmt!r} (choose one of: {', '.join(FORMATS)})")
    if fmt != "csv" and label_set.source != fmt:
        raise InputError(f"label set {label_set.name!r} reads {label_set.source} findings, not {fmt} ones")
    rows = _READERS[fmt](Path(labels), Path(images).expanduser().absolute(), max_images)
    return build(rows, label_set, Path(labels))
