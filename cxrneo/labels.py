"""Label sets (docs/method.md section 1, Table 3, incl. the merged -U sets) and label-set vectors (pure).

The one owner of labels: the four label sets, how raw findings become training targets and
masks, the ``No Finding`` name, and how an image's positive finding names become a row of a
label-set matrix for retrieval scoring. Training, embedding, tables and scoring all read them
from here; nothing in this module needs torch.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import ConfigError

__all__ = [
    "LABEL_SETS",
    "NEGATIVE",
    "NO_FINDING",
    "POSITIVE",
    "UNCERTAIN",
    "LabelSet",
    "column_names",
    "get",
    "matrix",
    "scorable",
]

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
# The finding name meaning "no positive finding" (NIH tables, plain CSVs, reports, scoring).
NO_FINDING = "No Finding"


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


# Which label sets can be derived from codes whose records carry labels of a given set:
# a merged set can be derived from its plain set, never the other way round.
_DERIVABLE = {
    "nih": ["nih", "nih-u"],
    "nih-u": ["nih-u"],
    "chexpert": ["chexpert", "chexpert-u"],
    "chexpert-u": ["chexpert-u"],
}
# Findings only one of the two source vocabularies uses (tells which one the data has).
_NIH_ONLY = {"effusion", "infiltration", "nodule", "mass", "pleuralthickening", "fibrosis",
             "emphysema", "hernia", "lesion"}
_CHX_ONLY = {"pleuraleffusion", "lungopacity", "enlargedcardiomediastinum", "enlargedheart",
             "supportdevices", "lunglesion", "pleuralother", "fracture"}


def _key(name: str) -> str:
    """Spelling-insensitive key: 'Pleural_Thickening' == 'pleural thickening'."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def matrix(findings: Sequence[Iterable[str]], label_set: LabelSet, no_finding: bool = False) -> np.ndarray:
    """Boolean matrix, one row per image, one column per label of ``label_set``.

    A label is positive when the image lists it or any finding it merges (by name,
    spelling-insensitive). Findings outside the set (e.g. Hernia for ``nih``) are ignored.
    With ``no_finding`` one more column ``No Finding`` is appended, true where the row has
    no positive label *in this set* (docs/method.md section 6, second scoring form).

    >>> m = matrix([["Nodule", "Effusion"], [], ["Hernia"], ["Lesion"]], get("nih-u"), True)
    >>> m.astype(int).tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[0, 0, 1, 0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 1, 0]]
    """
    column: dict[str, set[int]] = {}
    for j, (label, members) in enumerate(label_set.groups):
        for name in (label, *members):
            column.setdefault(_key(name), set()).add(j)
    width = len(label_set.groups)
    out = np.zeros((len(findings), width + int(no_finding)), dtype=bool)
    for i, names in enumerate(findings):
        for name in names:
            for j in column.get(_key(name), ()):
                out[i, j] = True
    if no_finding:
        out[:, width] = ~out[:, :width].any(axis=1)
    return out


def column_names(label_set: LabelSet, no_finding: bool = False) -> tuple[str, ...]:
    """The column names of :func:`matrix`."""
    return label_set.labels + ((NO_FINDING,) if no_finding else ())


def scorable(codes_label_set: str, findings: Iterable[Iterable[str]]) -> list[str]:
    """Label sets the data supports: from the codes' own label set, else by vocabulary.

    >>> scorable("nih-u", [])
    ['nih-u']
    >>> scorable("", [["Effusion"], ["Mass", "Nodule"]])
    ['nih', 'nih-u']
    >>> scorable("", [["Lung Opacity"]])
    ['chexpert', 'chexpert-u']
    """
    if codes_label_set.lower() in _DERIVABLE:
        return list(_DERIVABLE[codes_label_set.lower()])
    keys = {_key(n) for names in findings for n in names}
    out: list[str] = []
    if keys & _NIH_ONLY:
        out += ["nih", "nih-u"]
    if keys & _CHX_ONLY:
        out += ["chexpert", "chexpert-u"]
    return out
