"""Checkpoint files: model weights with their resolved config, label set, split and metrics."""

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from cxrneo.embed.model import CxrNet
from cxrneo.errors import InputError

FORMAT = "cxrneo-densenet"
BEST, LAST, SPLIT = "best.pt", "last.pt", "split.json"


def save(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically so an interruption never leaves half a checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": 1, **doc}, tmp)
    os.replace(tmp, path)


def resolve(path: Path) -> Path:
    """A checkpoint file, or the best checkpoint inside a training output folder."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a cxrneo checkpoint (tensors and plain values only, nothing executed)."""
    path = resolve(path)
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise InputError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not a cxrneo checkpoint (train one with `cxrneo train`)")
    return doc


def model_from(doc: dict[str, Any]) -> CxrNet:
    """The network stored in a checkpoint document, in eval mode."""
    model = CxrNet(len(doc["labels"]), doc.get("arch", "densenet121"))
    model.load_state_dict(doc["model"])
    return model.eval()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
