"""NIH ChestX-ray14: Data_Entry_2017.csv as published plus a folder of PNG files."""

from pathlib import Path

from cxrneo.embed.labelsets import POSITIVE
from cxrneo.embed.table import RawRow, parse_age, read_rows
from cxrneo.errors import InputError
from cxrneo.records import ImageRecord

REQUIRED = ("Image Index", "Finding Labels")


def read(labels: Path, images: Path, max_rows: int | None = None) -> list[RawRow]:
    """Rows of Data_Entry_2017.csv (or its .gz); ``No Finding`` means no positive finding."""
    out = []
    for line, row in enumerate(read_rows(labels, REQUIRED, max_rows), start=2):
        image_id = (row.get("Image Index") or "").strip()
        if not image_id:
            raise InputError(f"{labels}: line {line} has no Image Index")
        findings = {
            f.strip(): POSITIVE
            for f in (row.get("Finding Labels") or "").split("|")
            if f.strip() and f.strip() != "No Finding"
        }
        record = ImageRecord(
            id=image_id,
            path=str(images / image_id),
            patient_id=(row.get("Patient ID") or "").strip(),
            view=(row.get("View Position") or "").strip(),
            sex=(row.get("Patient Gender") or "").strip(),
            age=parse_age(row.get("Patient Age") or ""),
        )
        out.append(RawRow(record, findings))
    return out
