"""Label-set vectors for retrieval scoring: finding names -> one boolean column per label (pure).

The label sets themselves (SPEC section 1, Table 3, incl. the merged -U sets) are defined
once, in :mod:`cxrneo.embed.labelsets` (torch-free); this module only turns an image's
positive finding names into a row of a label-set matrix.
"""

from collections.abc import Iterable, Sequence

import numpy as np

from cxrneo.embed.labelsets import LABEL_SETS, LabelSet, get

__all__ = ["LABEL_SETS", "NO_FINDING", "LabelSet", "column_names", "get", "matrix", "scorable"]

NO_FINDING = "No Finding"

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
    no positive label *in this set* (SPEC section 6, second scoring form).

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
