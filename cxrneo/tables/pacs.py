"""A table from a PACS: instances retrieved over DICOMweb into a folder, their records from the tags.

Images are keyed by SOPInstanceUID; patient, sex, age and view come from the DICOM header. An
archive has no findings: the table's labels are empty (retrieval works; evaluation needs labels).
Instances already in the folder are not retrieved again, so an interrupted run resumes.
"""

from collections.abc import Callable
from pathlib import Path

from cxrneo.dicomweb import DicomWeb
from cxrneo.errors import InputError
from cxrneo.labels import LabelSet
from cxrneo.records import ImageRecord
from cxrneo.tables.rows import RawRow, parse_age
from cxrneo.tables.table import Table, build


def record_of(path: Path) -> ImageRecord:
    """The record of one DICOM file from its header (no pixels read)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as e:  # noqa: BLE001 - any unreadable header is one line naming the file
        raise InputError(f"{path}: not a readable DICOM file ({type(e).__name__})") from None
    uid = str(ds.get("SOPInstanceUID", "") or path.stem)
    return ImageRecord(id=uid, path=str(path), patient_id=str(ds.get("PatientID", "") or uid),
                       view=str(ds.get("ViewPosition", "") or ""), sex=str(ds.get("PatientSex", "") or ""),
                       age=parse_age(str(ds.get("PatientAge", "") or "")),
                       study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                       series_uid=str(ds.get("SeriesInstanceUID", "") or ""))


def pacs_table(client: DicomWeb, folder: Path, label_set: LabelSet, modalities: tuple[str, ...],
               since: str | None = None, limit: int | None = None,
               progress: Callable[[int], None] | None = None) -> Table:
    """Retrieve every matching instance into ``folder`` (skipping those already there) and read
    their records."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, inst in enumerate(client.instances(modalities, since)):
        if limit is not None and n >= limit:
            break
        dest = folder / f"{inst.sop}.dcm"
        if not dest.is_file():
            client.retrieve(inst, dest)
        rows.append(RawRow(record_of(dest)))
        if progress:
            progress(n + 1)
    if not rows:
        raise InputError(f"the PACS at {client.url} holds no {'/'.join(modalities)} instances"
                         + (f" since {since}" if since else ""))
    return build(rows, label_set, Path(client.url))
