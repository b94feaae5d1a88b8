"""CheXpert: train.csv / valid.csv as published (1, 0, -1 uncertain, blank) plus the root folder."""

import re
from pathlib import Path, PurePosixPath

from cxrneo.errors import InputError
from cxrneo.records import ImageRecord
from cxrneo.tables.rows import RawRow, parse_age, read_rows

REQUIRED = ("Path",)
META = {"Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"}
_PATIENT = re.compile(r"patient(\d+)")


def resolve(root: Path, rel: str) -> Path:
    """The file of a CheXpert ``Path`` under ``root``, which may be the dataset folder or its parent."""
    parts = PurePosixPath(rel).parts
    if parts and parts[0] == root.name:
        parts = parts[1:]
    return root.joinpath(*parts)


def _value(text: str, labels: Path, line: int) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        raise InputError(f"{labels}: line {line} has label value {text!r}") from None


def read(labels: Path, images: Path, max_rows: int | None = None) -> list[RawRow]:
    """Rows of a CheXpert CSV; blank = not mentioned (negative), -1 = uncertain."""
    out = []
    for line, row in enumerate(read_rows(labels, REQUIRED, max_rows), start=2):
        rel = (row.get("Path") or "").strip()
        if not rel:
            raise InputError(f"{labels}: line {line} has no Path")
        findings = {}
        for name, text in row.items():
            if name is None or name in META:
                continue
            value = _value(text, labels, line)
            if value is not None:
                findings[name] = value
        match = _PATIENT.search(rel)
        frontal = (row.get("Frontal/Lateral") or "").strip()
        record = ImageRecord(
            id=rel,
            path=str(resolve(images, rel)),
            patient_id=match.group(1) if match else rel,
            view=(row.get("AP/PA") or "").strip() or frontal,
            sex=(row.get("Sex") or "").strip(),
            age=parse_age(row.get("Age") or ""),
        )
        out.append(RawRow(record, findings))
    return out
