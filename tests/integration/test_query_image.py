"""`cxrneo query IMAGE_FILE --checkpoint`: embed, ingest, then find an archived image by its file (PNG or DICOM)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.cli.main import app
from cxrneo.db.connection import Database
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nih-sample"


def _as_dicom(png: Path, out: Path, monochrome1: bool = True, **tags: str) -> Path:
    """The PNG's pixels as an 8-bit DX DICOM file written with pydicom: MONOCHROME1 (inverted values)
    by default; ``tags`` (StudyInstanceUID, PatientID, ...) set as given. ``out``: a file, or a folder
    where it is named after its SOPInstanceUID."""
    import numpy as np
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
    if monochrome1:
        pixels = 255 - pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = "DX", *pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    for name, value in tags.items():
        setattr(ds, name, value)
    if out.is_dir():
        out = out / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def _checkpoint(path: Path) -> Path:
    """An untrained DenseNet-121 checkpoint at 64 px: enough to make codes (speed, not quality)."""
    import torch

    from cxrneo import labels as lsets
    from cxrneo.embed import checkpoint
    from cxrneo.embed.model import CxrNet

    torch.manual_seed(0)
    lset = lsets.get("nih")
    doc = {"arch": "densenet121", "config": {"size": 64}, "label_set": lset.name, "labels": list(lset.labels),
           "split": {"train": [], "val": []}, "metrics": {}, "model": CxrNet(len(lset.labels)).state_dict()}
    checkpoint.save(path, doc)
    return path


def sample_graph(neo4j_db: Database, settings: Settings, tmp: Path, n: int = 24) -> tuple[Path, list[str]]:
    """The graph of the first ``n`` sample images embedded by a small checkpoint, built through the CLI
    (embed, ingest, communities) into the database behind ``settings``: (checkpoint, sorted ids)."""
    neo4j_db.auto("delete_everything")
    ckpt = _checkpoint(tmp / "best.pt")
    run = CliRunner(env={"CXRNEO_NEO4J_URI": settings.neo4j_uri, "CXRNEO_NEO4J_PASSWORD": settings.password(),
                         "CXRNEO_DATA_DIR": str(tmp)}).invoke
    images = EXAMPLES / "images"
    done = run(app, ["embed", str(ckpt), "--labels", str(EXAMPLES / "Data_Entry_2017.csv"), "--images", str(images),
                     "--out", str(tmp / "codes.npz"), "--workers", "0", "--max-images", str(n)])
    assert done.exit_code == 0, done.output
    for args in (["ingest", str(tmp / "codes.npz"), "--mean-degree", "4"], ["communities"]):
        done = run(app, args)
        assert done.exit_code == 0, done.output
    return ckpt, sorted(p.name for p in images.glob("*.png"))[:n]


def test_an_archived_image_file_finds_itself(clean_db: Database, neo4j_settings: Settings, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    ckpt = _checkpoint(tmp_path / "best.pt")
    codes = tmp_path / "codes.npz"
    run = CliRunner()
    common = ["--labels", str(EXAMPLES / "Data_Entry_2017.csv"), "--images", str(EXAMPLES / "images"), "--max-images", "24"]
    embedded = run.invoke(app, ["embed", str(ckpt), *common, "--out", str(codes), "--workers", "0"])
    assert embedded.exit_code == 0, embedded.output
    for args in (["ingest", str(codes), "--mean-degree", "4"], ["communities"]):
        done = run.invoke(app, args)
        assert done.exit_code == 0, done.output
    image = sorted((EXAMPLES / "images").glob("*.png"))[3]
    for method in ("knn", "community"):
        found = run.invoke(app, ["query", str(image), "-k", "3", "--method", method,
                                 "--checkpoint", str(tmp_path), "--json"])
        assert found.exit_code == 0, found.output
        answer = json.loads(found.output.strip().splitlines()[-1])
        hits = answer["hits"]
        assert len(hits) == 3 and len({h["image_id"] for h in hits}) == 3
        # the file's code equals its stored code: it is that archived film, answered as it (itself left out)
        assert answer["duplicate_of"] == image.name and image.name not in {h["image_id"] for h in hits}
    dicom = _as_dicom(image, tmp_path / "film.dcm")  # the same film as a DICOM file (MONOCHROME1)
    found = run.invoke(app, ["query", str(dicom), "-k", "3", "--method", "knn", "--checkpoint", str(tmp_path), "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output.strip().splitlines()[-1])["duplicate_of"] == image.name
    unreadable = tmp_path / "broken.png"
    unreadable.write_bytes(b"\x89PNG not really")
    bad = run.invoke(app, ["query", str(unreadable), "--checkpoint", str(ckpt)])
    assert bad.exit_code == 1 and "broken.png" in bad.output and "Traceback" not in bad.output
