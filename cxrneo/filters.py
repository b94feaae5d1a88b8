"""Query filters, declared once: the table of filter fields and everything made from it; pure.

`COLUMNS` names the stored properties of an image that filters read: how each is read from an
`ImageRecord`, its property on the Image node and its array in the snapshot. `FIELDS` names the
filter fields: the condition each puts on a column, its bounds, its CLI flag and its help. From
the two tables come `QueryFilter` (the request model and its OpenAPI schema), the facets a
service filters with (`Facets`, `passing`), the snapshot's columns (`Column.snapshot`) and the
properties ingest writes (`stored_properties`), the parameters of cypher/filtered_knn.cypher (`conditions`), the
CLI's filter flags (cxrneo/cli/flags.py) and what the page shows (`describe`). Adding a filter
field is one `Column` (when it reads a new property) and one `Field`; see docs/method.md,
"Narrowing a search".
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, create_model, model_validator
from pydantic import Field as Described

from cxrneo.errors import InputError
from cxrneo.labels import NO_FINDING
from cxrneo.records import ImageRecord

SEPARATOR = "|"  # between finding names in the snapshot's label column
MAX_FINDINGS = 64  # the most finding names in one list of a filter
MAX_VALUES = 16  # the most views or splits in a filter
MAX_PATIENTS = 1000  # the most patients (or communities) in a filter
MAX_NAME = 256  # the longest id, finding or patient name
LABELS = "labels"  # the column of findings (a label-set vector per image, NO_FINDING for none)
COMMUNITY = "community"  # the column written by community runs (not read from a record)

Kind = Literal["labels", "text", "int"]
Op = Literal["all", "any", "none", "min", "max"]


def _unique(values: list[Any]) -> list[Any]:
    """The values in their first order, each once."""
    return list(dict.fromkeys(values))


Name = Annotated[str, Described(max_length=MAX_NAME)]
Names = Annotated[list[Name], AfterValidator(_unique)]  # a list of names, duplicates removed
Int64 = Annotated[int, Described(ge=-(2**63), le=2**63 - 1)]
Ints = Annotated[list[Int64], AfterValidator(_unique)]


@dataclass(frozen=True)
class Column:
    """A stored property of every image that filters read."""

    property: str  # on the Image node, and the snapshot's array (`col-<property>.npy`)
    kind: Kind
    read: Callable[[ImageRecord], Any] | None  # its value in a record (None: written by another step)
    normal: Literal["", "upper", "initial"] = ""  # compared upper-cased and trimmed, or by its first letter

    def value(self, record: ImageRecord) -> Any:
        """What ingest stores for ``record`` (labels a list, text a string, an int or None)."""
        assert self.read is not None
        v = self.read(record)
        return list(v) if self.kind == LABELS else v

    def snapshot(self, value: Any) -> Any:
        """A stored value (from a record or read from Neo4j) as the snapshot keeps it: labels joined by
        "|", unknown ints -1, unknown text ""."""
        if self.kind == LABELS:
            return SEPARATOR.join(value or ())
        return (-1 if value is None else int(value)) if self.kind == "int" else ("" if value is None else str(value))

    def facet(self, values: Sequence[Any]) -> np.ndarray:
        """Stored values as a facet column: text normalised (str), ints (int64, -1 unknown)."""
        if self.kind == "int":
            return np.array([-1 if v is None else int(v) for v in values], np.int64)
        return np.array([_normal(self.normal, v) for v in values], dtype=str)


def _normal(how: str, value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text.upper() if how == "upper" else text.upper()[:1] if how == "initial" else text


@dataclass(frozen=True)
class Field:
    """One filter field: a condition on a column, as a request field, a CLI flag and a page control."""

    name: str  # the field of QueryFilter (JSON key, form field)
    column: str  # a Column's property
    op: Op  # all/any/none of the values; min/max: a bound on an int column (unknown values never pass)
    label: str  # the page's words
    help: str  # the request field's description
    flag: str  # the CLI flag; two bounds of one column share a range flag ("--age 40-60")
    flag_help: str
    choices: tuple[str, ...] = ()  # the only values a one-value text field takes
    most: int = MAX_VALUES  # the most values in a list
    low: int | None = None  # bounds of a min/max field's value
    high: int | None = None
    stored_graph_only: bool = False  # only a stored graph has it (not an evaluation's own split)

    @property
    def option(self) -> str:
        """The name of the CLI flag's parameter ("--any-finding" -> any_finding)."""
        return self.flag.lstrip("-").replace("-", "_")


COLUMNS: tuple[Column, ...] = (
    Column(LABELS, "labels", lambda r: r.labels),
    Column("patientId", "text", lambda r: r.patient_id),
    Column("view", "text", lambda r: r.view, "upper"),
    Column("sex", "text", lambda r: r.sex, "initial"),
    Column("age", "int", lambda r: r.age),
    Column("split", "text", lambda r: r.split),
    Column("followUp", "int", lambda r: r.follow_up),
    Column(COMMUNITY, "int", None),
)

FIELDS: tuple[Field, ...] = (
    Field("findings", LABELS, "all", "Shows all of", "Findings the image must all show (names of the graph's "
          "label set; 'No Finding' matches images without any).", "--finding",
          "Only images that show this finding (repeatable: all of them; 'No Finding' for none).", most=MAX_FINDINGS),
    Field("any_findings", LABELS, "any", "Shows any of", "Findings of which the image must show at least one.",
          "--any-finding", "Only images that show at least one of these findings (repeatable).", most=MAX_FINDINGS),
    Field("without", LABELS, "none", "Shows none of", "Findings the image must not show.", "--without",
          "Never images that show this finding (repeatable).", most=MAX_FINDINGS),
    Field("sex", "sex", "any", "Sex", "Patient sex.", "--sex", "Only this patient sex: M or F.", choices=("M", "F")),
    Field("age_min", "age", "min", "Age from", "Youngest patient age (years, inclusive).", "--age",
          "Only patients of this age range: 40-60, 60- or -40.", low=0, high=150),
    Field("age_max", "age", "max", "Age to", "Oldest patient age (years, inclusive).", "--age",
          "Only patients of this age range: 40-60, 60- or -40.", low=0, high=150),
    Field("views", "view", "any", "Views", "View positions, any of (e.g. PA, AP, LL).", "--view",
          "Only this view position (repeatable: any of; PA, AP)."),
    Field("splits", "split", "any", "Splits", "Dataset splits, any of (train, val, test).", "--split",
          "Only this dataset split (repeatable: any of)."),
    Field("patients", "patientId", "any", "Patients", "Only these patients' images.", "--patient",
          "Only this patient's images (repeatable).", most=MAX_PATIENTS),
    Field("not_patients", "patientId", "none", "Not patients", "Never these patients' images.", "--not-patient",
          "Never this patient's images (repeatable).", most=MAX_PATIENTS),
    Field("follow_up_min", "followUp", "min", "Visit from", "First follow-up visit (0 the patient's first, "
          "inclusive).", "--follow-up", "Only images of these follow-up visits: 0-2, 3- or -1.", low=0, high=10_000),
    Field("follow_up_max", "followUp", "max", "Visit to", "Last follow-up visit (inclusive).", "--follow-up",
          "Only images of these follow-up visits: 0-2, 3- or -1.", low=0, high=10_000),
    Field("communities", COMMUNITY, "any", "Communities", "Only images in these Louvain communities.",
          "--community", "Only this community (repeatable).", most=MAX_PATIENTS, stored_graph_only=True),
)
COLUMN = {c.property: c for c in COLUMNS}
FIELD = {f.name: f for f in FIELDS}
SNAPSHOT_COLUMNS = tuple(c.property for c in COLUMNS if c.read is not None)  # stored with the snapshot


def _annotation(f: Field) -> tuple[Any, Any]:
    """The request field of ``f``: its type and pydantic Field."""
    kind = COLUMN[f.column].kind
    if f.op in ("min", "max"):
        return int | None, Described(default=None, ge=f.low, le=f.high, description=f.help)
    if f.choices:
        return Literal[f.choices] | None, Described(default=None, description=f.help)
    values = Ints if kind == "int" else Names
    return values, Described(default_factory=list, max_length=f.most, description=f.help)


class _Rules(BaseModel):
    """What every filter checks beyond its fields' types: bounds in order, text values normalised."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _checked(self) -> "_Rules":
        for f in FIELDS:
            value = getattr(self, f.name)
            if f.op == "min" and value is not None:
                high = next((getattr(self, g.name) for g in FIELDS if g.column == f.column and g.op == "max"), None)
                if high is not None and value > high:
                    raise ValueError(f"{f.name} {value} is above {_bound_of(f.column, 'max')} {high}")
            elif COLUMN[f.column].normal == "upper" and isinstance(value, list):
                setattr(self, f.name, _unique([_normal("upper", v) for v in value]))
        return self

    def empty(self) -> bool:
        """True when no condition is given (every image passes)."""
        return not self.model_dump(exclude_defaults=True)

    def value(self, name: str) -> Any:
        """The value of one field (fields are generated from FIELDS)."""
        return getattr(self, name)


def _bound_of(column: str, op: str) -> str:
    return next(g.name for g in FIELDS if g.column == column and g.op == op)


if TYPE_CHECKING:
    _Filter = _Rules
else:
    _Filter = create_model("_Filter", __base__=_Rules, **{f.name: _annotation(f) for f in FIELDS})


class QueryFilter(_Filter):
    """Which archived images may be returned; every given condition must hold (empty = no condition).

    The answer is the K images most similar by the method among the images that pass (see
    docs/method.md, "Narrowing a search")."""


@dataclass(frozen=True)
class Facets:
    """The filterable metadata of every image, in row order: one array per snapshot column, and the
    findings as a boolean matrix (rows x the graph's label set)."""

    findings: tuple[str, ...]  # the graph's label set, sorted (NO_FINDING first when present)
    labels: np.ndarray  # bool, rows x findings
    columns: Mapping[str, np.ndarray]  # by property, as Column.facet makes them

    @classmethod
    def from_columns(cls, stored: Mapping[str, Sequence[Any]]) -> "Facets":
        """Columns as the snapshot stores them, by property; the labels column holds each image's
        findings joined by "|" (an image without any counts as NO_FINDING)."""
        per_row = [tuple(x for x in str(s).split(SEPARATOR) if x) or (NO_FINDING,) for s in stored[LABELS]]
        names = sorted({x for row in per_row for x in row}, key=lambda x: (x != NO_FINDING, x))
        column = {x: j for j, x in enumerate(names)}
        matrix = np.zeros((len(per_row), len(names)), bool)
        for i, row in enumerate(per_row):
            matrix[i, [column[x] for x in row]] = True
        other = {p: COLUMN[p].facet(v) for p, v in stored.items() if p != LABELS}
        return cls(findings=tuple(names), labels=matrix, columns=other)

    @classmethod
    def from_records(cls, records: Sequence[ImageRecord]) -> "Facets":
        """The columns of image records (what `cxrneo evaluate --filter` filters its database part with)."""
        return cls.from_columns({p: [COLUMN[p].snapshot(COLUMN[p].value(r)) for r in records] for p in SNAPSHOT_COLUMNS})

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def column(self, finding: str) -> np.ndarray:
        """The rows that show `finding` (InputError naming the label set when it is not one of them)."""
        try:
            return self.labels[:, self.findings.index(finding)]
        except ValueError:
            raise InputError(f"unknown finding {finding!r}: this graph's findings are {', '.join(self.findings)}") \
                from None


def stored_properties(record: ImageRecord) -> dict[str, Any]:
    """The filter columns' properties of a record's Image node (what ingest writes)."""
    return {c.property: c.value(record) for c in COLUMNS if c.read is not None}


def passing(facets: Facets, f: QueryFilter, community: np.ndarray) -> np.ndarray:
    """The rows that pass every condition of `f` (bool, one per row); `community` per row."""
    ok = np.ones(len(facets), bool)
    for field in FIELDS:
        value = f.value(field.name)
        if value is None or value == []:
            continue
        if field.column == LABELS:
            hits = [facets.column(name) for name in value]
            ok &= np.all(hits, axis=0) if field.op == "all" else np.any(hits, axis=0) if field.op == "any" \
                else ~np.any(hits, axis=0)
            continue
        col = np.asarray(community) if field.column == COMMUNITY else facets.columns[field.column]
        if field.op == "min":
            ok &= col >= value  # unknown ints (-1) never pass a bound
        elif field.op == "max":
            ok &= (col >= 0) & (col <= value)
        else:
            inside = np.isin(col, value if isinstance(value, list) else [value])
            ok &= ~inside if field.op == "none" else inside
    return ok


def conditions(f: QueryFilter) -> list[dict[str, Any]]:
    """The `$conditions` of cypher/filtered_knn.cypher for `f` (the same conditions as `passing`)."""
    out = []
    for field in FIELDS:
        value = f.value(field.name)
        if value is None or value == []:
            continue
        out.append({"property": field.column, "op": field.op, "normal": COLUMN[field.column].normal,
                    "values": value if isinstance(value, list) else [value]})
    return out


def describe() -> list[dict[str, Any]]:
    """The filter fields as the page builds its controls from them (GET /config)."""
    out = []
    for f in FIELDS:
        kind = COLUMN[f.column].kind
        entry: dict[str, Any] = {"name": f.name, "label": f.label, "help": f.help}
        if kind == LABELS:
            entry["kind"] = "findings"
        elif f.op in ("min", "max"):
            entry.update(kind="integer", minimum=f.low, maximum=f.high)
        elif f.choices:
            entry.update(kind="choice", choices=list(f.choices))
        else:
            entry["kind"] = "integers" if kind == "int" else "strings"
        out.append(entry)
    return out
