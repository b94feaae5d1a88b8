"""DenseNet-121 with a linear head per label set; the code is the head's 1024-d input."""

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cxrneo.errors import InputError

# name -> (growth rate, block config, initial features); "tiny" exists only for fast tests.
ARCHS: dict[str, tuple[int, tuple[int, int, int, int], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "tiny": (8, (2, 2, 2, 2), 16),  # 64-d code: for tests only
}


class CxrNet(nn.Module):
    """``features`` -> ReLU -> global average pool = code; ``classifier(code)`` = logits."""

    def __init__(self, n_labels: int, arch: str = "densenet121") -> None:
        super().__init__()
        if arch not in ARCHS:
            raise InputError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
        if arch == "densenet121":
            net = torchvision.models.densenet121(weights=None)
        else:
            growth, blocks, init = ARCHS[arch]
            net = torchvision.models.DenseNet(growth, blocks, init)
        self.arch = arch
        self.features = net.features
        self.classifier = nn.Linear(net.classifier.in_features, n_labels)

    @property
    def code_width(self) -> int:
        return self.classifier.in_features

    def cells(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map after its ReLU, N x code_width x rows x columns (7 x 7 at 224 px)."""
        return F.relu(self.features(x))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The image codes, N x code_width (1024 for DenseNet-121): the cells' mean."""
        return F.adaptive_avg_pool2d(self.cells(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, N x labels; apply a sigmoid per label for probabilities."""
        logits: torch.Tensor = self.classifier(self.code(x))
        return logits


_PREFIXES = ("module.", "densenet121.", "model.", "backbone.")
# old torchvision files name "norm1" as "norm.1"; accept both
_OLD_LAYER = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var)$"
)


def _clean_key(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    m = _OLD_LAYER.match(key)
    return f"{m.group(1)}{m.group(2)}.{m.group(3)}" if m else key


def load_weights(model: CxrNet, path: Path) -> str:
    """Initialise from a local state dict (ImageNet or chest X-ray); a mismatched head is skipped.

    Returns a one-line summary.  Every feature weight of the model must be in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    try:
        blob: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise InputError(f"{path}: not a readable PyTorch weights file ({type(e).__name__})") from None
    for key in ("model", "state_dict"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
    if not isinstance(blob, dict):
        raise InputError(f"{path}: holds no state dict")
    state = {_clean_key(k): v for k, v in blob.items() if isinstance(v, torch.Tensor)}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [
        k
        for k in own
        if k.startswith("features.") and k not in usable and not k.endswith("num_batches_tracked")
    ]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} feature weights missing or of another shape "
            f"(first: {missing[0]}); is it a DenseNet-121 state dict?"
        )
    model.load_state_dict(usable, strict=False)
    head = "loaded" if "classifier.weight" in usable else "kept fresh (shape differs)"
    return f"loaded {len(usable)} tensors from {path.name}; classifier {head}"
