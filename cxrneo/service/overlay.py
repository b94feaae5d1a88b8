"""Similarity maps drawn over the X-rays they explain, as PNGs (numpy and Pillow only).

Each map (a grid of per-cell shares of the cosine) is upsampled smoothly to the image and blended
over it in a dark-to-bright scale (black, purple, red, orange, pale yellow) from the smallest to the
largest share of the pair, opacity growing with it: cells that stand out are coloured, and a map
with no cell standing out leaves the image as it is. Both maps of a pair use one scale, so their
colours compare.
"""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cxrneo.similarity import SimilarityMaps

# a perceptually ordered dark-to-bright scale (anchor colours, linearly interpolated)
_SCALE = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64)


def colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB (float 0-255), through the scale."""
    v = np.clip(values, 0.0, 1.0) * (len(_SCALE) - 1)
    low = np.floor(v).astype(int).clip(0, len(_SCALE) - 2)
    t = (v - low)[..., None]
    out: np.ndarray = _SCALE[low] * (1 - t) + _SCALE[low + 1] * t
    return out


def scale_of(maps: SimilarityMaps) -> tuple[float, float]:
    """The (smallest, largest) per-cell share over both maps: the ends of the colour scale."""
    return float(min(maps.query.min(), maps.hit.min())), float(max(maps.query.max(), maps.hit.max()))


def blend(grey: np.ndarray, grid: np.ndarray, scale: tuple[float, float]) -> Image.Image:
    """A square grey image in [0, 1] with `grid` (shares of the cosine) over it, from scale[0] to scale[1]."""
    size = grey.shape[0]
    smooth = np.asarray(Image.fromarray(np.asarray(grid, np.float32), mode="F").resize((size, size),
                        Image.Resampling.BICUBIC), np.float64)
    low, high = scale
    span = high - low
    share = np.clip((smooth - low) / span, 0.0, 1.0) if span > 1e-9 * max(abs(high), 1e-12) else np.zeros_like(smooth)
    alpha = (0.65 * share)[..., None]
    rgb = np.repeat(np.asarray(grey, np.float64)[..., None] * 255.0, 3, axis=2) * (1 - alpha) + colours(share) * alpha
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8), mode="RGB")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)  # fast: drawn per request
    return buf.getvalue()


def side_png(grey: np.ndarray, grid: np.ndarray, scale: tuple[float, float]) -> bytes:
    """One image with its map (the page's overlay in the large view)."""
    return _png(blend(grey, grid, scale))


def pair_png(query_grey: np.ndarray, hit_grey: np.ndarray, maps: SimilarityMaps, names: tuple[str, str]) -> bytes:
    """The query and the hit side by side with their maps, a colour scale and the cosine in the caption."""
    size, pad, text = query_grey.shape[0], 16, 18
    scale = scale_of(maps)
    width, height = 2 * size + 3 * pad, size + 2 * pad + 5 * text + 24
    page = Image.new("RGB", (width, height), (16, 18, 20))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default()
    for k, (grey, grid, label) in enumerate(((query_grey, maps.query, f"query: {names[0]}"),
                                             (hit_grey, maps.hit, f"hit: {names[1]}"))):
        x = pad + k * (size + pad)
        draw.text((x, pad), label[:60], fill=(228, 231, 234), font=font)
        page.paste(blend(grey, grid, scale), (x, pad + text))
        draw.text((x, pad + text + size + 4), f"sum of this map = {float(grid.sum()):.4f}", fill=(154, 163, 173), font=font)
    y = pad + 3 * text + size
    bar = colours(np.linspace(0, 1, 2 * size + pad)[None, :].repeat(12, axis=0))
    page.paste(Image.fromarray(bar.astype(np.uint8), mode="RGB"), (pad, y))
    draw.text((pad, y + 14), f"{scale[0]:.4f} per cell", fill=(154, 163, 173), font=font)
    draw.text((pad + 2 * size + pad - 110, y + 14), f"{scale[1]:.4f} per cell", fill=(154, 163, 173), font=font)
    draw.text((pad, y + 14 + text), f"cosine {maps.cosine:.4f} = the sum of either map: brighter cells make more of "
              "the similarity", fill=(228, 231, 234), font=font)
    return _png(page)
