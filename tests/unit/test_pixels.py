"""Display PNGs of archived images: only files inside the image root, rendered as embedding reads them."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrneo.embed.images import read_grey
from cxrneo.errors import ConfigError, InputError, NotFoundError
from cxrneo.service.pixels import ImageFiles, encode_png

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nih-sample" / "images"


def _png(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values.astype(np.uint8), mode="L").save(path)
    return path


def _decode(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.mode == "L"
    return np.asarray(img)


def test_a_stored_image_renders_at_the_asked_size_with_its_own_pixels(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 256, (80, 120))
    _png(tmp_path / "a.png", values)
    files = ImageFiles(tmp_path)
    same = _decode(files.png("a", "a.png", 120))
    assert same.shape == (80, 120) and np.array_equal(same, values)  # no resize: the same bytes back
    small = _decode(files.png("a", str(tmp_path / "a.png"), 64))
    assert small.shape == (43, 64)  # longest side 64, aspect kept


def test_dicom_is_rendered_as_embedding_reads_it(tmp_path: Path) -> None:
    from tests.integration.test_query_image import _as_dicom

    png = sorted(EXAMPLES.glob("*.png"))[0]
    dicom = _as_dicom(png, tmp_path / "film.dcm")  # inverted values, MONOCHROME1
    files = ImageFiles(tmp_path)
    shown = _decode(files.png("film", "film.dcm", 224)).astype(np.float32) / 255
    assert np.abs(shown - read_grey(dicom)).max() <= 0.5 / 255 + 1e-6
    assert np.abs(shown - read_grey(png)).max() <= 1 / 255 + 1e-6  # bright is dense again


def test_nothing_outside_the_root_is_served(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _png(outside / "secret.png", np.zeros((8, 8)))
    (root / "link.png").symlink_to(outside / "secret.png")
    files = ImageFiles(root)
    for stored in (str(outside / "secret.png"), "../outside/secret.png", "link.png", "", "missing.png"):
        with pytest.raises(NotFoundError):
            files.png("x", stored, 64)


def test_an_archive_moved_elsewhere_is_found_by_file_name_under_the_root(tmp_path: Path) -> None:
    _png(tmp_path / "b.png", np.full((10, 10), 7))
    assert _decode(ImageFiles(tmp_path).png("b", "/old/place/b.png", 64)).max() == 7


def test_bad_sizes_unreadable_files_and_no_root_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not an image")
    files = ImageFiles(tmp_path)
    for size in (63, 1025):
        with pytest.raises(InputError, match="between 64 and 1024"):
            files.png("a", "broken.png", size)
    with pytest.raises(InputError, match="cannot be read as an image"):
        files.png("broken", "broken.png", 64)
    with pytest.raises(NotFoundError, match="--images"):
        ImageFiles(None).png("a", "a.png", 64)
    with pytest.raises(ConfigError, match="not a folder"):
        ImageFiles(tmp_path / "nowhere")


def test_the_cache_is_bounded_in_bytes_and_follows_file_changes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(6):
        _png(tmp_path / f"{i}.png", rng.integers(0, 256, (64, 64)))
    one = len(encode_png(read_grey(tmp_path / "0.png"), 64))
    files = ImageFiles(tmp_path, cache_bytes=3 * one)
    for i in range(6):
        files.png(str(i), f"{i}.png", 64)
    assert files._held <= 3 * one and len(files._cache) <= 3
    first = files.png("5", "5.png", 64)
    _png(tmp_path / "5.png", np.zeros((64, 64)))  # a rewritten file is rendered again
    assert files.png("5", "5.png", 64) != first
