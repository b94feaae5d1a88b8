"""DICOM chest X-rays to one grey float channel in [0, 1], as a viewer would display them.

The pipeline follows the DICOM grayscale display chain (PS3.3 C.11):

1. stored values (8 to 16 bits, signed or not; compressed transfer syntaxes are decoded when
   pydicom has a decoder for them here, else refused in one line);
2. the modality transform: Modality LUT Sequence, or Rescale Slope / Intercept;
3. the VOI transform, to [0, 1]: the first VOI LUT (scaled by the LUT's own value range),
   else the first window (Window Center / Width, LINEAR, LINEAR_EXACT or SIGMOID), else the
   whole range the stored bits can represent after the modality transform (a 12-bit image
   without a window is divided by 4095 as a 16-bit PNG is by 65535);
4. MONOCHROME1 (0 = white) is inverted, so that bright always means dense.

Multi-frame images are refused; colour images (rare for X-rays) are turned grey by luminance.
"""

from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.errors import InputError

SUFFIXES = (".dcm", ".dicom")
NOT_DICOM = (".png", ".jpg", ".jpeg")  # decoded by Pillow without sniffing


def is_dicom(path: Path) -> bool:
    """A .dcm/.dicom name, or the DICM magic of a DICOM file (archives often drop suffixes)."""
    suffix = path.suffix.lower()
    if suffix in SUFFIXES or suffix in NOT_DICOM:
        return suffix in SUFFIXES
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _one(value: Any) -> float:
    """The first of a multi-valued element (Window Center may hold several windows)."""
    from pydicom.multival import MultiValue

    if isinstance(value, list | tuple | MultiValue):
        value = value[0]
    return float(value)


def window(x: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """The VOI window of PS3.3 C.11.2.1.2 and C.11.2.1.3, mapped to [0, 1]."""
    function = function.strip().upper() or "LINEAR"
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError("window width must be > 0")
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width < 1:
        raise ValueError("window width must be >= 1 for a LINEAR window")
    if width == 1:  # a threshold
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _stored_range(ds: Any) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _pixels(path: Path, ds: Any) -> np.ndarray:
    """Decoded stored values of a single-frame image; compressed data without a decoder is refused."""
    from pydicom.pixels.decoders.base import get_decoder

    if "PixelData" not in ds:
        raise InputError(f"{path}: DICOM without pixel data")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(f"{path}: multi-frame DICOM ({ds.NumberOfFrames} frames); cxrneo reads single images")
    meta = getattr(ds, "file_meta", None)
    tsuid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if tsuid is not None and tsuid.is_compressed:
        try:
            available = get_decoder(tsuid).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise InputError(
                f"{path}: compressed DICOM ({tsuid.name}) that this installation cannot decode; "
                "decompress it first (e.g. `gdcmconv --raw`) or install pylibjpeg with its plugins"
            )
    arr = ds.pixel_array
    if arr.ndim == 3 and int(ds.get("SamplesPerPixel", 1)) == 3:  # colour, already RGB
        arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    if arr.ndim != 2:
        raise InputError(f"{path}: not a 2-D DICOM image (shape {arr.shape})")
    return np.asarray(arr)


def _voi_lut(ds: Any) -> tuple[np.ndarray, int]:
    """The first VOI LUT's entries and the first value it maps.

    Read here rather than through pydicom's ``apply_voi``, which (pydicom 3.0) computes the
    table index in the LUT's own 8-bit type and wraps around for 8-bit LUTs over 12-bit input.
    """
    item = ds.VOILUTSequence[0]
    entries, first = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
    data = item.LUTData
    if isinstance(data, bytes):  # OW: 16-bit words in the data set's byte order
        little = getattr(ds, "is_little_endian", None)
        little = True if little is None else bool(little)
        lut = np.frombuffer(data, dtype="<u2" if little else ">u2")
    else:
        lut = np.atleast_1d(np.asarray(data))
    if len(lut) < entries:
        raise ValueError(f"VOI LUT has {len(lut)} entries, its descriptor says {entries}")
    return lut[:entries].astype(np.float64), first


def _to_unit(ds: Any, stored: np.ndarray) -> np.ndarray:
    """Modality then VOI transform of stored values, to [0, 1] (before MONOCHROME1 inversion)."""
    from pydicom.pixels.processing import apply_modality_lut

    grey = ds.get("SamplesPerPixel", 1) == 1
    values = np.asarray(apply_modality_lut(stored, ds) if grey else stored, dtype=np.float64)
    if grey and ds.get("VOILUTSequence"):
        lut, first = _voi_lut(ds)
        out = lut[np.clip(np.rint(values).astype(np.int64) - first, 0, len(lut) - 1)]
        lo, hi = float(lut.min()), float(lut.max())
        return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
    if grey and "WindowCenter" in ds and "WindowWidth" in ds:
        return window(values, _one(ds.WindowCenter), _one(ds.WindowWidth), str(ds.get("VOILUTFunction", "")))
    lo, hi = _stored_range(ds)
    if grey and "ModalityLUTSequence" in ds:  # no simple closed form: the image's own range
        lo, hi = float(values.min()), float(values.max())
    elif grey:
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)


MAX_PIXELS = 64_000_000  # 8,000 x 8,000: above any chest radiograph; a larger image is refused undecoded


def check_pixels(path: Path, pixels: int) -> None:
    """Refuse an image whose header declares more than MAX_PIXELS pixels (an image bomb) before decoding it."""
    if pixels > MAX_PIXELS:
        raise InputError(f"{path}: {pixels:,} pixels, more than the {MAX_PIXELS:,} an X-ray may have")


def read_dicom(path: Path) -> np.ndarray:
    """One float32 grey channel in [0, 1] (bright = dense); any problem is one InputError naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
        check_pixels(path, int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0)
                     * int(ds.get("NumberOfFrames", 1) or 1))  # from the header, before decoding
        unit = _to_unit(ds, _pixels(path, ds))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except (InvalidDicomError, OSError, ValueError, KeyError, AttributeError, TypeError, IndexError,
            NotImplementedError, RuntimeError, EOFError) as e:
        first = (str(e).splitlines() or [""])[0]
        raise InputError(f"{path}: unreadable DICOM ({type(e).__name__}: {first})") from None
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        unit = 1.0 - unit
    return np.ascontiguousarray(unit, dtype=np.float32)
