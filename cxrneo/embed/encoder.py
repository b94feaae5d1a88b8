"""Encoder: one checkpoint kept loaded, turning single image files into codes (image queries)."""

import threading
from pathlib import Path

import numpy as np
import torch

from cxrneo.embed import checkpoint, radiograph, runtime
from cxrneo.embed.images import read_grey
from cxrneo.similarity import SimilarityMaps, similarity_maps
from cxrneo.subregion import Box, cell_weights, region_code


class Encoder:
    """The model of one checkpoint on one device; `code(path)` embeds one image file as `embed` does."""

    def __init__(self, ckpt: Path, device: str = "auto") -> None:
        self.path = checkpoint.resolve(ckpt)  # a checkpoint file or a `cxrneo train --out` folder
        self.sha256 = checkpoint.sha256(self.path)
        doc = checkpoint.load(self.path)
        self.size = int(doc["config"]["size"])
        self.device = runtime.device(device)
        self.model = checkpoint.model_from(doc).to(self.device).eval()
        self.labels = [str(x) for x in doc["labels"]]
        self._lock = threading.Lock()  # one forward pass at a time

    def directions(self) -> dict[str, np.ndarray]:
        """Each finding's classifier row: the direction in code space along which its logit grows."""
        weight = self.model.classifier.weight.detach().float().cpu().numpy()
        return {name: weight[i].copy() for i, name in enumerate(self.labels)}

    def cells(self, paths: list[Path]) -> np.ndarray:
        """The last feature maps after the ReLU (images x channels x rows x columns), one forward pass
        for all the files; their means over the grid are the images' codes."""
        return self._forward(np.stack([read_grey(Path(p), self.size) for p in paths]), cells=True)

    def region(self, path: Path, box: Box) -> tuple[np.ndarray, str | None]:
        """The code of a region of one image file (cxrneo.subregion: the mean of the cells the box
        covers, weighted by the share of each it covers) and, when the file's pixels do not look like a
        radiograph, why; one decode, one forward pass."""
        grey = read_grey(Path(path), self.size)
        return region_code(self._forward(grey[None], cells=True)[0], box), radiograph.doubt(Path(path), grey)

    def explain(self, query: Path, hit: Path, box: Box | None = None) -> SimilarityMaps:
        """Where two image files are alike (cxrneo.similarity), from one forward pass; with `box`, where
        the query's region (cxrneo.subregion) and the hit are alike."""
        a, b = self.cells([query, hit])
        return similarity_maps(a, b, None if box is None else cell_weights(box, a.shape[1], a.shape[2]))

    def code(self, path: Path) -> np.ndarray:
        """The float32 code of one image file (one-line InputError when unreadable)."""
        code: np.ndarray = self._forward(read_grey(Path(path), self.size)[None], cells=False)[0]
        return code

    def look(self, path: Path) -> tuple[np.ndarray, str | None]:
        """The code of one image file and, when its pixels do not look like a radiograph, why
        (cxrneo.embed.radiograph), from one decode."""
        grey = read_grey(Path(path), self.size)
        return self._forward(grey[None], cells=False)[0], radiograph.doubt(Path(path), grey)

    def _forward(self, grey: np.ndarray, cells: bool) -> np.ndarray:
        """One forward pass over grey images (images x size x size): their cells, or their codes (float32)."""
        x = runtime.prepare(torch.from_numpy(grey.astype(np.float16))[:, None], self.device)
        with self._lock, torch.inference_mode(), runtime.autocast(self.device):
            out = self.model.cells(x) if cells else self.model.code(x)
        result: np.ndarray = out.float().cpu().numpy()
        return result
