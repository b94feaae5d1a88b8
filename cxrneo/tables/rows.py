"""What every table format shares: a raw row, reading CSV rows, and the one age rule."""

import csv
import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cxrneo.errors import InputError
from cxrneo.labels import NO_FINDING, POSITIVE
from cxrneo.records import ImageRecord


@dataclass(frozen=True)
class RawRow:
    """One row as a format reader sees it: a record without labels and its raw findings."""

    record: ImageRecord
    findings: Mapping[str, int] = field(default_factory=dict)


def read_rows(path: Path, required: Sequence[str], max_rows: int | None) -> Iterator[dict[str, str]]:
    """Rows of a CSV (optionally .gz) as dicts; a missing file or column is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such label table")
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
        raise InputError(f"{path}: unreadable label table ({e})") from e


def positive_findings(text: str) -> dict[str, int]:
    """Pipe-separated finding names (``"Mass|Effusion"``), each positive; "No Finding" is no finding."""
    names = (f.strip() for f in text.split("|"))
    return {f: POSITIVE for f in names if f and f != NO_FINDING}


def parse_age(text: str) -> int | None:
    """Age in whole years, the one rule for every table format.

    Digits are read as a count; a trailing ``Y`` (or no unit) means years, ``M`` months
    (floored to whole years, so '6M' -> 0 and '30M' -> 2), ``W`` or ``D`` weeks or days
    (-> 0). Text without digits (``''``, 'unknown') is None.

    >>> [parse_age(t) for t in ("58", "058Y", "6M", "30M", "3D", "", "?")]
    [58, 58, 0, 2, 0, None, None]
    """
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
