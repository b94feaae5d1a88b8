"""One question to a Retriever, checked once: how many images, by which method, and which may answer; pure."""

from dataclasses import dataclass

import numpy as np

from cxrneo.errors import ConfigError
from cxrneo.retrieval.method import Method


@dataclass(frozen=True)
class Question:
    """What a Retriever is asked besides the query code (the service builds it once from a validated
    `QueryOptions`; evaluation and tests directly). Excluded ids (the query itself, its patient's
    images, examples) stay in every graph statistic and in N(q) but never join R and are never
    returned; `allowed` (a bool per row, a filter's rows) limits the answer to those rows."""

    k: int
    method: Method | str = Method.COMMUNITY
    strict: bool = False  # stop when weighted modularity stops rising (may return fewer than k)
    exclude: frozenset[str] = frozenset()
    allowed: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        object.__setattr__(self, "method", Method.parse(self.method))

    @property
    def how(self) -> Method:
        """The method, parsed."""
        return Method(self.method)
