"""Typed rows that cross module boundaries: images, community statistics, hits, a cache's use."""

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field


class ImageRecord(BaseModel):
    """One archive image and what is known about it (labels are finding names)."""

    model_config = ConfigDict(frozen=True)

    id: str
    path: str = ""
    labels: tuple[str, ...] = ()
    patient_id: str = ""
    view: str = ""
    sex: str = ""
    age: int | None = None
    split: str = ""
    follow_up: int | None = None  # the patient's visit number (NIH "Follow-up #": 0 the first)
    study_uid: str = ""  # DICOM StudyInstanceUID, for images from a PACS (the link back to the study)
    series_uid: str = ""  # DICOM SeriesInstanceUID (the id is the SOPInstanceUID)


class CommunityStats(BaseModel):
    """A Louvain community: n nodes, l internal edges, d degree sum."""

    model_config = ConfigDict(frozen=True)

    id: int
    n: int = Field(ge=0)
    l: int = Field(ge=0)  # noqa: E741 - the paper's name
    d: int = Field(ge=0)


class Hit(BaseModel):
    """One retrieved image, in rank order."""

    model_config = ConfigDict(frozen=True)

    rank: int
    image_id: str
    cosine: float
    community: int | None = None
    gain: float | None = None
    labels: tuple[str, ...] = ()
    fallback: bool = False
    closer_than: float | None = None  # the share of the archive less alike to the query than this hit
    # the stored record, filled in by the service for display (absent in the pure core)
    patient_id: str | None = None
    view: str | None = None
    sex: str | None = None
    age: int | None = None
    study_uid: str | None = None  # for images from a PACS: the study and series to open in a viewer
    series_uid: str | None = None


class CacheUse(NamedTuple):
    """How one of the service's caches is used now: what it holds and its bound (in ``unit``: bytes,
    images or entries), its entries, and the lookups it answered (hits) or not (misses) so far."""

    unit: str
    held: int
    limit: int
    entries: int
    hits: int
    misses: int
