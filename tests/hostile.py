"""Hostile inputs for `cxrneo serve`: files and bodies that cost little to send and (unbounded) a lot to
decode. Shared by the tests and scripts/bench_hostile.py. Every builder is fast and small in memory:
repeated blocks of compressed zeros are written once and copied, never compressed again."""

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian
EXPLICIT = "1.2.840.10008.1.2.1"
ZERO_BLOCK = 1 << 20


def _zero_block() -> bytes:
    """The compressed bytes of ZERO_BLOCK zeros after a full flush (raw deflate): alike every time."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(ZERO_BLOCK)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert first == again, "a full flush should make every block of zeros compress alike"
    return first


def _element(group: int, elem: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("OB", "UI") else b" "
    if vr in ("OB", "OW", "UN", "SQ", "UT"):
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def _long_header(group: int, elem: int, vr: str, length: int) -> bytes:
    return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, length)


def _file_meta(transfer_syntax: str) -> bytes:
    body = (_element(0x0002, 0x0001, "OB", b"\0\1") + _element(0x0002, 0x0002, "UI", b"1.2.840.10008.5.1.4.1.1.1.1")
            + _element(0x0002, 0x0003, "UI", b"1.2.3.4.5.6.7") + _element(0x0002, 0x0010, "UI", transfer_syntax.encode()))
    return b"\0" * 128 + b"DICM" + _element(0x0002, 0x0000, "UL", struct.pack("<I", len(body))) + body


def _image_header(rows: int, cols: int) -> bytes:
    return b"".join([
        _element(0x0008, 0x0016, "UI", b"1.2.840.10008.5.1.4.1.1.1.1"), _element(0x0008, 0x0018, "UI", b"1.2.3.4.5.6.7"),
        _element(0x0008, 0x0060, "CS", b"DX"), _element(0x0028, 0x0002, "US", struct.pack("<H", 1)),
        _element(0x0028, 0x0004, "CS", b"MONOCHROME2"), _element(0x0028, 0x0010, "US", struct.pack("<H", rows)),
        _element(0x0028, 0x0011, "US", struct.pack("<H", cols)), _element(0x0028, 0x0100, "US", struct.pack("<H", 16)),
        _element(0x0028, 0x0101, "US", struct.pack("<H", 12)), _element(0x0028, 0x0102, "US", struct.pack("<H", 11)),
        _element(0x0028, 0x0103, "US", struct.pack("<H", 0)),
    ])


def deflated_dicom_bomb(path: Path, gib: int) -> Path:
    """A DICOM file in Deflated Explicit VR Little Endian whose data set inflates to ``gib`` GiB of zeros
    (in private OB elements of at most 2 GiB each, then a small image): about 1 MB per GiB on disk."""
    block = _zero_block()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as f:
        f.write(_file_meta(DEFLATED))
        f.write(c.compress(_image_header(256, 256)) + c.flush(zlib.Z_FULL_FLUSH))
        left = gib << 30
        elem = 0x1000
        while left:
            size = min(left, 2 << 30)
            f.write(c.compress(_long_header(0x0009, elem, "OB", size)) + c.flush(zlib.Z_FULL_FLUSH))
            for _ in range(size // ZERO_BLOCK):
                f.write(block)
            left -= size
            elem += 1
        f.write(c.compress(_long_header(0x7FE0, 0x0010, "OW", 256 * 256 * 2) + bytes(256 * 256 * 2)))
        f.write(c.flush())
    return path


def dicom_short_pixels(path: Path, rows: int = 4000, cols: int = 4000) -> Path:
    """An uncompressed DICOM whose header declares rows x cols 16-bit pixels but carries 2 bytes of them."""
    path.write_bytes(_file_meta(EXPLICIT) + _image_header(rows, cols) + _long_header(0x7FE0, 0x0010, "OW", 2) + b"\0\0")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def big_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit grey PNG of width x height black pixels (it compresses about 1000:1)."""
    row = bytes(1 + width)
    c = zlib.compressobj(9)
    parts = []
    rows_per = max(1, (4 << 20) // len(row))
    chunk = row * rows_per
    done = 0
    while done < height:
        n = min(rows_per, height - done)
        parts.append(c.compress(chunk if n == rows_per else row * n))
        done += n
    parts.append(c.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
                     + _png_chunk(b"IEND", b""))
    return path


def huge_jpeg(path: Path, width: int = 65000, height: int = 65000) -> Path:
    """A small real JPEG whose frame header is rewritten to declare width x height pixels."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (16, 16), 128).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def deep_json(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of files (all in the field 'file') and text fields."""
    boundary = "cxrneo-hostile-boundary-7f3a"
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Hostile:
    """One hostile request: where it goes, its body and content type, and the status it must get."""

    name: str
    path: str
    body: bytes
    kind: str
    status: int


def corpus(folder: Path, query_id: str) -> Iterator[Hostile]:
    """The hostile corpus of issue 31, against a service whose graph holds ``query_id``."""
    folder.mkdir(parents=True, exist_ok=True)
    for gib in (3, 16):
        bomb = deflated_dicom_bomb(folder / f"bomb-{gib}g.dcm", gib).read_bytes()
        for route in ("/images/render", "/query/image"):
            yield Hostile(f"deflated DICOM, {gib} GiB inflated, {route}", route, *multipart([("bomb.dcm", bomb)]), 413)
    png = big_png(folder / "100mp.png", 10_000, 10_000).read_bytes()
    yield Hostile("PNG of 100 megapixels", "/query/image", *multipart([("big.png", png)]), 413)
    jpeg = huge_jpeg(folder / "huge.jpg").read_bytes()
    yield Hostile("JPEG declaring 65000 x 65000", "/query/image", *multipart([("huge.jpg", jpeg)]), 413)
    many = big_png(folder / "49mp.png", 7_000, 7_000).read_bytes()
    yield Hostile("16 PNGs of 49 megapixels in one request", "/query/image",
                  *multipart([(f"f{i}.png", many) for i in range(16)]), 413)
    yield Hostile("100 PNGs of 49 megapixels in one request", "/query/image",
                  *multipart([(f"f{i}.png", many) for i in range(100)]), 400)
    short = dicom_short_pixels(folder / "short.dcm").read_bytes()
    yield Hostile("DICOM whose pixel data is shorter than its header", "/query/image",
                  *multipart([("short.dcm", short)]), 400)
    j = "application/json"
    yield Hostile("filter with 300,000 findings", "/query",
                  json.dumps({"id": query_id, "filter": {"any_findings": ["Effusion"] * 300_000}}).encode(), j, 400)
    yield Hostile("10,000 not_ids", "/query", json.dumps({"id": query_id, "not_ids": [f"x{i}" for i in range(10_000)]}).encode(),
                  j, 400)
    yield Hostile("invalid UTF-8", "/query", b'{"id": "\xff\xfe\xfa"}', j, 400)
    yield Hostile("an integer of 5,000 digits", "/query", b'{"id": "a", "k": ' + b"9" * 5000 + b"}", j, 400)
    yield Hostile("JSON nested 100,000 deep", "/query", deep_json(), j, 400)
    yield Hostile("a multipart field nested 100,000 deep", "/query/image",
                  *multipart([("x.png", png[:64])], {"filter": deep_json().decode()}), 400)
