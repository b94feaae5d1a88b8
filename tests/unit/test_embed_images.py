"""Image decoding: bit depths and colour modes to one grey channel, clear errors for bad files."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrneo.embed.images import normalise, read_grey
from cxrneo.errors import InputError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "nih-sample" / "images"

GRADIENT = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))


def _write(path: Path, img: Image.Image) -> Path:
    img.save(path)
    return path


@pytest.mark.parametrize(
    "name, make",
    [
        ("grey8.png", lambda: Image.fromarray((GRADIENT * 255).round().astype(np.uint8))),
        ("grey16.png", lambda: Image.fromarray((GRADIENT * 65535).round().astype(np.uint16))),
        (
            "rgb.png",
            lambda: Image.fromarray(np.repeat((GRADIENT * 255).round().astype(np.uint8)[..., None], 3, 2)),
        ),
        (
            "rgba.png",
            lambda: Image.fromarray(
                np.dstack(
                    [
                        np.repeat((GRADIENT * 255).round().astype(np.uint8)[..., None], 3, 2),
                        np.full((32, 32), 255, np.uint8),
                    ]
                )
            ),
        ),
        ("grey.jpg", lambda: Image.fromarray((GRADIENT * 255).round().astype(np.uint8))),
    ],
)
def test_modes_become_the_same_grey(tmp_path: Path, name: str, make: object) -> None:
    grey = read_grey(_write(tmp_path / name, make()))  # type: ignore[operator]
    assert grey.dtype == np.float32 and grey.shape == (32, 32)
    assert np.abs(grey - GRADIENT).max() < (0.03 if name.endswith(".jpg") else 0.003)


def test_resize_and_normalise(tmp_path: Path) -> None:
    grey = read_grey(_write(tmp_path / "g.png", Image.fromarray((GRADIENT * 255).astype(np.uint8))), 64)
    assert grey.shape == (64, 64) and 0 <= grey.min() and grey.max() <= 1
    x = normalise(grey)
    assert x.shape == (3, 64, 64)
    assert np.allclose(x[0] * 0.229 + 0.485, grey, atol=1e-6)  # every channel is the grey image


def test_bad_files_are_one_line_naming_the_file(tmp_path: Path) -> None:
    src = sorted(EXAMPLES.glob("*.png"))[0].read_bytes()
    cases = {
        "empty.png": b"",
        "truncated.png": src[: len(src) // 2],
        "garbage.png": b"not an image at all" * 10,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as info:
            read_grey(tmp_path / name, 64)
        assert name in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such image"):
        read_grey(tmp_path / "missing.png")


def test_real_nih_images() -> None:
    files = sorted(EXAMPLES.glob("*.png"))
    assert len(files) == 621
    for f in files[:3] + files[-3:]:
        grey = read_grey(f, 224)
        assert grey.shape == (224, 224) and 0.05 < grey.mean() < 0.95 and grey.std() > 0.05


def test_image_bombs_are_refused_from_their_headers(tmp_path: Path) -> None:
    """A PNG or DICOM whose header declares more pixels than any X-ray is refused before decoding."""
    import io
    import struct
    import zlib

    from PIL import Image

    from cxrneo.embed.images import read_grey
    from cxrneo.errors import InputError
    from tests.integration.test_query_image import _as_dicom

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    png = bytearray(buf.getvalue())
    ihdr = png[12:29]  # type + data of the IHDR chunk
    ihdr[4:12] = struct.pack(">II", 9_000, 9_000)  # declares 81 million pixels (under Pillow's own bomb limits)
    png[12:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bytes(png))
    with pytest.raises(InputError, match="more than the 64,000,000"):
        read_grey(bomb)
    small = tmp_path / "small.png"
    Image.new("L", (8, 8)).save(small)
    dicom = _as_dicom(small, tmp_path / "bomb.dcm")
    import pydicom

    ds = pydicom.dcmread(dicom)
    ds.Rows, ds.Columns = 9_000, 9_000  # the pixel data stays 64 bytes: never decoded
    ds.save_as(dicom)
    with pytest.raises(InputError, match="more than the 64,000,000"):
        read_grey(dicom)
