"""DICOM input: files written here with pydicom from the bundled PNGs must read as their PNG does."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEGLSLossless, RLELossless, generate_uid
from typer.testing import CliRunner

from cxrneo import labels as lsets
from cxrneo.archive import codes
from cxrneo.cli.main import app
from cxrneo.embed import checkpoint, extract
from cxrneo.embed.dicom import is_dicom, window
from cxrneo.embed.images import read_grey
from cxrneo.embed.model import CxrNet
from cxrneo.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nih-sample"
PNGS = sorted((EXAMPLES / "images").glob("*.png"))[:8]
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.int64)  # 0..255


def write_dicom(
    path: Path,
    stored: np.ndarray,
    *,
    bits: int = 8,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    **elements: object,
) -> Path:
    """A single-frame DX file (Explicit VR Little Endian) holding ``stored`` as its pixel values."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", "cxrneo-test"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, int(signed)
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(ds.BitsAllocated, signed)]
    ds.PixelData = np.ascontiguousarray(stored.astype(dtype)).tobytes()
    for name, value in elements.items():
        setattr(ds, name, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def _voi_lut(entries: np.ndarray, first: int, bits: int) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(entries), first, bits]
    item.LUTData = [int(v) for v in entries]
    item["LUTData"].VR = "US"
    return item


def _variants(v: np.ndarray, tmp: Path) -> dict[str, Path]:
    """The same picture in the ways archives store it; each must display as the 8-bit PNG."""
    x12 = v * 16  # 12 bits stored in 16
    return {
        "8-bit MONOCHROME2": write_dicom(tmp / "a.dcm", v),
        "8-bit MONOCHROME1 (inverted)": write_dicom(tmp / "b.dcm", 255 - v, photometric="MONOCHROME1"),
        # linear window mapping 0..4080 to 0..1: y = (x - (c - 0.5)) / (w - 1) + 0.5
        "12-bit with a window": write_dicom(tmp / "c.dcm", x12, bits=12, WindowCenter="2040.5", WindowWidth="4081"),
        # modality values = 0.5 * stored - 50 = v, then a window over 0..255
        "12-bit rescaled, window": write_dicom(
            tmp / "d.dcm", 2 * v + 100, bits=12, RescaleSlope="0.5", RescaleIntercept="-50",
            RescaleType="US", WindowCenter="128", WindowWidth="256",
        ),
        "12-bit with a VOI LUT": write_dicom(
            tmp / "e.dcm", x12, bits=12, VOILUTSequence=Sequence([_voi_lut(np.arange(4096) // 16, 0, 8)]),
            WindowCenter="99", WindowWidth="3",  # a VOI LUT wins over a window
        ),
        "16-bit signed, MONOCHROME1, window": write_dicom(
            tmp / "f.dcm", 1000 - 8 * v, bits=16, signed=True, photometric="MONOCHROME1",
            WindowCenter="-20", WindowWidth="2040", VOILUTFunction="LINEAR_EXACT",  # (x - c) / w + 0.5
        ),
        "16-bit unsigned, no window": write_dicom(tmp / "g.dcm", v * 257, bits=16),
    }


def test_every_way_of_storing_reads_as_the_png(tmp_path: Path) -> None:
    png = PNGS[0]
    want = read_grey(png)
    for what, path in _variants(_png(png), tmp_path).items():
        got = read_grey(path)
        assert got.shape == want.shape and got.dtype == np.float32, what
        assert np.abs(got - want).max() < 1e-5, what
    resized = read_grey(tmp_path / "c.dcm", 64)
    assert np.abs(resized - read_grey(png, 64)).max() < 1e-5


def test_dicom_is_recognised_without_a_suffix(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "plain.dcm", _png(PNGS[1]))
    bare = tmp_path / "IM0001"
    bare.write_bytes(path.read_bytes())
    assert is_dicom(bare) and not is_dicom(PNGS[1])
    assert np.array_equal(read_grey(bare), read_grey(PNGS[1]))


def test_rle_lossless_is_decoded(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "rle.dcm", _png(PNGS[2]) * 16, bits=12, WindowCenter="2040.5", WindowWidth="4081")
    import pydicom

    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == RLELossless
    assert np.abs(read_grey(path) - read_grey(PNGS[2])).max() < 1e-5


def test_bad_dicom_is_one_line_naming_the_file(tmp_path: Path) -> None:
    import pydicom

    src = write_dicom(tmp_path / "ok.dcm", _png(PNGS[3]))
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless  # claims JPEG-LS; the bytes are not a codestream
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not really JPEG-LS \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "jpegls.dcm", enforce_file_format=True)
    multi = pydicom.dcmread(src)
    multi.NumberOfFrames = 2
    multi.PixelData = multi.PixelData * 2
    multi.save_as(tmp_path / "multi.dcm")
    no_pixels = pydicom.dcmread(src)
    del no_pixels.PixelData
    no_pixels.save_as(tmp_path / "nopixels.dcm")
    (tmp_path / "garbage.dcm").write_bytes(b"not a DICOM file at all" * 20)
    (tmp_path / "truncated.dcm").write_bytes(src.read_bytes()[:400])
    for name, message in [
        ("jpegls.dcm", "JPEG-LS"), ("multi.dcm", "multi-frame"), ("nopixels.dcm", "without pixel data"),
        ("garbage.dcm", "unreadable DICOM"), ("truncated.dcm", "DICOM"),
    ]:
        with pytest.raises(InputError) as info:
            read_grey(tmp_path / name, 64)
        text = str(info.value)
        assert name in text and message in text and "\n" not in text, text


def test_window_functions() -> None:
    x = np.array([0.0, 50.0, 100.0, 150.0, 200.0])
    assert window(x, 100, 101).tolist() == pytest.approx([0.0, 0.005, 0.505, 1.0, 1.0])  # (x - 99.5) / 100 + 0.5
    assert window(x, 100, 100, "LINEAR_EXACT").tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    sig = window(x, 100, 100, "SIGMOID")
    assert sig[2] == pytest.approx(0.5) and np.all(np.diff(sig) > 0) and 0 < sig[0] < sig[-1] < 1
    with pytest.raises(ValueError):
        window(x, 100, 0.5)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_dicom_folder_with_a_plain_csv_trains_embeds_and_matches_its_pngs(tmp_path: Path) -> None:
    """`cxrneo train` and `cxrneo embed` over DICOM files; their codes equal the PNGs' codes."""
    dcm, png = tmp_path / "dicom", tmp_path / "png"
    dcm.mkdir()
    png.mkdir()
    rows = list(csv.DictReader((EXAMPLES / "Data_Entry_2017.csv").open()))[: len(PNGS)]
    for kind, folder in (("dcm", dcm), ("png", png)):
        with open(folder / "labels.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "labels", "patient_id", "id"])
            for r in rows:
                stem = r["Image Index"].removesuffix(".png")
                w.writerow([f"{stem}.{kind}", r["Finding Labels"], r["Patient ID"], stem])
    for i, p in enumerate(PNGS):
        v = _png(p)
        if i % 2:  # half of them MONOCHROME1, 12-bit, windowed
            write_dicom(dcm / f"{p.stem}.dcm", 4080 - 16 * v, bits=12, photometric="MONOCHROME1",
                        WindowCenter="2040.5", WindowWidth="4081")
        else:
            write_dicom(dcm / f"{p.stem}.dcm", v)
        (png / p.name).write_bytes(p.read_bytes())
    run = CliRunner()
    ckpt = tmp_path / "ckpt"
    trained = run.invoke(app, ["train", "--format", "csv", "--labels", str(dcm / "labels.csv"), "--images", str(dcm),
                               "--size", "32", "--epochs", "1", "--batch-size", "4", "--out", str(ckpt),
                               "--workers", "0", "--device", "cpu", "--val-fraction", "0.25"])
    assert trained.exit_code == 0, trained.output
    assert "unreadable" not in trained.output
    got = {}
    for kind, folder in (("dcm", dcm), ("png", png)):
        out = tmp_path / f"{kind}.npz"
        done = run.invoke(app, ["embed", str(ckpt), "--format", "csv", "--labels", str(folder / "labels.csv"),
                                "--images", str(folder), "--out", str(out), "--workers", "0", "--device", "cpu"])
        assert done.exit_code == 0, done.output
        got[kind] = codes.load(out)
    assert got["dcm"].ids == got["png"].ids and len(got["dcm"].ids) == len(PNGS)
    assert np.allclose(got["dcm"].codes, got["png"].codes, atol=1e-6)
    one = extract.code_of_image(ckpt, dcm / f"{PNGS[1].stem}.dcm", device="cpu")  # what `cxrneo query FILE` uses
    assert np.allclose(one, got["png"].codes[1], atol=1e-5)


def test_untrained_checkpoint_gives_a_dicom_and_its_png_the_same_code(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    lset = lsets.get("nih")
    ckpt = tmp_path / "best.pt"
    checkpoint.save(ckpt, {"arch": "densenet121", "config": {"size": 64}, "label_set": lset.name,
                           "labels": list(lset.labels), "split": {"train": [], "val": []}, "metrics": {},
                           "model": CxrNet(len(lset.labels)).state_dict()})
    v = _png(PNGS[4])
    path = write_dicom(tmp_path / "x.dcm", 255 - v, photometric="MONOCHROME1")
    a = extract.code_of_image(ckpt, path, device="cpu")
    b = extract.code_of_image(ckpt, PNGS[4], device="cpu")
    assert np.array_equal(a, b)
