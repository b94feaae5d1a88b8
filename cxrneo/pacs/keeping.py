"""Similar cases kept in the PACS: a request to keep (cxrneo.pacs.keyobject.KeepRequest) becomes a key
object document stored over STOW-RS; what `cxrneo keep` and POST /keep run.

Only images that came from the PACS can be kept: each must have a study, a series and an id that are
DICOM UIDs, and the PACS must hold it there (its header is read over WADO-RS: the SOP class the
reference needs, and for the query the patient and study the document is filed under). A repeat is
recognised before anything is written: the document's UIDs follow from what is kept, so when the PACS
already holds that instance (QIDO-RS) nothing is stored again and the answer says so. Two keeps of the
same cases racing each other send the same SOP instance twice; an archive keeps one (Orthanc answers
success to a second copy of an instance it holds and keeps the first). A store is confirmed by finding
the document in the PACS afterwards (cxrneo.pacs.dicomweb.DicomWeb.store).
"""

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from cxrneo.errors import InputError
from cxrneo.pacs.dicomweb import DicomWeb, Instance
from cxrneo.pacs.keyobject import TITLES, KeepRequest, Referenced, document_uids, encode, header, key_object
from cxrneo.pacs.uid import is_uid

RecordOf = Callable[[str], Mapping[str, object]]  # a stored image's record (studyUid, seriesUid), NotFoundError


class Kept(BaseModel):
    """A key object in the PACS: where it is, what it says, and whether this request stored it (False:
    the PACS held it already, from an earlier keep of the same cases)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    title: str
    references: int
    stored: bool


def instance_of(image_id: str, record: Mapping[str, object]) -> Instance:
    """The PACS instance of a stored image; InputError naming it when it did not come from a PACS."""
    study, series = str(record.get("studyUid") or ""), str(record.get("seriesUid") or "")
    if not (is_uid(study) and is_uid(series) and is_uid(image_id)):
        raise InputError(f"image {image_id[:80]!r} did not come from a PACS (no DICOM study, series and SOP "
                         "instance UIDs): only images from the PACS can be kept there")
    return Instance(study, series, image_id)


def keep(client: DicomWeb, record_of: RecordOf, req: KeepRequest, observer: str, software: str = "") -> Kept:
    """Keep ``req``'s cases in the PACS as a key object by ``observer`` (see the module docstring)."""
    hits = [h for h in req.hits if h != req.query]
    if not hits:
        raise InputError("keep needs at least one hit besides the query")
    instances = [instance_of(i, record_of(i)) for i in (req.query, *hits)]  # every refusal before any request
    uids = document_uids(req)
    query = instances[0]
    kept = Kept(study_uid=query.study, series_uid=uids.series, sop_uid=uids.sop, title=TITLES[req.title].meaning,
                references=len(instances), stored=False)
    if client.has(Instance(query.study, uids.series, uids.sop)):
        return kept
    headers = [header(client.metadata(i)) for i in instances]
    refs = []
    for inst, ds in zip(instances, headers, strict=True):
        sop_class = str(ds.get("SOPClassUID", ""))
        if not is_uid(sop_class):
            raise InputError(f"the PACS gave image {inst.sop} no SOP Class UID")
        refs.append(Referenced(inst.study, inst.series, inst.sop, sop_class, "Rows" in ds and "Columns" in ds))
    doc = key_object(headers[0], refs, req, observer, software)
    client.store(encode(doc), Instance(query.study, uids.series, uids.sop))
    return kept.model_copy(update={"stored": True})
