"""Torch datasets over image files that skip unreadable images instead of failing a batch."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cxrneo.embed.images import read_grey
from cxrneo.errors import InputError

Item = tuple[int, torch.Tensor | None, str]


class ImageFiles(Dataset[Item]):
    """Row i -> (i, 1 x size x size float16 grey in [0, 1] or None, error message or "").

    `cxrneo.embed.runtime.prepare` turns a batch of these into model input on the device.
    """

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        try:
            grey = read_grey(self.paths[i], self.size)
        except InputError as e:
            return i, None, str(e)
        return i, torch.from_numpy(grey.astype(np.float16))[None], ""


@dataclass
class Batch:
    """The readable rows of a batch and the messages of the unreadable ones."""

    rows: torch.Tensor
    x: torch.Tensor
    errors: list[tuple[int, str]]


def collate(items: list[Item]) -> Batch:
    good = [(i, x) for i, x, _ in items if x is not None]
    errors = [(i, msg) for i, x, msg in items if x is None]
    if not good:
        return Batch(torch.empty(0, dtype=torch.long), torch.empty(0), errors)
    rows = torch.tensor([i for i, _ in good], dtype=torch.long)
    return Batch(rows, torch.stack([x for _, x in good]), errors)


def loader(
    paths: Sequence[Path],
    size: int,
    batch_size: int,
    workers: int,
    shuffle: bool = False,
    seed: int = 0,
    pin: bool = False,
) -> DataLoader[Item]:
    """A DataLoader of :class:`Batch` objects over image files."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ImageFiles(paths, size),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        generator=gen,
        persistent_workers=False,
    )
