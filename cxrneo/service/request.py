"""The one query request: what the HTTP API, the client, the CLI and the page all build and validate.

`QueryOptions` says how to retrieve; `QueryRequest` adds the target (a stored id or a code); an
uploaded image carries the same options as multipart form fields beside its `file`. A new query
field is one new field of `QueryOptions` (plus its use in the service): the JSON route, the
multipart routes, their OpenAPI schema, the client and the CLI's validation all follow from it.
"""

import json
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cxrneo.errors import InputError
from cxrneo.filters import Name, Names, QueryFilter
from cxrneo.retrieval.method import Method
from cxrneo.subregion import check_box

MAX_K = 1000  # the most images one query may ask for
MAX_EXAMPLES = 100  # the most examples (or counter-examples) one query may name
MAX_CONCEPTS = 32  # the most finding sliders one query may set
MAX_STEP = 1.0  # a finding slider moves a unit query by at most this much along a unit direction
NEGATIVE_WEIGHT = 0.25  # Rocchio: how far the query moves away from the counter-examples' mean
MAX_CODE = 4096  # the widest code a query may carry

Finite = Annotated[float, Field(allow_inf_nan=False)]


def rocchio(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """The query code of examples (unit codes, one per row): the normalised mean of the positives
    minus NEGATIVE_WEIGHT times the mean of the negatives (negatives may have no rows). The
    retriever normalises the result."""
    q = np.asarray(positives, np.float64).mean(axis=0)
    q /= max(float(np.linalg.norm(q)), 1e-12)
    if len(negatives):
        q = q - NEGATIVE_WEIGHT * np.asarray(negatives, np.float64).mean(axis=0)
    out: np.ndarray = q.astype(np.float32)
    return out


class QueryOptions(BaseModel):
    """How to retrieve, whatever the target."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1, le=MAX_K, description="How many images to return.")
    method: Method = Field(Method.COMMUNITY, description="Retrieval method.")
    strict: bool = Field(False, description="Stop when weighted modularity stops rising (may return fewer).")
    exclude_patient: bool = Field(False, description="Also leave out the query patient's other images (id only).")
    filter: QueryFilter | None = Field(None, description="Only images that pass may be returned.")
    concepts: dict[Name, Finite] = Field(default_factory=dict, max_length=MAX_CONCEPTS, description=(
        "Finding sliders: move the query along each finding's classifier direction by this amount, "
        f"-{MAX_STEP:g} to {MAX_STEP:g} (needs the checkpoint whose codes the graph holds)."))
    not_ids: Names = Field(default_factory=list, max_length=MAX_EXAMPLES, description=(
        "Stored images the answer should be unlike (Rocchio: the query moves away from their mean; "
        "they are left out of the answer; duplicates count once)."))
    region: list[Finite] | None = Field(None, min_length=4, max_length=4, description=(
        "Refine by region: a box [x0, y0, x1, y1] in fractions of the query image's width and height "
        "(0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1); the query is the code of the cells it covers. Needs one "
        "image: a stored id (with the service's checkpoint and image file) or one uploaded file."))

    @field_validator("region")
    @classmethod
    def _box(cls, region: list[float] | None) -> list[float] | None:
        return None if region is None else list(check_box(region))

    @field_validator("concepts")
    @classmethod
    def _steps(cls, concepts: dict[str, float]) -> dict[str, float]:
        for name, step in concepts.items():
            if not -MAX_STEP <= step <= MAX_STEP:
                raise ValueError(f"{name}: a slider moves by -{MAX_STEP:g} to {MAX_STEP:g}, got {step}")
        return concepts


class QueryRequest(QueryOptions):
    """A stored image id, several (more like these), or a code, and how to retrieve (POST /query as JSON)."""

    id: Name | None = Field(None, description="A stored image id (it and, optionally, its patient are left out).")
    ids: Names = Field(default_factory=list, max_length=MAX_EXAMPLES, description=(
        "More like these: stored image ids whose normalised mean code is the query (all left out; duplicates "
        "count once)."))
    code: list[Finite] | None = Field(None, min_length=1, max_length=MAX_CODE,
                                      description="A code that is not in the graph (e.g. 1024 floats).")

    @model_validator(mode="after")
    def _one_target(self) -> "QueryRequest":
        if (self.id is not None) + bool(self.ids) + (self.code is not None) != 1:
            raise ValueError("give exactly one of id, ids and code")
        if self.code is not None and self.exclude_patient:
            raise ValueError("exclude_patient needs an id (a code has no patient)")
        if self.region is not None and (self.code is not None or len(self.ids) > 1):
            raise ValueError("a region needs one image (an id or one image file), not a code or several ids")
        return self

    def examples(self) -> tuple[list[str], list[str]]:
        """(positive stored ids, negative stored ids) when the query is made of stored examples."""
        return ([self.id] if self.id is not None else list(self.ids)), list(self.not_ids)


class ImageQuery(QueryOptions):
    """An image file and how to retrieve (multipart form data; described for OpenAPI)."""

    file: bytes = Field(description="A chest X-ray: PNG, JPEG or DICOM.")

    @model_validator(mode="after")
    def _no_patient(self) -> "ImageQuery":
        if self.exclude_patient:
            raise ValueError("exclude_patient needs a stored image id (a file has no patient)")
        return self


Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], data: object) -> Model:
    """Validate `data` as `model`; a failure is one line naming the field (InputError)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        given = first.get("input")
        try:
            shown = repr(given) if isinstance(given, str | int | float) else ""
        except ValueError:  # an integer too long to print
            shown = ""
        got = f", got {shown}" if shown and len(shown) <= 40 else ""
        raise InputError(f"{where + ': ' if where else ''}{first['msg']}{got}") from None


def from_form(fields: Mapping[str, str]) -> QueryOptions:
    """The options of an image query from its multipart form fields (the file excluded). Scalars come
    as text; an object-valued field (a filter) comes as JSON text."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        text = value.strip()
        try:
            data[name] = json.loads(text) if text[:1] in "{[" and text else value
        except (ValueError, RecursionError):  # malformed, numbers too long, nested too deeply
            raise InputError(f"{name}: not valid JSON (or nested too deeply)") from None
    parse(ImageQuery, {**data, "file": b""})  # the image-only rules
    return parse(QueryOptions, data)


def to_form(options: QueryOptions) -> dict[str, str]:
    """The options as multipart form fields (what `from_form` reads back)."""
    fields: dict[str, str] = {}
    for name, value in options.model_dump(mode="json", exclude_defaults=True).items():
        fields[name] = json.dumps(value) if isinstance(value, dict | list) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    return fields


def concepts_of(flags: list[str]) -> dict[str, float]:
    """The CLI's `--concept NAME=STEP` flags as the request's concepts."""
    out: dict[str, float] = {}
    for flag in flags:
        name, sep, step = flag.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(step)
        except ValueError:
            raise InputError(f"--concept takes NAME=STEP such as Effusion=0.5, got {flag!r}") from None
    return out


def steer(code: np.ndarray, directions: dict[str, np.ndarray], concepts: dict[str, float]) -> np.ndarray:
    """Finding sliders: q' = q/|q| + sum_f a_f * w_f/|w_f|, where w_f is finding f's classifier
    direction in the graph's code space and a_f in [-MAX_STEP, MAX_STEP]; the retriever normalises q'.
    A step of +a moves the query towards codes the classifier scores higher for f (a = 1 is as far
    as the query's own length), -a away from them."""
    q = np.asarray(code, np.float64)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    for name, step in concepts.items():
        if name not in directions:
            raise InputError(f"unknown finding {name!r} for a slider: the checkpoint's findings are "
                             f"{', '.join(directions)}")
        w = np.asarray(directions[name], np.float64)
        q = q + step * w / max(float(np.linalg.norm(w)), 1e-12)
    out: np.ndarray = q.astype(np.float32)
    return out

