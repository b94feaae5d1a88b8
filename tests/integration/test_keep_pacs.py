"""Similar cases kept in a real Orthanc as DICOM key objects: POST /keep on a service over a real Neo4j,
`cxrneo keep`, and the page's "Save to PACS" in headless Chromium. The graph holds nine films stored
in Orthanc (three studies of three patients) and one image that did not come from a PACS."""

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from pydicom import dcmread
from typer.testing import CliRunner

from cxrneo.access.audit import AuditTrail, read
from cxrneo.access.authenticate import Authenticator
from cxrneo.access.identity import Role
from cxrneo.access.users import UserStore
from cxrneo.api.app import create_app
from cxrneo.archive.codes import Codes, load
from cxrneo.cli.main import app
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.pacs.dicomweb import DicomWeb, Instance
from cxrneo.pacs.keyobject import KOS_CLASS, MAX_HITS, MAX_NOTE, references
from cxrneo.records import ImageRecord
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_pacs import IMAGES, Pacs, _studies, orthanc
from tests.integration.test_query_image import _checkpoint
from tests.integration.test_viewer import _cards, _console_errors, _screenshot, _wait, browser  # noqa: F401 - the fixture
from tests.serving import Running

pytestmark = pytest.mark.neo4j
PLAIN = "plain-0001.png"  # an archived image that did not come from a PACS
REFUSE_STOW = "function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n" \
              "  return not (method == 'POST' and string.find(uri, '^/dicom%-web/') ~= nil)\nend\n"
DROP_KO = "function ReceivedInstanceFilter(dicom, origin, info)\n  return dicom.Modality ~= 'KO'\nend\n"


@dataclass
class World:
    pacs: Pacs
    searcher: Searcher
    settings: Settings  # of the database, with CXRNEO_DATA_DIR
    files: dict[str, Path]  # SOPInstanceUID -> the film stored in Orthanc
    keys: dict[str, str]  # user -> API key (carol: curator, victor: viewer)
    trail: Path
    url: str  # the service, writing to the PACS
    folder: Path
    twin: str  # the film whose code PLAIN shares (PLAIN is its first hit)


def _call(url: str, key: str | None, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _qido(pacs: Pacs, path: str, **query: str) -> list[dict[str, Any]]:
    body = pacs.call(f"/dicom-web{path}" + (f"?{urlencode(query)}" if query else ""))
    return list(json.loads(body)) if body.strip() else []


def _value(doc: dict[str, Any], tag: str) -> str:
    return str(((doc.get(tag) or {}).get("Value") or [""])[0])


def _key_objects(pacs: Pacs, study: str) -> list[tuple[str, str]]:
    """(series, SOP instance) of every KO instance Orthanc lists in the study."""
    return [(_value(s, "0020000E"), _value(i, "00080018"))
            for s in _qido(pacs, f"/studies/{study}/series") if _value(s, "00080060") == "KO"
            for i in _qido(pacs, f"/studies/{study}/series/{_value(s, '0020000E')}/instances")]


@pytest.fixture(scope="module")
def world(neo4j_db: Database, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("keep")
    with orthanc(tmp / "orthanc") as pacs:
        films = _studies(tmp / "films", IMAGES)
        pacs.stow(films)
        ckpt = _checkpoint(tmp / "best.pt")
        env = {"CXRNEO_PACS_USER": pacs.user, "CXRNEO_PACS_PASSWORD": pacs.password, "CXRNEO_DATA_DIR": str(tmp)}
        done = CliRunner(env=env).invoke(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out",
                                               str(tmp / "pacs.npz"), "--workers", "0"])
        assert done.exit_code == 0, done.output
        codes = load(tmp / "pacs.npz")
        plain = ImageRecord(id=PLAIN, path=PLAIN, patient_id="plain-patient")  # no study, no series
        (tmp / "plain").mkdir()
        shutil.copyfile(IMAGES[0], tmp / "plain" / PLAIN)  # its file: the films are shown from the PACS
        codes = Codes(codes=np.concatenate([codes.codes, codes.codes[:1]]), images=(*codes.images, plain),
                      checkpoint_sha256=codes.checkpoint_sha256, label_set=codes.label_set, labels=codes.labels)
        neo4j_db.auto("delete_everything")
        build(neo4j_db, codes, mean_degree=3)
        detect(neo4j_db)
        users = UserStore(tmp / "users.json")
        keys = {"carol": users.add("carol", Role.CURATOR), "victor": users.add("victor", Role.VIEWER)}
        settings = neo4j_settings.model_copy(update={"data_dir": tmp})
        searcher = Searcher.open(neo4j_db, tmp / "snap", images=tmp / "plain",
                                 pacs=DicomWeb(pacs.root, pacs.user, pacs.password), pacs_dir=tmp / "instances")
        trail = AuditTrail(tmp / "audit.jsonl")
        service = create_app(searcher, access=Authenticator(users=users), trail=trail, pacs_write=True)
        try:
            with Running(service) as running:
                yield World(pacs, searcher, settings, {f.stem: f for f in films}, keys, tmp / "audit.jsonl",
                            running.url, tmp, codes.images[0].id)
        finally:
            trail.close()


def _hits(world: World, query: str, k: int = 4) -> list[dict[str, Any]]:
    status, answer = _call(world.url + "/query", world.keys["carol"], {"id": query, "k": k, "method": "knn"})
    assert status == 200, answer
    return list(answer["hits"])


def _study(world: World, image_id: str) -> str:
    return str(dcmread(world.files[image_id], stop_before_pixels=True).StudyInstanceUID)


def test_kept_cases_are_a_key_object_in_the_query_study_whose_references_resolve(world: World) -> None:
    query = sorted(world.files)[0]
    hits = [h["image_id"] for h in _hits(world, query) if h["study_uid"]][:3]
    assert len(hits) == 3 and PLAIN not in hits
    study = _study(world, query)
    before = _key_objects(world.pacs, study)
    body = {"query": query, "hits": hits, "title": "for-teaching", "note": "three alike, see both angles"}
    status, kept = _call(world.url + "/keep", world.keys["carol"], body)
    assert status == 200 and kept["stored"] is True and kept["study_uid"] == study, kept
    listed_now = _key_objects(world.pacs, study)
    assert [k for k in listed_now if k not in before] == [(kept["series_uid"], kept["sop_uid"])]  # listed in the study

    doc_file = DicomWeb(world.pacs.root, world.pacs.user, world.pacs.password).retrieve(
        Instance(study, kept["series_uid"], kept["sop_uid"]), world.folder / "kos.dcm")
    doc = dcmread(doc_file)
    assert (doc.SOPClassUID, doc.Modality, doc.StudyInstanceUID) == (KOS_CLASS, "KO", study)
    query_tags = dcmread(world.files[query], stop_before_pixels=True)
    assert doc.PatientID == query_tags.PatientID and doc.SeriesInstanceUID != query_tags.SeriesInstanceUID
    listed = references(doc)
    assert {sop for _, _, sop, _ in listed} == {query, *hits}
    for ref_study, ref_series, sop, sop_class in listed:  # each reference is an instance Orthanc holds there
        tags = dcmread(world.files[sop], stop_before_pixels=True)
        assert (ref_study, ref_series, sop_class) == (tags.StudyInstanceUID, tags.SeriesInstanceUID, tags.SOPClassUID)
        found = _qido(world.pacs, f"/studies/{ref_study}/series/{ref_series}/instances", SOPInstanceUID=sop)
        assert [_value(f, "00080016") for f in found] == [sop_class]
    items = doc.ContentSequence
    assert doc.ConceptNameCodeSequence[0].CodeValue == "113004"  # For Teaching
    assert [str(i.PersonName) for i in items if i.ValueType == "PNAME"] == ["carol^"]  # the signed-in user
    texts = {i.ConceptNameCodeSequence[0].CodeValue: i.TextValue for i in items if i.ValueType == "TEXT"}
    assert texts == {"113012": "three alike, see both angles", "128774": "carol"}  # the note; the login name

    again = {**body, "hits": list(reversed(hits))}  # the same cases: recognised, nothing stored twice
    status, repeat = _call(world.url + "/keep", world.keys["carol"], again)
    assert status == 200 and repeat["stored"] is False and repeat["sop_uid"] == kept["sop_uid"]
    assert _key_objects(world.pacs, study) == listed_now

    entries = [e for e in read(world.trail, user="carol") if e["route"] == "/keep"]
    assert [e["status"] for e in entries[-2:]] == [200, 200]
    first = entries[-2]
    assert first["ids"] == [query, *hits] and query_tags.PatientID in first["patients"]
    assert kept["sop_uid"] in first["wrote"] and "held already" in entries[-1]["wrote"]


def test_keeping_is_refused_in_one_line_and_never_half_done(world: World, tmp_path: Path) -> None:
    query = sorted(world.files)[3]
    study = _study(world, query)
    other = [i for i in sorted(world.files) if _study(world, i) != study]
    before = _key_objects(world.pacs, study)
    url, carol, victor = world.url + "/keep", world.keys["carol"], world.keys["victor"]

    status, doc = _call(url, victor, {"query": query, "hits": other[:1]})
    assert status == 403 and "curator" in doc["error"] and set(doc) == {"error"}  # the viewer role may not keep
    refused = [e for e in read(world.trail, user="victor") if e["route"] == "/keep"]
    assert refused and refused[-1]["status"] == 403  # and the attempt is on record
    assert _call(world.url + "/config", victor)[1]["keep"] is None  # the page offers the viewer nothing
    offered = _call(world.url + "/config", carol)[1]["keep"]
    assert offered["titles"]["for-teaching"] == "For Teaching" and offered["max_hits"] == MAX_HITS

    status, doc = _call(url, carol, {"query": query, "hits": [other[0], PLAIN]})
    assert status == 400 and PLAIN in doc["error"] and "did not come from a PACS" in doc["error"]
    status, doc = _call(url, carol, {"query": PLAIN, "hits": other[:1]})
    assert status == 400 and PLAIN in doc["error"]
    assert _call(url, carol, {"query": query, "hits": ["1.2.3.4"]})[0] == 404  # not in the archive
    for bad in ({"hits": [f"1.2.{i}" for i in range(MAX_HITS + 1)]}, {"note": "x" * (MAX_NOTE + 1)},
                {"title": "rejected-for-quality-reasons"}, {"hits": []}):
        status, doc = _call(url, carol, {"query": query, "hits": other[:1], **bad})
        assert status == 422 and set(doc) == {"error"}, (bad, doc)
    assert _key_objects(world.pacs, study) == before  # none of that wrote anything

    read_only = create_app(world.searcher, access=Authenticator(users=UserStore(world.folder / "users.json")))
    with Running(read_only) as running:  # started without --pacs-write: the PACS is only read
        status, doc = _call(running.url + "/keep", carol, {"query": query, "hits": other[:1]})
        assert status == 403 and "--pacs-write" in doc["error"]
        assert _call(running.url + "/config", carol)[1]["keep"] is None

    with orthanc(tmp_path / "refusing", lua=REFUSE_STOW) as refusing:  # reads DICOMweb, refuses every store
        refusing.upload(list(world.files.values()))
        searcher = Searcher.open(world.searcher.graph.db, tmp_path / "snap",
                                 pacs=DicomWeb(refusing.root, refusing.user, refusing.password))
        service = create_app(searcher, access=Authenticator(users=UserStore(world.folder / "users.json")), pacs_write=True)
        with Running(service) as running:
            status, doc = _call(running.url + "/keep", carol, {"query": query, "hits": other[:2]})
        assert status == 502 and "refused to store" in doc["error"] and "HTTP 403" in doc["error"], doc
        assert "\n" not in doc["error"] and refusing.password not in doc["error"]
        assert _key_objects(refusing, study) == []


def test_cxrneo_keep_stores_once_and_says_why_it_cannot(world: World, tmp_path: Path) -> None:
    query = sorted(world.files)[6]
    study = _study(world, query)
    hits = [i for i in sorted(world.files) if _study(world, i) != study][:2]
    env = {"CXRNEO_NEO4J_URI": world.settings.neo4j_uri, "CXRNEO_NEO4J_PASSWORD": world.settings.password(),
           "CXRNEO_NEO4J_DATABASE": world.settings.neo4j_database, "CXRNEO_DATA_DIR": str(tmp_path),
           "CXRNEO_PACS_USER": world.pacs.user, "CXRNEO_PACS_PASSWORD": world.pacs.password}
    run = CliRunner(env=env).invoke
    args = ["keep", query, *hits, "--title", "for-research", "--note", "from the command line"]
    before = len(_key_objects(world.pacs, study))
    done = run(app, [*args, "--dicomweb", world.pacs.root])
    assert done.exit_code == 0 and done.output.startswith("kept: 3 images as \"For Research\""), done.output
    assert len(_key_objects(world.pacs, study)) == before + 1
    again = run(app, [*args, "--dicomweb", world.pacs.root])
    assert again.exit_code == 0 and again.output.startswith("already kept"), again.output
    assert len(_key_objects(world.pacs, study)) == before + 1

    def refused(result: Any, *words: str) -> None:
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert all(w in lines[0] for w in words) and world.pacs.password not in lines[0], (words, lines)

    refused(run(app, ["keep", query, PLAIN, "--dicomweb", world.pacs.root]), PLAIN, "did not come from a PACS")
    refused(run(app, ["keep", query, *hits, "--title", "113001", "--dicomweb", world.pacs.root]), "unknown title")
    refused(run(app, [*args, "--dicomweb", world.pacs.url + "/no-dicomweb-here"]), "has no instance")
    with orthanc(tmp_path / "dropping", lua=DROP_KO) as dropping:  # answers success, keeps no key object
        dropping.upload(list(world.files.values()))
        refused(run(app, [*args, "--dicomweb", dropping.root],
                    env={"CXRNEO_PACS_USER": dropping.user, "CXRNEO_PACS_PASSWORD": dropping.password}),
                "does not hold it")
        refused(run(app, [*args, "--dicomweb", dropping.root],
                    env={"CXRNEO_PACS_USER": dropping.user, "CXRNEO_PACS_PASSWORD": "wrong-password"}),
                "refused the credentials")
    refused(run(app, [*args, "--dicomweb", dropping.root]), "cannot reach the PACS")  # stopped
    refused(run(app, ["serve", "--pacs-write"]), "--pacs-write needs --dicomweb")


def test_the_page_saves_ticked_hits_to_the_pacs(world: World, browser: Any) -> None:  # noqa: F811 - the fixture
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    query = world.twin  # its first hit is PLAIN, which did not come from the PACS
    study = _study(world, query)
    before = _key_objects(world.pacs, study)

    def open_as(user: str) -> None:
        browser.get(world.url + "/")
        browser.execute_script("sessionStorage.setItem('cxrneo-token', arguments[0])", world.keys[user])
        browser.get(world.url + "/")
        _wait(browser, lambda d: "archived images" in d.find_element(By.ID, "status").text)
        browser.get_log("browser")  # the console is checked from here (the first load had no key: 401)
        browser.find_element(By.ID, "exclude-patient").click()  # the other films of the query's patient too
        browser.find_element(By.ID, "k").clear()
        browser.find_element(By.ID, "k").send_keys("5")
        Select(browser.find_element(By.ID, "method")).select_by_value("knn")
        browser.find_element(By.ID, "image-id").send_keys(query + "\n")
        _cards(browser, 5)

    open_as("victor")  # a viewer: nothing to save with
    assert not browser.find_element(By.ID, "keep-bar").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#grid .keep-pick") == []

    open_as("carol")
    assert browser.find_element(By.ID, "keep-bar").is_displayed()
    save = browser.find_element(By.ID, "keep-save")
    assert not save.is_enabled()
    boxes = browser.find_elements(By.CSS_SELECTOR, "#grid .keep-pick input")
    shown = [c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#grid .card")]
    assert PLAIN in shown and len(boxes) == len(shown) - 1 == 4  # only films from the PACS can be kept
    chosen = [b.get_attribute("data-id") for b in boxes[:2]]
    for box in boxes[:2]:
        box.click()
    assert save.is_enabled() and save.text == "Save 2 to PACS"
    Select(browser.find_element(By.ID, "keep-title")).select_by_value("for-conference")
    browser.find_element(By.ID, "keep-note").send_keys("for Thursday's conference")
    save.click()
    message = _wait(browser, lambda d: (t := d.find_element(By.ID, "keep-message").text).startswith(("Saved", "Not")) and t)
    assert message.startswith("Saved to the PACS: the query and 2 similar cases as “For Conference”"), message
    _screenshot(browser, "keep", 1280, 800)
    assert _console_errors(browser) == []
    added = [k for k in _key_objects(world.pacs, study) if k not in before]
    assert len(added) == 1
    series, sop = added[0]
    doc = dcmread(DicomWeb(world.pacs.root, world.pacs.user, world.pacs.password).retrieve(
        Instance(study, series, sop), world.folder / "page-kos.dcm"))
    assert [sop for _, _, sop, _ in references(doc)] == [query, *chosen]
    assert doc.ConceptNameCodeSequence[0].CodeValue == "113005"  # For Conference
    save.click()  # again: the PACS holds it already, and the page says so
    message = _wait(browser, lambda d: (t := d.find_element(By.ID, "keep-message").text).startswith("Already") and t)
    assert "nothing was stored again" in message
    assert len(_key_objects(world.pacs, study)) == len(before) + 1
