"""Embedding from a PACS over DICOMweb, against a real Orthanc (Debian's orthanc + orthanc-dicomweb,
installed by scripts/setup.sh): a private Orthanc on loopback, authentication on, its own storage."""

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.cli import app
from cxrneo.codes import load
from tests.integration.test_query_image import EXAMPLES, _checkpoint
from tests.serving import free_port

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


@pytest.fixture()
def pacs(tmp_path: Path) -> Iterator[Pacs]:
    orthanc = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None)
    assert orthanc and PLUGIN.is_file(), "Orthanc and its DICOMweb plugin are missing: run scripts/setup.sh"
    port, password = free_port(), secrets.token_urlsafe(12)
    config = tmp_path / "orthanc.json"
    config.touch(mode=0o600)
    config.write_text(json.dumps({
        "Name": "cxrneo-test", "StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "index"),
        "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {"reader": password}, "Plugins": [str(PLUGIN)],
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


def _film(png: Path, out: Path, study: str, series: str, patient: str, k: int) -> Path:
    """A DX instance of the PNG's pixels with patient, study and series tags."""
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientSex, ds.PatientAge, ds.ViewPosition = patient, "FM"[k % 2], f"{40 + k:03d}Y", "PA"
    ds.StudyDate, ds.Modality, ds.Rows, ds.Columns = "20240101", "DX", *pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return out / f"{ds.SOPInstanceUID}.dcm"


def test_embedding_from_dicomweb_equals_embedding_the_same_files(pacs: Pacs, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.uid import generate_uid

    films = tmp_path / "films"
    films.mkdir()
    files = []
    for s in range(3):
        study, series = generate_uid(), generate_uid()
        files += [_film(p, films, study, series, f"patient{s}", k) for k, p in enumerate(IMAGES[3 * s: 3 * s + 3])]
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

    monkeypatch.setenv("CXRNEO_PACS_PASSWORD", "wrong-password")
    bad = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "x.npz")])
    assert bad.exit_code == 1 and "refused the credentials" in bad.output and "wrong-password" not in bad.output
    pacs.proc.terminate()
    pacs.proc.wait(30)
    down = run(app, ["embed", str(ckpt), "--dicomweb", pacs.root, "--out", str(tmp_path / "y.npz")])
    assert down.exit_code == 1 and "cannot reach the PACS" in down.output
    assert os.stat(tmp_path / "orthanc.json").st_mode & 0o077 == 0  # the PACS password file is private
