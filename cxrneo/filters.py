"""Which images pass a query filter: columns of the archive's metadata, held beside the snapshot; pure.

`Facets` holds one column per filterable property, in the snapshot's row order; `passing` turns a
`QueryFilter` into a boolean row mask with numpy only (no per-query Cypher). Finding names are
checked against the graph's own label set, so a typo is a one-line error, not an empty answer.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError
from cxrneo.labels import NO_FINDING
from cxrneo.records import ImageRecord
from cxrneo.request import QueryFilter

SEPARATOR = "|"  # between finding names in the snapshot's label column


@dataclass(frozen=True)
class Facets:
    """The filterable metadata of every image, in row order."""

    findings: tuple[str, ...]  # the graph's label set, sorted (NO_FINDING first when present)
    labels: np.ndarray  # bool, rows x findings
    views: np.ndarray  # str, upper case ("" unknown)
    sexes: np.ndarray  # str, "M" / "F" / ""
    ages: np.ndarray  # int32, -1 unknown
    splits: np.ndarray  # str
    patients: np.ndarray  # str

    @classmethod
    def from_columns(
        cls, labels: Sequence[str], views: Sequence[str], sexes: Sequence[str], ages: Sequence[int],
        splits: Sequence[str], patients: Sequence[str],
    ) -> "Facets":
        """Columns as the snapshot stores them; `labels` holds each image's findings joined by "|"
        (an image without any counts as NO_FINDING)."""
        per_row = [tuple(x for x in str(s).split(SEPARATOR) if x) or (NO_FINDING,) for s in labels]
        names = sorted({x for row in per_row for x in row}, key=lambda x: (x != NO_FINDING, x))
        column = {x: j for j, x in enumerate(names)}
        matrix = np.zeros((len(per_row), len(names)), bool)
        for i, row in enumerate(per_row):
            matrix[i, [column[x] for x in row]] = True
        return cls(
            findings=tuple(names), labels=matrix,
            views=np.array([str(v).strip().upper() for v in views], dtype=str),
            sexes=np.array([str(s).strip().upper()[:1] for s in sexes], dtype=str),
            ages=np.asarray(ages, dtype=np.int32), splits=np.array(splits, dtype=str),
            patients=np.array(patients, dtype=str),
        )

    @classmethod
    def from_records(cls, records: Sequence[ImageRecord]) -> "Facets":
        """The columns of image records (what `cxrneo evaluate --filter` filters its database part with)."""
        return cls.from_columns([SEPARATOR.join(r.labels) for r in records], [r.view for r in records],
                                [r.sex for r in records], [-1 if r.age is None else r.age for r in records],
                                [r.split for r in records], [r.patient_id for r in records])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def column(self, finding: str) -> np.ndarray:
        """The rows that show `finding` (InputError naming the label set when it is not one of them)."""
        try:
            return self.labels[:, self.findings.index(finding)]
        except ValueError:
            raise InputError(f"unknown finding {finding!r}: this graph's findings are {', '.join(self.findings)}") \
                from None


def passing(facets: Facets, f: QueryFilter, community: np.ndarray) -> np.ndarray:
    """The rows that pass every condition of `f` (bool, one per row); `community` per row."""
    ok = np.ones(len(facets), bool)
    for name in f.findings:
        ok &= facets.column(name)
    if f.any_findings:
        ok &= np.any([facets.column(name) for name in f.any_findings], axis=0)
    for name in f.without:
        ok &= ~facets.column(name)
    if f.sex is not None:
        ok &= facets.sexes == f.sex
    if f.age_min is not None:
        ok &= facets.ages >= f.age_min  # unknown ages (-1) never pass an age bound
    if f.age_max is not None:
        ok &= (facets.ages >= 0) & (facets.ages <= f.age_max)
    if f.views:
        ok &= np.isin(facets.views, f.views)
    if f.splits:
        ok &= np.isin(facets.splits, f.splits)
    if f.patients:
        ok &= np.isin(facets.patients, f.patients)
    if f.not_patients:
        ok &= ~np.isin(facets.patients, f.not_patients)
    if f.communities:
        ok &= np.isin(np.asarray(community), f.communities)
    return ok


def filter_fields() -> list[dict[str, object]]:
    """The viewer's filter controls, one description per `QueryFilter` field (GET /config's "filters")."""
    return [
        {"name": "findings", "kind": "findings", "label": "Shows all of", "help": "Findings the image must all show"},
        {"name": "any_findings", "kind": "findings", "label": "Shows any of",
         "help": "Findings of which the image must show at least one"},
        {"name": "without", "kind": "findings", "label": "Shows none of", "help": "Findings the image must not show"},
        {"name": "sex", "kind": "choice", "choices": ["F", "M"], "label": "Sex", "help": "Patient sex"},
        {"name": "age_min", "kind": "integer", "minimum": 0, "maximum": 150, "label": "Age from",
         "help": "Youngest patient age (years, inclusive)"},
        {"name": "age_max", "kind": "integer", "minimum": 0, "maximum": 150, "label": "Age to",
         "help": "Oldest patient age (years, inclusive)"},
        {"name": "views", "kind": "strings", "label": "Views", "help": "View positions, any of (e.g. PA, AP)"},
        {"name": "splits", "kind": "strings", "label": "Splits", "help": "Dataset splits, any of (train, val, test)"},
        {"name": "patients", "kind": "strings", "label": "Patients", "help": "Only these patients' images"},
        {"name": "not_patients", "kind": "strings", "label": "Not patients", "help": "Never these patients' images"},
        {"name": "communities", "kind": "integers", "label": "Communities",
         "help": "Only images in these Louvain communities"},
    ]


def cypher_parameters(f: QueryFilter) -> dict[str, object]:
    """The parameters of cypher/filtered_knn.cypher for `f` (the same conditions as `passing`)."""
    return {"findings": f.findings, "anyFindings": f.any_findings, "without": f.without, "sex": f.sex,
            "ageMin": f.age_min, "ageMax": f.age_max, "views": f.views, "splits": f.splits,
            "patients": f.patients, "notPatients": f.not_patients, "communities": f.communities}

