"""NIH ChestX-ray14: Data_Entry_2017.csv as published plus a folder of PNG files."""

from collections.abc import Sequence
from pathlib import Path

from cxrneo.errors import InputError
from cxrneo.records import ImageRecord
from cxrneo.tables.rows import RawRow, parse_age, positive_findings, read_rows

REQUIRED = ("Image Index", "Finding Labels")
# Every column `cxrneo synth` uses (patients and views shape its codes).
ALL_COLUMNS = (*REQUIRED, "Patient ID", "Patient Age", "Patient Gender", "View Position")


def read(
    labels: Path, images: Path, max_rows: int | None = None, required: Sequence[str] = REQUIRED
) -> list[RawRow]:
    """Rows of Data_Entry_2017.csv (or its .gz); ``No Finding`` means no positive finding.

    Every finding listed is positive (Hernia too: label sets pick theirs later); ages follow
    :func:`cxrneo.tables.rows.parse_age`; an image's path is ``images / Image Index``.
    """
    out = []
    for line, row in enumerate(read_rows(labels, required, max_rows), start=2):
        image_id = (row.get("Image Index") or "").strip()
        if not image_id:
            raise InputError(f"{labels}: line {line} has no Image Index")
        findings = positive_findings(row.get("Finding Labels") or "")
        record = ImageRecord(
            id=image_id,
            path=str(images / image_id),
            patient_id=(row.get("Patient ID") or "").strip(),
            view=(row.get("View Position") or "").strip(),
            sex=(row.get("Patient Gender") or "").strip(),
            age=parse_age(row.get("Patient Age") or ""),
            follow_up=int(row["Follow-up #"]) if (row.get("Follow-up #") or "").strip().isdigit() else None,
        )
        out.append(RawRow(record, findings))
    return out
