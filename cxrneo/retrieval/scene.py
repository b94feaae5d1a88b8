"""What a retrieval method sees (`Scene`), what it returns (`Growth`) and what one is (`Strategy`); pure.

A method reads the graph with its communities, the ids and unit codes in row order and T, and may
keep derived structures (diffusion's walk) in the scene's memo: they belong to the object that
owns the adjacency, are built once per key under a lock, and go when the scene goes (a new graph
generation opens a new scene).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from cxrneo.records import CacheUse
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.indexed import IndexedGraph

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One decision: a community merged in step 2a, or a node joining R in step 2b."""

    kind: Literal["community", "node"]
    target: int  # community id, or database row
    gain: float


@dataclass
class Growth:
    """The database rows of R in joining order, each with its gain; every step taken."""

    rows: list[int] = field(default_factory=list)
    gains: list[float | None] = field(default_factory=list)
    fallback: list[bool] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    stopped: bool = False  # strict mode met a gain <= 0

    def add(self, row: int, gain: float | None, fallback: bool = False) -> None:
        self.rows.append(row)
        self.gains.append(gain)
        self.fallback.append(fallback)


class Scene(Protocol):
    """One graph snapshot as retrieval methods read it."""

    @property
    def graph(self) -> IndexedGraph: ...
    @property
    def ids(self) -> Sequence[str]: ...
    @property
    def codes(self) -> np.ndarray: ...
    @property
    def threshold(self) -> float: ...
    def memo(self, key: Hashable, build: Callable[[], T]) -> T: ...


class Strategy(Protocol):
    """A retrieval method: the k best rows for one query (`cos`: its cosines to every row, exact
    where asked), `blocked` rows never returned; unless `strict`, exactly k rows (the rest by
    cosine, flagged fallback)."""

    def run(self, scene: Scene, cos: Cosines, blocked: np.ndarray, k: int, strict: bool) -> Growth: ...


class Memo:
    """Values built once per key and shared by concurrent queries (a build holds the lock); with
    `keep`, only the most recently used `keep` values stay."""

    def __init__(self, keep: int | None = None) -> None:
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
                self._values[key] = build()
                while self._keep is not None and len(self._values) > self._keep:
                    self._values.popitem(last=False)
            value: T = self._values[key]
            return value

    def use(self) -> CacheUse:
        """Its entries against ``keep``, and its hits and misses so far."""
        with self._lock:
            n = len(self._values)
            return CacheUse("entries", n, self._keep or n, n, self.hits, self.misses)
