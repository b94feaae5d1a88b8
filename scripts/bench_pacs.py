"""Embedding the bundled sample through DICOMweb against embedding the same DICOM files from a folder.

Starts a private Orthanc (Debian's orthanc + orthanc-dicomweb, as scripts/setup.sh installs them) on
loopback with authentication on, writes every bundled NIH sample PNG as a DX instance (one study per
patient), stores them through STOW-RS, then in one run times `cxrneo embed --dicomweb` (QIDO-RS,
WADO-RS, the embedding) and `cxrneo embed --format csv` over the same files, and checks that both
give the same codes.

    nice python scripts/bench_pacs.py [--checkpoint examples/checkpoint/best.pt] [--n 621]
"""

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxrneo.archive.codes import load

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "nih-sample"
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def films(out: Path, n: int) -> list[Path]:
    """The sample's first n PNGs as DX instances, one study per patient (patient, sex, age, view from the table)."""
    rows = {}
    for line in (SAMPLE / "Data_Entry_2017.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        rows[f[0]] = (f[3], f[5], f[4], f[6])
    studies: dict[str, tuple[str, str]] = {}
    files = []
    for png in sorted((SAMPLE / "images").glob("*.png"))[:n]:
        patient, sex, age, view = rows.get(png.name, ("0", "", "", ""))
        study, series = studies.setdefault(patient, (generate_uid(), generate_uid()))
        pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID = study, series, patient
        ds.PatientSex, ds.PatientAge, ds.ViewPosition = sex, f"{int(age or 0):03d}Y", view
        ds.Modality, ds.Rows, ds.Columns = "DX", *pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = pixels.tobytes()
        path = out / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "examples" / "checkpoint" / "best.pt")
    ap.add_argument("--n", type=int, default=621)
    a = ap.parse_args()
    orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(orthanc).is_file() or not PLUGIN.is_file():
        raise SystemExit("Orthanc and its DICOMweb plugin are missing: run scripts/setup.sh")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        password = secrets.token_urlsafe(12)
        config = tmp / "orthanc.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({
            "Name": "cxrneo-bench", "StorageDirectory": str(tmp / "storage"), "IndexDirectory": str(tmp / "index"),
            "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {"reader": password}, "Plugins": [str(PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpBindAddress": "127.0.0.1"}))
        proc = subprocess.Popen([orthanc, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        auth = "Basic " + b64encode(f"reader:{password}".encode()).decode()
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(urllib.request.Request(url + "/system", headers={"Authorization": auth}))
                    break
                except OSError:
                    time.sleep(0.2)
            folder = tmp / "films"
            folder.mkdir()
            files = films(folder, a.n)
            for s0 in range(0, len(files), 50):
                body = b"".join(b"--b\r\nContent-Type: application/dicom\r\n\r\n" + f.read_bytes() + b"\r\n"
                                for f in files[s0:s0 + 50]) + b"--b--\r\n"
                urllib.request.urlopen(urllib.request.Request(
                    url + "/dicom-web/studies", data=body, method="POST",
                    headers={"Authorization": auth, "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}))
            table = tmp / "films.csv"
            table.write_text("path,labels,id\n" + "".join(f"{f.name},,{f.stem}\n" for f in files))
            cli = [sys.executable, "-m", "cxrneo.cli.main", "embed", str(a.checkpoint), "--workers", "0", "--device", "cpu"]
            env = {**os.environ, "CXRNEO_PACS_USER": "reader", "CXRNEO_PACS_PASSWORD": password}
            t = time.perf_counter()
            subprocess.run([*cli, "--dicomweb", url + "/dicom-web", "--out", str(tmp / "pacs.npz")], env=env,
                           check=True, stdout=subprocess.DEVNULL)
            pacs_s = time.perf_counter() - t
            t = time.perf_counter()
            subprocess.run([*cli, "--format", "csv", "--labels", str(table), "--images", str(folder),
                            "--out", str(tmp / "folder.npz")], check=True, stdout=subprocess.DEVNULL)
            folder_s = time.perf_counter() - t
            remote, local = load(tmp / "pacs.npz"), load(tmp / "folder.npz")
            row = {i: k for k, i in enumerate(local.ids)}
            same = sorted(remote.ids) == sorted(local.ids) and np.array_equal(
                remote.codes, local.codes[[row[i] for i in remote.ids]])
            print(f"{len(files)} sample images, checkpoint {a.checkpoint}, CPU, load average {os.getloadavg()[0]:.1f}")
            print(f"| path | seconds | images/s |\n|---|---|---|\n"
                  f"| `cxrneo embed --dicomweb` (QIDO-RS + WADO-RS + embed) | {pacs_s:.1f} | {len(files) / pacs_s:.1f} |\n"
                  f"| `cxrneo embed` from the same DICOM files in a folder | {folder_s:.1f} | {len(files) / folder_s:.1f} |")
            print(f"ratio {pacs_s / folder_s:.2f}x; the same codes: {same}")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
