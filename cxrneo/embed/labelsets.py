"""The four label sets of SPEC section 1 and how raw findings become targets and masks."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import ConfigError

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1


@dataclass(frozen=True)
class LabelSet:
    """Named output labels, each the union of one or more source findings."""

    name: str
    source: str  # "nih" or "chexpert": the format whose findings it reads
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.groups)

    def encode(self, findings: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """Targets (0/1) and mask (False = uncertain) for one image's raw findings.

        A merged label is positive if any member is positive, uncertain if none is
        positive but one is uncertain, else negative.  Findings may be given by source
        name or by the merged label's own name.
        """
        y = np.zeros(len(self.groups), dtype=np.float32)
        known = np.ones(len(self.groups), dtype=bool)
        for j, (label, members) in enumerate(self.groups):
            values = [findings.get(m) for m in (label, *members)]
            if POSITIVE in values:
                y[j] = 1.0
            elif UNCERTAIN in values:
                known[j] = False
        return y, known

    def positives(self, findings: Mapping[str, int]) -> tuple[str, ...]:
        """Label names counted as positive for retrieval scoring (uncertain counts)."""
        y, known = self.encode(findings)
        return tuple(lab for lab, v, k in zip(self.labels, y, known, strict=True) if v or not k)


def _single(*names: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((n, (n,)) for n in names)


_NIH13 = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Pneumothorax",
    "Emphysema",
    "Pleural_Thickening",
    "Fibrosis",
    "Consolidation",
    "Edema",
    "Pneumonia",
    "Infiltration",
    "Nodule",
    "Mass",
)
_CHEXPERT9 = (
    "Atelectasis",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Pleural Effusion",
    "Pneumothorax",
    "Lung Opacity",
    "Consolidation",
    "Edema",
    "Pneumonia",
)

LABEL_SETS: dict[str, LabelSet] = {
    "nih": LabelSet("nih", "nih", _single(*_NIH13)),
    "nih-u": LabelSet(
        "nih-u",
        "nih",
        _single(*_NIH13[:7])
        + (
            ("Opacities", ("Consolidation", "Edema", "Pneumonia", "Infiltration")),
            ("Lesion", ("Nodule", "Mass")),
        ),
    ),
    "chexpert": LabelSet("chexpert", "chexpert", _single(*_CHEXPERT9)),
    "chexpert-u": LabelSet(
        "chexpert-u",
        "chexpert",
        (
            ("Atelectasis", ("Atelectasis",)),
            ("Enlarged Heart", ("Enlarged Cardiomediastinum", "Cardiomegaly")),
            ("Pleural Effusion", ("Pleural Effusion",)),
            ("Pneumothorax", ("Pneumothorax",)),
            ("Opacities", ("Lung Opacity", "Consolidation", "Edema", "Pneumonia")),
        ),
    ),
}


def get(name: str) -> LabelSet:
    """The label set called ``name``, or a ConfigError listing the known ones."""
    try:
        return LABEL_SETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown label set {name!r} (choose one of: {', '.join(LABEL_SETS)})") from None
