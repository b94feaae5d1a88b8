"""A table from a PACS: instances retrieved over DICOMweb into a folder, their records from the tags.

Images are keyed by SOPInstanceUID; patient, sex, age and view come from the DICOM header. An
archive has no findings: the table's labels are empty (retrieval works; evaluation needs labels),
unless a CSV with columns `id` (SOPInstanceUID or accession number) and `labels` (findings joined
by |) adds them.
Instances already in the folder are not retrieved again, so an interrupted run resumes. A file is
named from its SOPInstanceUID only once the UID is checked (cxrneo.pacs.uid): a PACS answering
``../../x`` is refused in one line, and nothing is written or read outside the folder.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cxrneo.errors import InputError
from cxrneo.labels import LabelSet
from cxrneo.pacs.dicomweb import DicomWeb, instance_file
from cxrneo.records import ImageRecord
from cxrneo.tables.rows import RawRow, parse_age, positive_findings, read_rows
from cxrneo.tables.table import Table, build


class NotAnImage(Exception):
    """A DICOM object that is not a single-frame image (a report, a presentation state, a cine loop)."""


def record_of(path: Path) -> tuple[ImageRecord, str]:
    """The record of one DICOM file from its header (no pixels read), and its accession number;
    NotAnImage for an object without pixels or with several frames."""
    from cxrneo.embed.dicom import open_dicom

    try:
        ds = open_dicom(path, pixels=False)  # bounded: a deflated header is inflated through a capped stream
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable header is one line naming the file
        raise InputError(f"{path}: not a readable DICOM file ({type(e).__name__})") from None
    if "Rows" not in ds or "Columns" not in ds or int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise NotAnImage(str(ds.get("SOPClassUID", "")))
    uid = str(ds.get("SOPInstanceUID", "") or path.stem)
    return ImageRecord(id=uid, path=str(path), patient_id=str(ds.get("PatientID", "") or uid),
                       view=str(ds.get("ViewPosition", "") or ""), sex=str(ds.get("PatientSex", "") or ""),
                       age=parse_age(str(ds.get("PatientAge", "") or "")),
                       study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                       series_uid=str(ds.get("SeriesInstanceUID", "") or "")), str(ds.get("AccessionNumber", "") or "")


def findings_of(labels: Path) -> dict[str, dict[str, int]]:
    """SOPInstanceUID or accession number -> findings, from a CSV with `id` and `labels` columns."""
    return {row["id"].strip(): positive_findings(row.get("labels") or "")
            for row in read_rows(labels, ("id", "labels"), None) if (row.get("id") or "").strip()}


@dataclass(frozen=True)
class PacsTable:
    """The images of a PACS as a table, and how many objects of its series were not single-frame images."""

    table: Table
    not_images: int


def pacs_table(client: DicomWeb, folder: Path, label_set: LabelSet, modalities: tuple[str, ...],
               since: str | None = None, limit: int | None = None,
               progress: Callable[[int], None] | None = None, labels: Path | None = None) -> PacsTable:
    """Retrieve every matching instance into ``folder`` (skipping those already there) and read
    their records (with findings from ``labels`` when given); objects that are not single-frame
    images (reports, presentation states, multi-frame) are skipped and counted."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = findings_of(labels) if labels is not None else {}
    rows, not_images = [], 0
    for n, inst in enumerate(client.instances(modalities, since)):
        if limit is not None and n >= limit:
            break
        dest = instance_file(folder, inst)  # a checked UID, inside the folder
        if not dest.is_file() or dest.stat().st_size == 0:  # an empty file: left by an older, unsafe write
            client.retrieve(inst, dest)
        try:
            record, accession = record_of(dest)
        except NotAnImage:
            not_images += 1
            continue
        rows.append(RawRow(record, known.get(record.id) or known.get(accession) or {}))
        if progress:
            progress(n + 1)
    if not rows:
        raise InputError(f"the PACS at {client.url} holds no {'/'.join(modalities)} instances"
                         + (f" since {since}" if since else ""))
    return PacsTable(build(rows, label_set, Path(client.url)), not_images)
