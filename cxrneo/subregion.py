"""A marked region of an X-ray as a code of its own (docs/method.md, "Region queries"); pure numpy.

A code is the mean of the last feature map's cells after the ReLU (7 x 7 at 224 px). A region is a
box in the image's own coordinates, fractions of its width and height: (x0, y0, x1, y1) with
0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1. The image is read square (stretched, as embedding reads
it), so the same fractions fall on the grid. Each cell weighs the share of its area the box covers,
and the region's code is the weighted mean of the cells:

    r = sum_i w_i f_i / sum_i w_i,   w_i = |box ∩ cell_i| / |cell_i|

A box over the whole image gives every cell weight 1, so r is the image's code exactly; a box
inside one cell gives that cell's vector. r is a mean of post-ReLU cells like the archive's codes,
so it is compared with them directly (no new storage).
"""

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]
MIN_SIDE = 1e-4  # the narrowest box side, as a fraction (a 1024-pixel film's pixel is about 1e-3)


def check_box(values: Sequence[float]) -> Box:
    """Four fractions x0, y0, x1, y1 with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (ValueError otherwise)."""
    if len(values) != 4:
        raise ValueError(f"a region is 4 numbers x0, y0, x1, y1, got {len(values)}")
    x0, y0, x1, y1 = (float(v) for v in values)
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError("a region's numbers must be finite")
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError("a region is x0, y0, x1, y1 in fractions of the width and height, "
                         f"0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {x0:g}, {y0:g}, {x1:g}, {y1:g}")
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        raise ValueError(f"a region must be at least {MIN_SIDE:g} of the image wide and high")
    return x0, y0, x1, y1


def parse_box(text: str) -> Box:
    """The CLI's `x0,y0,x1,y1` (ValueError with a one-line reason)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"a region is x0,y0,x1,y1 such as 0.1,0.2,0.5,0.6, got {text!r}") from None
    return check_box(values)


def _overlap(lo: float, hi: float, n: int) -> np.ndarray:
    """Per grid interval [j/n, (j+1)/n], the share of it that [lo, hi] covers."""
    j = np.arange(n, dtype=np.float64)  # in grid units: cell j spans [j, j + 1]
    out: np.ndarray = np.clip(np.minimum(j + 1, hi * n) - np.maximum(j, lo * n), 0.0, 1.0)
    return out


def cell_weights(box: Box, rows: int, cols: int) -> np.ndarray:
    """rows x cols: the share of each cell's area that the box covers (0 to 1)."""
    x0, y0, x1, y1 = check_box(box)
    out: np.ndarray = np.outer(_overlap(y0, y1, rows), _overlap(x0, x1, cols))
    return out


def region_code(cells: np.ndarray, box: Box) -> np.ndarray:
    """The region's code from one image's cells (channels x rows x columns): their mean weighted by
    `cell_weights` (float32)."""
    f = np.asarray(cells, np.float64)
    if f.ndim != 3:
        raise ValueError(f"cells must be channels x rows x columns, got shape {f.shape}")
    return pooled(f, cell_weights(box, f.shape[1], f.shape[2])).astype(np.float32)


def pooled(cells: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The cells' (channels x rows x columns) mean weighted by ``weights`` (rows x columns, summing above 0)."""
    out: np.ndarray = np.einsum("chw,hw->c", cells, weights) / float(weights.sum())
    return out


def from_pixels(x: float, y: float, w: float, h: float, width: float, height: float) -> Box:
    """A box given in pixels (left, top, width, height, as NIH's BBox_List_2017.csv) of an image of
    width x height pixels, as fractions (clipped to the image)."""
    x0, y0 = max(0.0, x / width), max(0.0, y / height)
    x1, y1 = min(1.0, (x + w) / width), min(1.0, (y + h) / height)
    return check_box((x0, y0, x1, y1))
