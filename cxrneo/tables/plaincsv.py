"""A plain CSV: `path`, `labels` joined by |, optional `patient_id`, `id`, `view`, `sex`, `age`."""

from pathlib import Path

from cxrneo.errors import InputError
from cxrneo.records import ImageRecord
from cxrneo.tables.rows import RawRow, parse_age, positive_findings, read_rows

REQUIRED = ("path", "labels")


def read(labels: Path, images: Path, max_rows: int | None = None) -> list[RawRow]:
    """Rows of a plain CSV; paths are relative to ``images`` (or absolute); no patient = own patient."""
    out = []
    for line, row in enumerate(read_rows(labels, REQUIRED, max_rows), start=2):
        rel = (row.get("path") or "").strip()
        if not rel:
            raise InputError(f"{labels}: line {line} has no path")
        image_id = (row.get("id") or "").strip() or rel
        findings = positive_findings(row.get("labels") or "")
        record = ImageRecord(
            id=image_id,
            path=str(images / rel),
            patient_id=(row.get("patient_id") or "").strip() or image_id,
            view=(row.get("view") or "").strip(),
            sex=(row.get("sex") or "").strip(),
            age=parse_age(row.get("age") or ""),
        )
        out.append(RawRow(record, findings))
    return out
