"""Embedding from a PACS over DICOMweb, against a real Orthanc (Debian's orthanc + orthanc-dicomweb,
installed by scripts/setup.sh): a private Orthanc on loopback, authentication on, its own storage."""

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.api.app import create_app
from cxrneo.archive.codes import load
from cxrneo.cli.main import app
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_query_image import EXAMPLES, _as_dicom, _checkpoint
from tests.integration.test_viewer import _wait, browser  # noqa: F401 - the browser fixture
from tests.serving import Running, free_port

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
IMAGES = sorted((EXAMPLES / "images").glob("*.png"))[:9]


class Pacs:
    def __init__(self, url: str, user: str, password: str, proc: subprocess.Popen[bytes]) -> None:
        self.url, self.user, self.password, self.proc = url, user, password, proc
        self.root = url + "/dicom-web"

    def call(self, path: str, body: bytes | None = None, kind: str | None = None) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        req.add_header("Authorization", "Basic " + b64encode(f"{self.user}:{self.password}".encode()).decode())
        if kind:
            req.add_header("Content-Type", kind)
        with urllib.request.urlopen(req, timeout=60) as r:
            return bytes(r.read())

    def stow(self, files: list[Path]) -> None:
        """Store DICOM files through STOW-RS."""
        parts = [b"--cxrneo\r\nContent-Type: application/dicom\r\n\r\n" + f.read_bytes() + b"\r\n" for f in files]
        self.call("/dicom-web/studies", b"".join(parts) + b"--cxrneo--\r\n",
                  'multipart/related; type="application/dicom"; boundary=cxrneo')


    def upload(self, files: list[Path]) -> None:
        """Store DICOM files through Orthanc's own REST API (not DICOMweb)."""
        for f in files:
            self.call("/instances", f.read_bytes(), "application/dicom")


@contextmanager
def orthanc(folder: Path, lua: str | None = None) -> Iterator[Pacs]:
    """A private Orthanc with its DICOMweb plugin on loopback, storing under ``folder``; ``lua``: a Lua
    script it runs (its filters of requests and instances)."""
    orthanc = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None)
    assert orthanc and PLUGIN.is_file(), "Orthanc and its DICOMweb plugin are missing: run scripts/setup.sh"
    port, password = free_port(), secrets.token_urlsafe(12)
    folder.mkdir(parents=True, exist_ok=True)
    scripts = []
    if lua is not None:
        (folder / "filter.lua").write_text(lua)
        scripts = [str(folder / "filter.lua")]
    config = folder / "orthanc.json"
    config.touch(mode=0o600)
    config.write_text(json.dumps({
        "Name": "cxrneo-test", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {"reader": password}, "Plugins": [str(PLUGIN)], "LuaScripts": scripts,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpBindAddress": "127.0.0.1",
    }))
    proc = subprocess.Popen([orthanc, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Pacs(f"http://127.0.0.1:{port}", "reader", password, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.call("/system")
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "Orthanc did not start"
            time.sleep(0.2)
    try:
        yield server
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture()
def pacs(tmp_path: Path) -> Iterator[Pacs]:
    with orthanc(tmp_path) as server:
        yield server


def _film(png: Path, out: Path, study: str, series: str, patient: str, k: int) -> Path:
    """A DX instance of the PNG's pixels with patient, study and series tags."""
    return _as_dicom(png, out, monochrome1=False, StudyInstanceUID=study, SeriesInstanceUID=series, PatientID=patient,
                     PatientSex="FM"[k % 2], PatientAge=f"{40 + k:03d}Y", ViewPosition="PA", StudyDate="20240101")


def _studies(folder: Path, images: list[Path], per_study: int = 3, first: int = 0) -> list[Path]:
    """DICOM files of the images, `per_study` per study (one series each), patients numbered from `first`."""
    from pydicom.uid import generate_uid

    folder.mkdir(exist_ok=True)
    files = []
    for s in range(0, len(images), per_study):
        study, series = generate_uid(), generate_uid()
        files += [_film(p, folder, study, series, f"patient{first + s // per_study}", k)
                  for k, p in enumerate(images[s: s + per_study])]
    return files


def test_embedding_from_dicomweb_equals_embedding_the_same_files(pacs: Pacs, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    films = tmp_path / "films"
    files = _studies(films, IMAGES)
    pacs.stow(files)
    ckpt = _checkpoint(tmp_path / "best.pt")
    table = tmp_path / "films.csv"
    table.write_text("path,labels,id\n" + "".join(f"{f.name},,{f.stem}\n" for f in files))
    run = CliRunner().invoke
    done = run(app, ["embed", str(ckpt), "--format", "csv", "--labels", str(table), "--images", str(films),
                     "--out", str(tmp_path / "folder.npz"), "--workers", "0"])
    assert done.exit_code == 0, done.output

    monkeypatch.setenv("CXRNEO_PACS_USER", pacs.user)
    monkeypatch.setenv("CXRNEO_PACS_PASSWORD", pacs.password)
    done = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "pacs.npz"), "--workers", "0"])
    assert done.exit_code == 0, done.output
    folder, remote = load(tmp_path / "folder.npz"), load(tmp_path / "pacs.npz")
    assert sorted(remote.ids) == sorted(folder.ids) == sorted(f.stem for f in files)  # keyed by SOPInstanceUID
    row = {i: k for k, i in enumerate(folder.ids)}
    order = [row[i] for i in remote.ids]
    assert np.array_equal(remote.codes, folder.codes[order])  # the same pixels, the same codes
    by_id = {r.id: r for r in remote.images}
    assert {by_id[f.stem].patient_id for f in files} == {"patient0", "patient1", "patient2"}
    assert all(r.view == "PA" and r.age is not None and r.sex in ("F", "M") for r in remote.images)

    again = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "again.npz"),
                      "--images", str(tmp_path / "pacs-dicom"), "--workers", "0"])
    assert again.exit_code == 0, again.output  # the kept instances: nothing retrieved twice, same codes
    assert np.array_equal(load(tmp_path / "again.npz").codes, remote.codes)

    broken = _film(IMAGES[0], tmp_path, files[0].stem[:-1] + "9", files[0].stem[:-1] + "8", "patient9", 0)
    from pydicom import dcmread

    ds = dcmread(broken)
    ds.PixelData = ds.PixelData[:100]  # a corrupt instance: its pixels cut short
    ds.save_as(broken)
    pacs.stow([broken])
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()  # a presentation state in a DX series: not an image, skipped and counted
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.11.1", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    state = Dataset()
    state.file_meta = meta
    state.SOPClassUID, state.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    state.StudyInstanceUID, state.SeriesInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID
    state.Modality, state.PatientID = "DX", "patient9"
    state.save_as(tmp_path / "state.dcm", enforce_file_format=True)
    pacs.stow([tmp_path / "state.dcm"])
    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,labels\n{files[0].stem},Effusion|Mass\n{files[1].stem},No Finding\n")
    labelled = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--labels", str(labels),
                         "--out", str(tmp_path / "labelled.npz"), "--images", str(tmp_path / "pacs-dicom"), "--workers", "0"])
    assert labelled.exit_code == 0, labelled.output
    assert "1 unreadable image skipped" in labelled.output  # listed, not fatal
    assert "1 object(s) of those series are not single-frame images" in labelled.output
    got = {r.id: r.labels for r in load(tmp_path / "labelled.npz").images}
    assert len(got) == len(files) and broken.stem not in got
    assert got[files[0].stem] == ("Effusion", "Mass") and got[files[1].stem] == () and got[files[2].stem] == ()

    unlabelled = run(app, ["evaluate", str(tmp_path / "pacs.npz"), "--out", str(tmp_path / "report"), "--no-neo4j"])
    assert unlabelled.exit_code == 1 and "evaluation needs labelled images" in unlabelled.output

    monkeypatch.setenv("CXRNEO_PACS_PASSWORD", "wrong-password")
    bad = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "x.npz")])
    assert bad.exit_code == 1 and "refused the credentials" in bad.output and "wrong-password" not in bad.output
    pacs.proc.terminate()
    pacs.proc.wait(30)
    down = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "y.npz")])
    assert down.exit_code == 1 and "cannot reach the PACS" in down.output
    assert os.stat(tmp_path / "orthanc.json").st_mode & 0o077 == 0  # the PACS password file is private


@pytest.mark.neo4j
def test_hits_from_a_pacs_carry_their_study_and_link_to_it(
    pacs: Pacs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_db: Database, neo4j_settings: Settings,
    browser: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from pydicom import dcmread
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    files = _studies(tmp_path / "films", IMAGES)
    pacs.stow(files)
    ckpt = _checkpoint(tmp_path / "best.pt")
    monkeypatch.setenv("CXRNEO_PACS_USER", pacs.user)
    monkeypatch.setenv("CXRNEO_PACS_PASSWORD", pacs.password)
    run = CliRunner().invoke
    done = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "pacs.npz"), "--workers", "0"])
    assert done.exit_code == 0, done.output
    build(clean_db, load(tmp_path / "pacs.npz"), mean_degree=3)
    detect(clean_db)
    tags = {f.stem: dcmread(f, stop_before_pixels=True) for f in files}
    searcher = Searcher.connect(neo4j_settings.model_copy(update={"data_dir": tmp_path}), ckpt,
                                images=tmp_path / "pacs-dicom")
    try:
        query = files[0].stem
        answer = searcher.by_id(query, QueryOptions(k=4, method='knn'))
        assert len(answer.hits) == 4
        for h in answer.hits:
            assert (h.study_uid, h.series_uid) == (tags[h.image_id].StudyInstanceUID, tags[h.image_id].SeriesInstanceUID)
        template = "http://viewer.example/study/{StudyInstanceUID}?series={SeriesInstanceUID}"
        with Running(create_app(searcher, viewer_url=template)) as running:
            with urllib.request.urlopen(running.url + "/config", timeout=30) as r:
                assert json.loads(r.read())["viewer_url"] == template
            browser.get(running.url + "/")
            _wait(browser, lambda d: "archived images" in d.find_element(By.ID, "status").text)
            browser.find_element(By.ID, "exclude-patient").click()  # all 9 images are of 3 patients
            browser.find_element(By.ID, "k").clear()
            browser.find_element(By.ID, "k").send_keys("4")
            Select(browser.find_element(By.ID, "method")).select_by_value("knn")
            browser.find_element(By.ID, "image-id").send_keys(query + "\n")
            links = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid a.study"))
            hrefs = {a.get_attribute("href") for a in links}
            want = {template.format(StudyInstanceUID=h.study_uid, SeriesInstanceUID=h.series_uid)
                    for h in answer.hits}
            assert len(links) == 4 and hrefs == want  # each hit links to its own study
    finally:
        searcher.close()
    bad = run(app, ["serve", "--viewer-url", "http://viewer.example/{PatientName}"])
    assert bad.exit_code == 1 and "--viewer-url must be" in bad.output


@pytest.mark.neo4j
def test_watch_keeps_up_with_new_studies_and_a_kill_loses_and_doubles_nothing(
    pacs: Pacs, tmp_path: Path, clean_db: Database, neo4j_settings: Settings,
) -> None:
    import signal
    import sys

    from cxrneo.db.connection import FAULT_ENV
    from cxrneo.db.meta import graph_meta
    from cxrneo.graph import normalise, similarity_edges

    images = sorted((EXAMPLES / "images").glob("*.png"))[:12]
    ckpt = _checkpoint(tmp_path / "best.pt")
    env = {**os.environ, "CXRNEO_NEO4J_URI": neo4j_settings.neo4j_uri, "CXRNEO_NEO4J_PASSWORD": neo4j_settings.password(),
           "CXRNEO_NEO4J_DATABASE": neo4j_settings.neo4j_database, "CXRNEO_DATA_DIR": str(tmp_path / "data"),
           "CXRNEO_PACS_USER": pacs.user, "CXRNEO_PACS_PASSWORD": pacs.password}
    env.pop(FAULT_ENV, None)
    codes_file = tmp_path / "archive.npz"
    watch = [sys.executable, "-m", "cxrneo.cli.main", "watch", "--dicomweb", pacs.root, "--checkpoint", str(ckpt),
             "--codes", str(codes_file), "--once", "--mean-degree", "3"]

    def poll(fault: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(watch, env={**env, **({FAULT_ENV: fault} if fault else {})}, capture_output=True,
                              text=True, timeout=600)

    pacs.stow(_studies(tmp_path / "films", images[:6]))
    first = poll()
    assert first.returncode == 0 and "6 new; the graph holds 6 images" in first.stdout, first.stderr
    pacs.stow(_studies(tmp_path / "films", images[6:9], first=2))
    second = poll()
    assert second.returncode == 0 and "3 new; the graph holds 9 images" in second.stdout, second.stderr
    meta = graph_meta(clean_db)
    assert meta is not None and meta.communityGeneration == meta.generation and meta.writing is None

    pacs.stow(_studies(tmp_path / "films", images[9:], first=3))
    killed = poll(fault="merge_images")  # kill -9 right after the new images' batch is written
    assert killed.returncode == -signal.SIGKILL
    meta = graph_meta(clean_db)
    assert meta is not None and meta.writing == "ingest"  # readers refuse until the next poll completes it
    again = poll()
    assert again.returncode == 0 and "0 new; the graph holds 12 images" in again.stdout, again.stderr
    codes = load(codes_file)
    assert len(codes) == len(set(codes.ids)) == 12  # nothing doubled in the codes file
    counts = clean_db.read("count_graph")[0]
    meta = graph_meta(clean_db)
    assert meta is not None and meta.writing is None and meta.communityGeneration == meta.generation
    assert (counts["nodes"], counts["edges"]) == (12, len(similarity_edges(normalise(codes.codes), meta.threshold)))
    quiet = poll()
    assert quiet.returncode == 0 and "0 new" in quiet.stdout and graph_meta(clean_db) == meta  # nothing moved


@pytest.mark.neo4j
def test_the_service_shows_a_pacs_image_through_wado_rs_when_it_has_no_file(
    pacs: Pacs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_db: Database, neo4j_settings: Settings,
) -> None:
    from cxrneo.pacs.dicomweb import DicomWeb
    from cxrneo.service.pixels import render

    files = _studies(tmp_path / "films", IMAGES[:6])
    pacs.stow(files)
    ckpt = _checkpoint(tmp_path / "best.pt")
    monkeypatch.setenv("CXRNEO_PACS_USER", pacs.user)
    monkeypatch.setenv("CXRNEO_PACS_PASSWORD", pacs.password)
    done = CliRunner().invoke(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "pacs.npz"),
                                    "--workers", "0"])
    assert done.exit_code == 0, done.output
    shutil.rmtree(tmp_path / "pacs-dicom")  # no local file of any image any more
    build(clean_db, load(tmp_path / "pacs.npz"), mean_degree=2)
    detect(clean_db)
    searcher = Searcher.open(clean_db, tmp_path / "snap", pacs=DicomWeb(pacs.root, pacs.user, pacs.password),
                        pacs_dir=tmp_path / "instances")
    with Running(create_app(searcher)) as running:
        def get(image_id: str) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(f"{running.url}/images/{image_id}/pixels?size=128", timeout=60) as r:
                    return r.status, bytes(r.read())
            except urllib.error.HTTPError as e:
                return e.code, bytes(e.read())

        assert json.loads(urllib.request.urlopen(running.url + "/config", timeout=30).read())["pixels"] is True
        status, png = get(files[0].stem)
        assert status == 200 and png == render(files[0], 128)  # the PACS's pixels, rendered as the model reads them
        assert len(list((tmp_path / "instances").glob("*.dcm"))) == 1  # kept: the next view needs no PACS
        pacs.proc.terminate()
        pacs.proc.wait(30)
        assert get(files[0].stem) == (200, png)
        status, body = get(files[1].stem)  # not retrieved yet, and the PACS is down
        assert status == 503 and "cannot reach the PACS" in json.loads(body)["error"]
