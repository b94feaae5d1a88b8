"""Does an image file look like a radiograph at all? Checks on its pixels, before the code is asked.

A chest radiograph is grey, has contrast and is smooth from one pixel to the next. Each rule's bound
sits far outside what real films show (measured on the 621 bundled NIH films at 224 px: grey level
spread 0.109 to 0.316, neighbouring-pixel correlation 0.956 to 0.998, no colour at all), so a real film
is not caught by them; what they catch is said in one line. Images too small to be a radiograph are
refused outright, from the header, before anything is decoded.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from cxrneo.embed.images import FORMATS, declared_shape
from cxrneo.errors import InputError

MIN_SIDE = 64  # pixels on the shorter side; a chest film is hundreds to thousands
MIN_SPREAD = 0.05  # standard deviation of the grey levels in [0, 1]
MIN_SMOOTHNESS = 0.8  # correlation of horizontally neighbouring pixels
MAX_COLOUR = 0.05  # mean (max - min) over R, G, B in [0, 1]
COLOUR_MODES = ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV")


def check_size(path: Path, name: str) -> None:
    """InputError when the header declares an image too small to be a radiograph."""
    width, height, _ = declared_shape(path)
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{name} is {width}x{height} pixels: too small to be a radiograph "
                         f"(at least {MIN_SIDE} pixels on the shorter side)")


def doubt(path: Path, grey: np.ndarray) -> str | None:
    """Why the image does not look like a radiograph (one line), or None. ``grey``: the image as the
    model reads it (cxrneo.embed.images.read_grey)."""
    g = np.asarray(grey, np.float64)
    if float(g.std()) < MIN_SPREAD:
        return "the image is nearly uniform: no anatomy to compare"
    left, right = g[:, :-1].ravel(), g[:, 1:].ravel()
    left, right = left - left.mean(), right - right.mean()
    scale = float(np.sqrt((left @ left) * (right @ right)))
    if scale > 0 and float(left @ right) / scale < MIN_SMOOTHNESS:
        return "the image is mostly noise, not a radiograph"
    if colour(path) > MAX_COLOUR:
        return "the image is a colour picture, not a radiograph"
    return None


def colour(path: Path) -> float:
    """How coloured a PNG or JPEG is: the mean spread of R, G and B over a reduced copy (0 for grey
    files and for DICOM, which the reader turns grey by its photometric interpretation)."""
    try:
        with Image.open(path, formats=FORMATS) as img:
            if img.mode not in COLOUR_MODES:
                return 0.0
            img.thumbnail((128, 128))
            rgb = np.asarray(img.convert("RGB"), np.float32) / 255.0
    except (OSError, ValueError, SyntaxError):
        return 0.0  # not a PNG or JPEG: DICOM (its reader already said whether it can be read)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
