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

from cxrneo.errors import InputError, TooLargeError

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
    try:
        arr = ds.pixel_array
    except (RuntimeError, ValueError) as e:  # a decoder is installed, but the stream is not what it claims
        if tsuid is None or not tsuid.is_compressed:
            raise
        raise InputError(f"{path}: compressed DICOM ({tsuid.name}) whose pixel data cannot be decoded "
                         f"({type(e).__name__})") from None
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
MAX_FILE_BYTES = 1 << 30  # a DICOM file larger than this is refused unread
HEADER_BYTES = 16 << 20  # room for the elements beside the pixels (inflated deflate data counts them too)
MAX_INFLATED = 64 << 20  # a deflated data set (rare for images): a 5,600 x 5,600 16-bit image and its header
DEFER = 1 << 20  # elements larger than this are left on disk until they are asked for (the pixels)
CHUNK = 1 << 20


def check_pixels(path: Path, pixels: int) -> None:
    """Refuse an image whose header declares more than MAX_PIXELS pixels (an image bomb) before decoding it."""
    if pixels > MAX_PIXELS:
        raise TooLargeError(f"{path}: {pixels:,} pixels, more than the {MAX_PIXELS:,} an X-ray may have")


def _int(ds: Any, name: str, default: int) -> int:
    value = ds.get(name, default)
    return int(_one(value)) if value not in (None, "") else default


def declared_pixels(ds: Any) -> int:
    """The pixels a DICOM header declares: rows x columns x frames."""
    return rows(ds) * columns(ds) * frames(ds)


def rows(ds: Any) -> int:
    return _int(ds, "Rows", 0)


def columns(ds: Any) -> int:
    return _int(ds, "Columns", 0)


def frames(ds: Any) -> int:
    return _int(ds, "NumberOfFrames", 1)


def pixel_bytes(ds: Any) -> int:
    """The bytes of uncompressed pixel data the header declares (rows x columns x samples x frames x bits)."""
    bits = _int(ds, "BitsAllocated", 16)
    count = _int(ds, "Rows", 0) * _int(ds, "Columns", 0) * _int(ds, "SamplesPerPixel", 1) * _int(ds, "NumberOfFrames", 1)
    return (count * bits + 7) // 8


def _inflate(src: Any, dest: Any, limit: int) -> None:
    """A deflated data set (PS3.5 A.5) from ``src`` into ``dest`` (None: only counted), refused once it
    passes ``limit`` bytes: the inflater never yields more than the room left, so a bomb costs one
    chunk of memory."""
    import zlib

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    written = 0
    while not inflater.eof:
        data = inflater.unconsumed_tail or src.read(64 << 10)  # small reads: the tail is copied on every call
        if not data:
            break
        out = inflater.decompress(data, min(CHUNK, limit + 1 - written))
        written += len(out)
        if written > limit:
            raise TooLargeError(f"deflated DICOM data larger than {limit:,} bytes once inflated")
        if dest is not None:
            dest.write(out)


def open_dicom(path: Path, pixels: bool = True) -> Any:
    """The data set of a DICOM file, read within bounds: the file's size, a deflated data set inflated
    through a capped stream (to a private temporary file, not memory), large elements left on disk,
    and (``pixels``) the header's pixel count against MAX_PIXELS and the pixel data's length against
    rows x columns x samples x bits, all before any pixel is decoded. Raises InputError (TooLargeError
    for a budget) or pydicom's own errors for a malformed file."""
    import tempfile

    import pydicom
    from pydicom.dataset import FileDataset
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TooLargeError(f"{path}: a DICOM file of {size:,} bytes, more than {MAX_FILE_BYTES:,}")
    with open(path, "rb") as f:
        preamble = read_preamble(f, force=False)
        meta = _read_file_meta_info(f)
        deflated = meta.get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian
        if deflated:  # counted first (nothing written), so that a bomb costs no disk either
            start = f.tell()
            try:
                _inflate(f, None, MAX_INFLATED)
            except TooLargeError as e:
                raise TooLargeError(f"{path}: {e}") from None
            f.seek(start)
            tmp = tempfile.TemporaryDirectory(prefix="cxrneo-inflate-")
            inflated = Path(tmp.name) / "dataset"
            with open(inflated, "wb") as out:
                _inflate(f, out, MAX_INFLATED)
    if deflated:
        with open(inflated, "rb") as f:
            body = read_dataset(f, is_implicit_VR=False, is_little_endian=True, defer_size=DEFER)
        ds: Any = FileDataset(str(inflated), body, preamble, meta, False, True)
        ds.set_original_encoding(False, True, body._character_set)
        ds._cxrneo_inflated = tmp  # the temporary file lives as long as the data set
    else:
        ds = pydicom.dcmread(path, defer_size=DEFER)
    if pixels:
        _check_header(path, ds)
    return ds


def _check_header(path: Path, ds: Any) -> None:
    """The declared pixels within budget, and uncompressed pixel data exactly as long as declared."""
    check_pixels(path, declared_pixels(ds))
    if _int(ds, "BitsAllocated", 16) not in (1, 8, 16, 32) or _int(ds, "SamplesPerPixel", 1) not in (1, 3):
        raise InputError(f"{path}: unsupported pixel layout (BitsAllocated {ds.get('BitsAllocated')}, "
                         f"SamplesPerPixel {ds.get('SamplesPerPixel')})")
    if "PixelData" not in ds:
        return
    meta = getattr(ds, "file_meta", None)
    tsuid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    length = ds.get_item("PixelData").length
    if (tsuid is None or not tsuid.is_compressed) and length != 0xFFFFFFFF:
        want = pixel_bytes(ds)
        if length < want:
            raise InputError(f"{path}: pixel data of {length:,} bytes, shorter than the {want:,} its header declares")
        if length > want + 1 + HEADER_BYTES:
            raise InputError(f"{path}: pixel data of {length:,} bytes, far longer than the {want:,} its header declares")


def read_dicom(path: Path) -> np.ndarray:
    """One float32 grey channel in [0, 1] (bright = dense); any problem is one InputError naming the file."""
    from pydicom.errors import InvalidDicomError

    try:
        ds = open_dicom(path)
        unit = _to_unit(ds, _pixels(path, ds))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except (InvalidDicomError, OSError, ValueError, KeyError, AttributeError, TypeError, IndexError,
            NotImplementedError, RuntimeError, EOFError, OverflowError) as e:
        # RecursionError (deeply nested sequences) is a RuntimeError
        first = (str(e).splitlines() or [""])[0]
        raise InputError(f"{path}: unreadable DICOM ({type(e).__name__}: {first})") from None
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        unit = 1.0 - unit
    return np.ascontiguousarray(unit, dtype=np.float32)
