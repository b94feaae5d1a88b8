"""Key object documents (cxrneo.pacs.keyobject) built without a PACS: what they reference, say and are
named, read back by highdicom and by pydicom from their bytes."""

from io import BytesIO

import pytest
from highdicom.ko import KeyObjectSelectionDocument
from pydantic import ValidationError
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from cxrneo.errors import InputError
from cxrneo.pacs.dicomweb import _stow_result
from cxrneo.pacs.keeping import instance_of
from cxrneo.pacs.keyobject import (
    KOS_CLASS,
    MAX_HITS,
    MAX_NOTE,
    KeepRequest,
    Referenced,
    document_uids,
    encode,
    header,
    key_object,
    references,
)
from cxrneo.pacs.uid import is_uid

DX = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"


def _cases() -> tuple[Dataset, list[Referenced]]:
    """A query in its own study and four hits in two other studies (other patients)."""
    query = Dataset()
    query.PatientName, query.PatientID, query.PatientSex, query.PatientBirthDate = "Doe^Jane", "P-1", "F", "19700101"
    query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    query.SOPClassUID, query.StudyDate, query.AccessionNumber = DX, "20240101", "ACC1"
    refs = [Referenced(query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID, DX)]
    for _ in range(2):
        study, series = generate_uid(), generate_uid()
        refs += [Referenced(study, series, generate_uid(), CR), Referenced(study, series, generate_uid(), DX)]
    return query, refs


def _request(refs: list[Referenced], **more: str) -> KeepRequest:
    return KeepRequest(query=refs[0].sop, hits=[r.sop for r in refs[1:]], **more)


def test_a_document_references_the_query_and_hits_across_studies_and_reads_back() -> None:
    query, refs = _cases()
    req = _request(refs, title="for-teaching", note="two similar effusions, see the costophrenic angles")
    doc = dcmread(BytesIO(encode(key_object(query, refs, req, "alice", "cxrneo 0.1"))))
    assert doc.SOPClassUID == KOS_CLASS and doc.Modality == "KO"
    assert doc.StudyInstanceUID == query.StudyInstanceUID and doc.SeriesInstanceUID != query.SeriesInstanceUID
    assert (doc.PatientID, str(doc.PatientName), doc.AccessionNumber) == ("P-1", "Doe^Jane", "ACC1")  # filed with the query
    assert (doc.SeriesInstanceUID, doc.SOPInstanceUID) == (document_uids(req).series, document_uids(req).sop)
    listed = references(doc)
    assert sorted(listed) == sorted((r.study, r.series, r.sop, r.sop_class) for r in refs)
    assert len({s for s, _, _, _ in listed}) == 3  # every study, not only the query's
    kos = KeyObjectSelectionDocument.from_dataset(doc)
    for r in refs:
        assert kos.resolve_reference(r.sop) == (r.study, r.series, r.sop)
    root = doc.ContentSequence
    assert (doc.ConceptNameCodeSequence[0].CodeValue, doc.ConceptNameCodeSequence[0].CodingSchemeDesignator) \
        == ("113004", "DCM")  # For Teaching
    texts = [i.TextValue for i in root if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "113012"]
    assert texts == ["two similar effusions, see the costophrenic angles"]
    names = [str(i.PersonName) for i in root if i.ValueType == "PNAME"]
    assert names == ["alice^"]
    pointed = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in root if i.ValueType in ("IMAGE", "COMPOSITE")]
    assert pointed == [r.sop for r in refs]  # the query first, then the hits in the order given


def test_the_document_uids_name_what_is_kept() -> None:
    _, refs = _cases()
    req = _request(refs, title="of-interest", note="n")
    uids = document_uids(req)
    assert is_uid(uids.series) and is_uid(uids.sop) and uids.series != uids.sop
    shuffled = KeepRequest(query=req.query, hits=list(reversed(req.hits)), title=req.title, note=req.note)
    assert document_uids(shuffled) == uids  # the same cases in another order: the same document
    for other in ({"note": "m"}, {"title": "for-teaching"}, {"hits": req.hits[:-1]}):
        assert document_uids(req.model_copy(update=other)) != uids


def test_requests_are_bounded_and_titles_are_never_rejection_notes() -> None:
    KeepRequest(query="1.2", hits=["1.3"] * 2 + ["1.4"])  # duplicates collapse
    assert KeepRequest(query="1.2", hits=["1.3", "1.3", "1.4"]).hits == ["1.3", "1.4"]
    for bad in ({"hits": []}, {"hits": [f"1.{i}" for i in range(MAX_HITS + 1)]}, {"note": "x" * (MAX_NOTE + 1)},
                {"title": "rejected-for-quality-reasons"}, {"title": "113001"}, {"extra": 1}):
        with pytest.raises(ValidationError):
            KeepRequest.model_validate({"query": "1.2", "hits": ["1.3"], **bad})


def test_only_images_with_dicom_uids_can_be_kept() -> None:
    assert instance_of("1.2.3", {"studyUid": "1.2", "seriesUid": "1.2.4"}).sop == "1.2.3"
    for image_id, record in [("00000001_000.png", {"studyUid": "", "seriesUid": ""}),
                             ("1.2.3", {"studyUid": "../x", "seriesUid": "1.2"}), ("x.png", {})]:
        with pytest.raises(InputError, match="did not come from a PACS") as e:
            instance_of(image_id, record)
        assert image_id in str(e.value) and "\n" not in str(e.value)


def test_the_first_reference_is_the_query() -> None:
    query, refs = _cases()
    with pytest.raises(InputError, match="first reference"):
        key_object(query, refs[1:], _request(refs), "alice")
    with pytest.raises(InputError, match="observer"):
        key_object(query, refs, _request(refs), " ")


def test_a_header_keeps_only_what_the_document_needs() -> None:
    doc = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}, "00100020": {"vr": "LO", "Value": ["P-1"]},
           "00080016": {"vr": "UI", "Value": [DX]}, "7FE00010": {"vr": "OB", "BulkDataURI": "http://pacs/bulk"},
           "00280010": {"vr": "US", "Value": [512]}, "00100030": {"vr": "DA"}}
    ds = header(doc)
    assert str(ds.PatientName) == "Doe^Jane" and ds.SOPClassUID == DX and ds.Rows == 512
    assert "PixelData" not in ds and "PatientBirthDate" in ds  # an empty attribute is kept empty


def test_a_stow_answer_says_what_was_stored_and_what_failed() -> None:
    ok = {"00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]}}
    failed = {"00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.4"]},
                                                  "00081197": {"vr": "US", "Value": [272]}}]}}
    assert _stow_result([ok]) == ({"1.2.3"}, {})
    assert _stow_result([failed]) == (set(), {"1.2.4": "0x0110"})
    assert _stow_result([{"00081198": {"vr": "SQ"}}]) == (set(), {})
