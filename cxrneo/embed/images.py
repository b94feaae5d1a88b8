"""Decode PNG/JPEG (8/16-bit; grey, RGB, RGBA) or DICOM into one grey float channel in [0, 1].

Only these formats are opened: Pillow is asked for PNG and JPEG alone (no plug-in that hands work
to another program, no format with its own decompression bombs), and every image's pixel count is
read from its header and checked against the budget before a pixel is decoded.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cxrneo.embed import dicom
from cxrneo.embed.dicom import MAX_PIXELS, check_pixels, is_dicom, open_dicom, read_dicom
from cxrneo.errors import InputError, TooLargeError

# ImageNet statistics, applied to the grey image replicated to three channels.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
FORMATS = ("PNG", "JPEG")  # what Pillow may open; DICOM is read by cxrneo.embed.dicom
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb check, as a second line


def _to_grey(img: Image.Image) -> np.ndarray:
    """One float32 channel in [0, 1] from any common PIL mode."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img, dtype=np.float32)
        out: np.ndarray = np.clip(arr / 65535.0, 0.0, 1.0)
        return out
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Any problem of reading ``path`` as one InputError naming the file (TooLargeError for a bomb)."""
    from pydicom.errors import InvalidDicomError

    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty image file")
        yield
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except Image.DecompressionBombError as e:
        raise TooLargeError(f"{path}: {e}") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a PNG, JPEG or DICOM image") from None
    except (InvalidDicomError, OSError, SyntaxError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            RuntimeError, EOFError, OverflowError) as e:  # RecursionError (deep DICOM sequences) is a RuntimeError
        raise InputError(f"{path}: unreadable image ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})") \
            from None


def read_grey(path: Path, size: int | None = None) -> np.ndarray:
    """A size x size float32 grey image; any decoding problem is one InputError naming the file."""
    path = Path(path)
    with _decoding(path):
        if is_dicom(path):
            grey = read_dicom(path)
        else:
            with Image.open(path, formats=FORMATS) as img:  # reads the header only
                check_pixels(path, img.width * img.height * getattr(img, "n_frames", 1))
                img.load()
                grey = _to_grey(img)
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise InputError(f"{path}: not a 2-D image (shape {grey.shape})")
    if size is not None and grey.shape != (size, size):
        resized = Image.fromarray(grey, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        grey = np.asarray(resized, dtype=np.float32)
    return np.ascontiguousarray(grey, dtype=np.float32)


def declared_pixels(path: Path) -> int:
    """The pixels an image file's header declares (frames counted), read without decoding any; an
    InputError for a file that is not a PNG, JPEG or DICOM image, TooLargeError above MAX_PIXELS."""
    width, height, frames = declared_shape(path)
    return width * height * frames


def declared_shape(path: Path) -> tuple[int, int, int]:
    """Width, height and frames as an image file's header declares them (nothing decoded); errors as
    `declared_pixels`."""
    path = Path(path)
    with _decoding(path):
        if is_dicom(path):
            ds = open_dicom(path)  # checked against the budget as it opens
            return dicom.columns(ds), dicom.rows(ds), dicom.frames(ds)
        with Image.open(path, formats=FORMATS) as img:
            shape = int(img.width), int(img.height), int(getattr(img, "n_frames", 1))
    check_pixels(path, shape[0] * shape[1] * shape[2])
    return shape


def normalise(grey: np.ndarray) -> np.ndarray:
    """3 x H x W float32: the grey image replicated to three channels, ImageNet-normalised."""
    mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(STD, dtype=np.float32)[:, None, None]
    return (grey[None, :, :] - mean) / std
