"""Decode PNG/JPEG (8/16-bit; grey, RGB, RGBA) or DICOM into one grey float channel in [0, 1]."""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cxrneo.embed.dicom import check_pixels, is_dicom, read_dicom
from cxrneo.errors import InputError

# ImageNet statistics, applied to the grey image replicated to three channels.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


def read_grey(path: Path, size: int | None = None) -> np.ndarray:
    """A size x size float32 grey image; any decoding problem is one InputError naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty image file")
        if is_dicom(path):
            grey = read_dicom(path)
        else:
            with Image.open(path) as img:  # reads the header only
                check_pixels(path, img.width * img.height * getattr(img, "n_frames", 1))
                img.load()
                grey = _to_grey(img)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise InputError(f"{path}: not a 2-D image (shape {grey.shape})")
    if size is not None and grey.shape != (size, size):
        resized = Image.fromarray(grey, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        grey = np.asarray(resized, dtype=np.float32)
    return np.ascontiguousarray(grey, dtype=np.float32)


def normalise(grey: np.ndarray) -> np.ndarray:
    """3 x H x W float32: the grey image replicated to three channels, ImageNet-normalised."""
    mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(STD, dtype=np.float32)[:, None, None]
    return (grey[None, :, :] - mean) / std
