"""Retriever: one graph snapshot that answers a query code with any method (`strategies.STRATEGIES`)."""

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

from cxrneo.errors import ConfigError, InputError, NotFoundError
from cxrneo.records import Hit
from cxrneo.retrieval.indexed import IndexedGraph
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.scene import Growth, Memo
from cxrneo.retrieval.strategies import STRATEGIES
from cxrneo.retrieval.view import GraphView

T = TypeVar("T")


class Retriever:
    """Retrieval over one graph snapshot: the view, the unit codes and ids in row order, and T.

    Excluded ids (the query itself, its patient's images) stay in every graph statistic and
    in N(q) but never join R and are never returned.
    """

    def __init__(self, view: GraphView, unit_codes: np.ndarray, ids: Sequence[str], threshold: float) -> None:
        codes = np.ascontiguousarray(unit_codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[0] != len(ids):
            raise InputError(f"codes of shape {codes.shape} do not match {len(ids)} image ids")
        self.codes = codes
        # cosines of a unit query to every row; the stored graph swaps in a BatchedScan
        self.scan: Callable[[np.ndarray], np.ndarray] = codes.__matmul__
        self.threshold = float(threshold)
        self.graph = IndexedGraph(view, ids)
        self.ids = self.graph.ids
        self._memo = Memo()

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """A structure derived from this snapshot (diffusion's walk), built once per key."""
        return self._memo.get(key, build)

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, image_id: str) -> int:
        """The row of a database image (NotFoundError when unknown)."""
        try:
            return self.graph.row[image_id]
        except KeyError:
            raise NotFoundError(f"no image {image_id!r} in the database") from None

    def code_of(self, image_id: str) -> np.ndarray:
        """The stored unit code of a database image."""
        code: np.ndarray = self.codes[self.row_of(image_id)]
        return code

    def query(
        self,
        q_unit: np.ndarray,
        k: int,
        method: Method | str = Method.COMMUNITY,
        strict: bool = False,
        exclude: frozenset[str] = frozenset(),
    ) -> list[Hit]:
        """The top-k database images for a query code, best first."""
        method = Method.parse(method)
        sims, growth = self._run(q_unit, k, method, strict, exclude)
        com = self.graph.community
        return [
            Hit(
                rank=i + 1,
                image_id=self.ids[row],
                cosine=float(sims[row]),
                community=int(com[row]),
                gain=gain,
                fallback=fb,
            )
            for i, (row, gain, fb) in enumerate(zip(growth.rows, growth.gains, growth.fallback, strict=True))
        ]

    def grow(
        self,
        q_unit: np.ndarray,
        k: int,
        method: Method | str = Method.COMMUNITY,
        strict: bool = False,
        exclude: frozenset[str] = frozenset(),
    ) -> Growth:
        """Like `query`, but the raw Growth (rows, gains and every step) for inspection."""
        return self._run(q_unit, k, Method.parse(method), strict, exclude)[1]

    def _run(
        self, q_unit: np.ndarray, k: int, method: Method, strict: bool, exclude: frozenset[str]
    ) -> tuple[np.ndarray, Growth]:
        if k <= 0:
            raise ConfigError(f"k must be at least 1, got {k}")
        blocked = np.array(sorted(self.graph.row[i] for i in exclude if i in self.graph.row), np.int64)
        if k > len(self.ids) - blocked.size:
            raise ConfigError(
                f"k={k} but the database holds only {len(self.ids) - blocked.size} images "
                f"that may be returned ({blocked.size} excluded)"
            )
        sims = self.scan(self._unit(q_unit))
        return sims, STRATEGIES[method].run(self, sims, blocked, k, strict)

    def _unit(self, q: np.ndarray) -> np.ndarray:
        v = np.asarray(q, dtype=np.float32).ravel()
        if v.size != self.codes.shape[1]:
            raise InputError(f"query code has {v.size} values, the database codes {self.codes.shape[1]}")
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm) or norm == 0.0:
            raise InputError("query code is zero or not finite")
        return (v / np.float32(norm)).astype(np.float32)
