"""Key Object Selection documents (DICOM KOS, SOP class 1.2.840.10008.5.1.4.1.1.88.59): similar cases kept
in the PACS beside the query's study. Pure: the query's header and the referenced instances in, a dataset
and its bytes out (nothing here talks to a PACS; cxrneo.pacs.keep does).

A document lives in the query's study, in a series of its own, and holds (template TID 2010): a title from
CID 7010 (only the titles of `TITLES`: never a rejection title such as 113001 or 113039, which archives act
on by hiding or deleting the referenced images), the observer (the signed-in user, TID 1002/1003), the
note as the TEXT item (113012, DCM, "Key Object Description"), and one reference per image: the query
first, then the hits in the order given. Its Current Requested Procedure Evidence Sequence lists every
referenced instance by study, series, SOP instance and SOP class.

highdicom builds the content tree (`KeyObjectSelection`, `ObserverContext`) and the common modules
(`SOPClass`); its `KeyObjectSelectionDocument` constructor is not used because (highdicom 0.28,
ko/sop.py) it raises for references in two or more other studies and silently leaves references in one
other study out of the evidence sequence, while the hits of a similar-case search lie in other studies
(other patients) by nature. The document is read back through `KeyObjectSelectionDocument.from_dataset`
before it leaves, so highdicom checks what was built.

The document's UIDs are name-based UUIDs (ISO/IEC 9834-8, under 2.25) of what was kept: the query, the
set of hits, the title and the note. Keeping the same cases again names the same document, which the
caller finds in the PACS and does not store twice.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian, KeyObjectSelectionDocumentStorage

from cxrneo.errors import InputError
from cxrneo.filters import MAX_NAME

KOS_CLASS = str(KeyObjectSelectionDocumentStorage)  # 1.2.840.10008.5.1.4.1.1.88.59
MAX_HITS = 50  # cases kept in one document
MAX_NOTE = 1000  # characters of the note
SERIES_NUMBER = 7010  # the number shown for a key object's own series (CID 7010: the titles)
_CID7010 = codes.cid7010
TITLES: dict[str, Code] = {  # the flag's word -> the document title (CID 7010)
    "of-interest": _CID7010.OfInterest,
    "for-teaching": _CID7010.ForTeaching,
    "for-conference": _CID7010.ForConference,
    "for-research": _CID7010.ForResearch,
    "for-peer-review": _CID7010.ForPeerReview,
    "for-referring-provider": _CID7010.ForReferringProvider,
    "best-in-set": _CID7010.BestInSet,
}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://cxrneo.local/key-objects")
# the query's patient and study, copied as they are (the archive files the document under the same ones)
PATIENT_STUDY = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                 "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
                 "ReferringPhysicianName", "StudyDescription")


class KeepRequest(BaseModel):
    """What to keep: a query image, some of its hits (stored image ids), a title and a note."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1, max_length=MAX_NAME, description="The query image (a stored id).")
    hits: list[str] = Field(min_length=1, max_length=MAX_HITS, description="Stored image ids of the hits to keep.")
    title: str = Field("of-interest", description="The document title: " + ", ".join(TITLES) + ".")
    note: str = Field("", max_length=MAX_NOTE, description="Free text kept with the selection.")

    @field_validator("hits")
    @classmethod
    def _hits(cls, hits: list[str]) -> list[str]:
        if any(not h or len(h) > MAX_NAME for h in hits):
            raise ValueError(f"each hit is a stored image id of 1 to {MAX_NAME} characters")
        return list(dict.fromkeys(hits))  # each once, in the order given

    @field_validator("title")
    @classmethod
    def _title(cls, title: str) -> str:
        if title not in TITLES:
            raise ValueError(f"unknown title {title[:40]!r}: use one of {', '.join(TITLES)}")
        return title


@dataclass(frozen=True)
class Referenced:
    """One instance a document points to: its UIDs, its SOP class, and whether it is an image."""

    study: str
    series: str
    sop: str
    sop_class: str
    image: bool = True


@dataclass(frozen=True)
class DocumentUids:
    """The UIDs of the document that keeps a request: its series and its SOP instance."""

    series: str
    sop: str


def document_uids(req: KeepRequest) -> DocumentUids:
    """The document's UIDs, a function of the query, the set of hits, the title and the note (the same
    request names the same document; the order of the hits does not matter)."""
    what = "\x1f".join([req.query, *sorted(set(req.hits) - {req.query}), TITLES[req.title].value, req.note])
    return DocumentUids(series=_uid(what + "\x1eseries"), sop=_uid(what + "\x1einstance"))


def _uid(name: str) -> str:
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"


def key_object(query_header: Dataset, refs: Sequence[Referenced], req: KeepRequest, observer: str,
               software: str = "") -> Dataset:
    """The KOS document of ``req`` (see the module docstring): ``query_header`` the query instance's
    header (its patient and study are the document's), ``refs`` the query's instance first and then the
    hits', ``observer`` who kept them."""
    from highdicom.base import SOPClass
    from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
    from highdicom.sr import ObserverContext, PersonObserverIdentifyingAttributes

    if not refs or refs[0].sop != req.query or str(query_header.get("SOPInstanceUID", "")) != req.query:
        raise InputError("a key object's first reference is its query instance")
    if not observer.strip():
        raise InputError("a key object needs its observer (who kept the cases)")
    uids = document_uids(req)
    person = ObserverContext(observer_type=codes.DCM.Person, observer_identifying_attributes=PersonObserverIdentifyingAttributes(
        name=_person_name(observer), login_name=observer[:1024]))
    content = KeyObjectSelection(document_title=TITLES[req.title], referenced_objects=[_reference(r) for r in refs],
                                 observer_person_context=person, description=req.note.strip() or None)
    doc = SOPClass(study_instance_uid=refs[0].study, series_instance_uid=uids.series, series_number=SERIES_NUMBER,
                   sop_instance_uid=uids.sop, sop_class_uid=KOS_CLASS, instance_number=1, modality="KO",
                   manufacturer="cxrneo", software_versions=software or None, transfer_syntax_uid=ExplicitVRLittleEndian,
                   series_description=f"cxrneo: {TITLES[req.title].meaning}", specific_character_set="ISO_IR 192")
    for keyword in PATIENT_STUDY:
        if keyword in query_header:
            doc[keyword] = query_header[keyword]
    for tag, value in content[0].items():
        doc[tag] = value
    doc.CurrentRequestedProcedureEvidenceSequence = evidence(refs)
    doc.ReferencedPerformedProcedureStepSequence = []
    KeyObjectSelectionDocument.from_dataset(doc)  # highdicom reads it back: a malformed tree raises here
    return doc


def _person_name(observer: str) -> str:
    """A user name as a DICOM person name: the family name component alone (a trailing caret says so),
    at most 63 characters and no separators of its own."""
    return ("".join(" " if c in "^=\\" else c for c in observer).strip()[:63] or "unknown") + "^"


def _reference(ref: Referenced) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = ref.sop_class, ref.sop
    if ref.image:  # highdicom makes an IMAGE item of an instance with Rows and Columns, else a COMPOSITE one
        ds.Rows, ds.Columns = 1, 1
    return ds


def evidence(refs: Sequence[Referenced]) -> list[Dataset]:
    """The Current Requested Procedure Evidence Sequence: every referenced instance, grouped by study and
    series (PS3.3 Hierarchical SOP Instance Reference Macro), each once."""
    studies: dict[str, dict[str, dict[str, str]]] = {}
    for r in refs:
        studies.setdefault(r.study, {}).setdefault(r.series, {}).setdefault(r.sop, r.sop_class)
    items = []
    for study, series in studies.items():
        item = Dataset()
        item.StudyInstanceUID = study
        item.ReferencedSeriesSequence = [_series(uid, sops) for uid, sops in series.items()]
        items.append(item)
    return items


def _series(uid: str, sops: dict[str, str]) -> Dataset:
    item = Dataset()
    item.SeriesInstanceUID = uid
    refs = []
    for sop, sop_class in sops.items():
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop
        refs.append(ref)
    item.ReferencedSOPSequence = refs
    return item


def encode(doc: Dataset) -> bytes:
    """The document as a DICOM Part 10 file (what STOW-RS sends)."""
    out = BytesIO()
    doc.save_as(out, enforce_file_format=True)
    return out.getvalue()


def references(doc: Dataset) -> list[tuple[str, str, str, str]]:
    """(study, series, SOP instance, SOP class) of every instance a KOS document's evidence lists."""
    return [(str(st.StudyInstanceUID), str(se.SeriesInstanceUID), str(i.ReferencedSOPInstanceUID),
             str(i.ReferencedSOPClassUID))
            for st in doc.get("CurrentRequestedProcedureEvidenceSequence", [])
            for se in st.get("ReferencedSeriesSequence", [])
            for i in se.get("ReferencedSOPSequence", [])]


def header(doc: dict[str, Any]) -> Dataset:
    """The patient and study attributes and the UIDs of an instance's DICOM JSON (a WADO-RS metadata
    answer), as a dataset; nothing else of it is kept (no bulk data)."""
    from pydicom.datadict import tag_for_keyword

    wanted = {f"{tag_for_keyword(k):08X}" for k in (*PATIENT_STUDY, "SeriesInstanceUID", "SOPInstanceUID",
                                                   "SOPClassUID", "Rows", "Columns", "SpecificCharacterSet")}
    try:
        return Dataset.from_json({k: v for k, v in doc.items() if k.upper() in wanted})
    except (ValueError, TypeError, KeyError) as e:
        raise InputError(f"the PACS sent an instance header that is not DICOM JSON ({e})".splitlines()[0]) from None
