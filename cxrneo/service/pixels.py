"""Archived X-rays as display PNGs: files found only under one image root, rendered as embedding reads them.

`ImageFiles.png` decodes a stored image with the same reader the model's codes come from
(`cxrneo.embed.images.read_grey`: PNG/JPEG at 8 or 16 bits, DICOM through its modality and VOI
transforms with MONOCHROME1 inverted), scales it so that its longest side is the asked size and
encodes it as an 8-bit grey PNG. Rendered PNGs are kept in a small LRU cache bounded in bytes.

A stored path is served only when it resolves (symlinks followed) to a file inside the root. A
path that does not is looked up once more as ``root / its file name``, so that an archive moved
to another folder still shows; nothing outside the root is ever opened.
"""

import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from cxrneo.embed.images import read_grey
from cxrneo.errors import ConfigError, InputError, NotFoundError
from cxrneo.records import CacheUse

MIN_SIZE, MAX_SIZE = 64, 1024


def check_size(size: int) -> int:
    """The longest side of a rendered image, 64 to 1024 pixels."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    return size


def encode_png(grey: np.ndarray, size: int) -> bytes:
    """A [0, 1] grey image as an 8-bit PNG whose longest side is ``size`` (aspect kept)."""
    check_size(size)
    h, w = grey.shape
    scale = size / max(h, w)
    shape = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(grey.astype(np.float32), mode="F")
    if shape != (w, h):
        img = img.resize(shape, Image.Resampling.BILINEAR)
    values = np.clip(np.rint(np.asarray(img, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(values, mode="L").save(out, format="PNG")
    return out.getvalue()


def render(path: Path, size: int) -> bytes:
    """One image file as a display PNG (InputError naming the file when it cannot be read)."""
    return encode_png(read_grey(Path(path)), size)


class ImageFiles:
    """The image root of a service and the PNGs rendered from it; safe to share between threads."""

    def __init__(self, root: Path | None, cache_bytes: int = 64 << 20) -> None:
        if root is not None:
            root = Path(root).expanduser().resolve()
            if not root.is_dir():
                raise ConfigError(f"--images: {root} is not a folder")
        self.root = root
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def use(self) -> CacheUse:
        """The rendered PNGs kept: bytes against the bound, entries, hits and misses so far."""
        with self._lock:
            return CacheUse("bytes", self._held, self.cache_bytes, len(self._cache), self.hits, self.misses)

    def locate(self, image_id: str, stored_path: str) -> Path:
        """The file of a stored image, inside the root; NotFoundError otherwise."""
        if self.root is None:
            raise NotFoundError("this service has no image folder (start it with `cxrneo serve --images DIR`)")
        if not stored_path:
            raise NotFoundError(f"image {image_id!r} has no stored path")
        stored = Path(stored_path)
        candidates = [stored if stored.is_absolute() else self.root / stored, self.root / stored.name]
        for candidate in candidates:
            try:
                real = candidate.resolve()
            except (OSError, RuntimeError):
                continue
            if real.is_relative_to(self.root) and real.is_file():
                return real
        raise NotFoundError(f"the file of image {image_id!r} is not in the image folder")

    def png(self, image_id: str, stored_path: str, size: int) -> bytes:
        """The display PNG of a stored image, longest side ``size``, from the cache when it is there."""
        return self.png_of(image_id, self.locate(image_id, stored_path), size)

    def png_of(self, image_id: str, path: Path, size: int) -> bytes:
        """The display PNG of an image file the service found for ``image_id`` (inside its root, or
        retrieved by the service itself), from the cache when it is there."""
        check_size(size)
        try:
            stat = path.stat()
        except OSError:
            raise NotFoundError(f"the file of image {image_id!r} is not in the image folder") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size, size)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
        try:
            data = render(path, size)
        except InputError:
            raise InputError(f"image {image_id!r}: its file cannot be read as an image") from None
        with self._lock:
            if key not in self._cache and len(data) <= self.cache_bytes:
                self._cache[key] = data
                self._held += len(data)
                while self._held > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._held -= len(old)
        return data
