"""Retriever: one graph snapshot that answers a query code with any method (`strategies.STRATEGIES`)."""

import hashlib
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

from cxrneo.errors import ConfigError, InputError, NotFoundError
from cxrneo.records import CacheUse, Hit
from cxrneo.retrieval.cosines import Cosines, Rows, exact_dot
from cxrneo.retrieval.familiar import DUPLICATE_COSINE, Familiarity
from cxrneo.retrieval.indexed import IndexedGraph
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.question import Question
from cxrneo.retrieval.scan import Fp32Kernel, first_pass
from cxrneo.retrieval.scene import Growth, Memo, Step
from cxrneo.retrieval.strategies import STRATEGIES, ranked
from cxrneo.retrieval.view import GraphView

T = TypeVar("T")
INDUCED_KEPT = 16  # subgraphs and code subsets of recent filters kept per snapshot (8 filters' worth)


class Retriever:
    """Retrieval over one graph snapshot: the view, the unit codes and ids in row order, and T.

    Excluded ids (the query itself, its patient's images) stay in every graph statistic and
    in N(q) but never join R and are never returned.
    """

    def __init__(
        self, view: GraphView, unit_codes: np.ndarray | Callable[[], np.ndarray], ids: Sequence[str],
        threshold: float, scan: Callable[[np.ndarray], Cosines] | None = None, rows: Rows | None = None,
        principal: Callable[[], Principal | None] | None = None,
    ) -> None:
        """`unit_codes`: the codes in row order, or a function that makes them when first needed.
        `scan`: the cosines of a unit query to every row (default: a float32 pass over the codes; the
        stored graph gives a shared BatchedScan). `rows`: where single rows are read (default: the
        codes; the stored graph may give a file read row by row). `principal`: the archive's principal
        directions (default: fitted here when first needed; the stored graph shares its first pass's).
        Never assigned to once built."""
        if callable(unit_codes):
            self._codes: np.ndarray | None = None
            self._make_codes = unit_codes
        else:
            codes = np.ascontiguousarray(unit_codes, dtype=np.float32)
            if codes.ndim != 2 or codes.shape[0] != len(ids):
                raise InputError(f"codes of shape {codes.shape} do not match {len(ids)} image ids")
            self._codes = codes
        # cosines of a unit query to every row (first pass)
        self.scan: Callable[[np.ndarray], Cosines] = scan or (lambda q: first_pass(Fp32Kernel(self.codes), self.codes, q))
        self._rows = rows
        self._principal = principal
        self.threshold = float(threshold)
        self.graph = IndexedGraph(view, ids)
        self.ids = self.graph.ids
        self._memo = Memo()
        self._induced = Memo(keep=INDUCED_KEPT)

    @property
    def codes(self) -> np.ndarray:
        """The unit codes in row order (made on first use when given as a function)."""
        if self._codes is None:
            self._codes = np.ascontiguousarray(self._make_codes(), dtype=np.float32)
        return self._codes

    @property
    def reader(self) -> Rows:
        """Where single rows are read: the rows given (a file read row by row), else the codes."""
        return self.codes if self._rows is None else self._rows

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """A structure derived from this snapshot (diffusion's walk), built once per key."""
        return self._memo.get(key, build)

    def __len__(self) -> int:
        return len(self.ids)

    def caches(self) -> dict[str, CacheUse]:
        """The use of this snapshot's caches: the communities' adjacency blocks and the recent filters'
        induced subgraphs."""
        return {"community_blocks": self.graph.use(), "filter_subgraphs": self._induced.use()}

    def row_of(self, image_id: str) -> int:
        """The row of a database image (NotFoundError when unknown)."""
        try:
            return self.graph.row[image_id]
        except KeyError:
            raise NotFoundError(f"no image {image_id!r} in the database") from None

    def code_of(self, image_id: str) -> np.ndarray:
        """The stored unit code of a database image."""
        row = np.array([self.row_of(image_id)])
        code: np.ndarray = self.reader[row][0]
        return code

    def query(self, q_unit: np.ndarray, question: Question, cos: Cosines | None = None) -> list[Hit]:
        """The top-k database images for a query code, best first; with `question.allowed` the top
        min(k, allowed and not excluded) among the allowed rows (see `_filtered`). Each hit says which
        share of the archive (excluded rows aside) is less alike to the query (`closer_than`). `cos`:
        this code's `first_pass`, when the caller already made it."""
        unit = self._unit(q_unit)
        cos = self.scan(unit) if cos is None else cos
        blocked = self._blocked(question)
        growth = self._run(unit, question, cos, blocked)
        com = self.graph.community
        cosine = exact_dot(self.reader, np.array(growth.rows, np.int64), unit.astype(np.float64))
        closer = _standing(cos, blocked, cosine)
        return [
            Hit(rank=i + 1, image_id=self.ids[row], cosine=float(c), community=int(com[row]), gain=gain, fallback=fb,
                closer_than=share)
            for i, (row, c, gain, fb, share) in enumerate(
                zip(growth.rows, cosine, growth.gains, growth.fallback, closer, strict=True))
        ]

    def grow(self, q_unit: np.ndarray, question: Question) -> Growth:
        """Like `query`, but the raw Growth (rows, gains and every step) for inspection."""
        unit = self._unit(q_unit)
        return self._run(unit, question, self.scan(unit), self._blocked(question))

    def principal(self) -> Principal | None:
        """The archive's principal directions (cxrneo.retrieval.principal), fitted once."""
        return self.memo("principal", self._principal or (lambda: Principal.fit(self.reader, len(self.ids))))

    def familiarity(self) -> Familiarity | None:
        """What says whether a new code is like this archive's (cxrneo.retrieval.familiar), fitted once."""
        principal = self.principal()  # first: a memo's build must not ask the memo again
        return self.memo("familiarity", lambda: Familiarity.of(principal, self.reader))

    def doubt(self, q: np.ndarray) -> str | None:
        """Why a new code is unlike this archive's (one line), or None (also for an archive too small to
        say, see cxrneo.retrieval.familiar)."""
        familiarity = self.familiarity()
        return None if familiarity is None else familiarity.doubt(self._unit(q))

    def first_pass(self, q: np.ndarray) -> Cosines:
        """The cosines of a query code to every row (one pass over the codes; `query` and `duplicate_of`
        take it, so that one query makes it once)."""
        return self.scan(self._unit(q))

    def duplicate_of(self, q_unit: np.ndarray, cos: Cosines | None = None) -> str | None:
        """The stored image whose code is the query's own (cosine at least DUPLICATE_COSINE), if any;
        `cos`: this code's `first_pass`, when the caller already made it."""
        unit = self._unit(q_unit)
        best = (self.scan(unit) if cos is None else cos).top(1, self.ids.__getitem__)
        if best.size == 0:
            return None
        c = float(exact_dot(self.reader, best, unit.astype(np.float64))[0])
        return self.ids[int(best[0])] if c >= DUPLICATE_COSINE else None

    def _blocked(self, question: Question) -> np.ndarray:
        return np.array(sorted(self.graph.row[i] for i in question.exclude if i in self.graph.row), np.int64)

    def _run(self, unit: np.ndarray, question: Question, cos: Cosines, blocked: np.ndarray) -> Growth:
        k, method = question.k, question.how
        if question.allowed is not None:
            return self._filtered(cos, blocked, k, method, question.strict, question.allowed)
        if k > len(self.ids) - blocked.size:
            raise ConfigError(
                f"k={k} but the database holds only {len(self.ids) - blocked.size} images "
                f"that may be returned ({blocked.size} excluded)"
            )
        return STRATEGIES[method].run(self, cos, blocked, k, question.strict)

    def _filtered(
        self, cos: Cosines, blocked: np.ndarray, k: int, method: Method, strict: bool, allowed: np.ndarray,
    ) -> Growth:
        """The method among the allowed rows: kNN exactly over them; the graph methods on the subgraph
        induced by them (its own statistics and communities' restrictions), each falling back to
        cosine within them unless strict. min(k, allowed rows not blocked) rows. The induced subgraphs
        of the last few filters are kept."""
        allowed = np.asarray(allowed, bool)
        if allowed.shape != (len(self.ids),):
            raise InputError(f"a filter mask of {allowed.size} rows for {len(self.ids)} images")
        rows = np.flatnonzero(allowed)
        key = hashlib.sha256(rows.tobytes()).hexdigest()
        local = cos.restrict(rows)
        local_blocked = np.searchsorted(rows, blocked[allowed[blocked]])
        k = min(k, rows.size - local_blocked.size)
        if k <= 0:
            return Growth()
        if method is Method.KNN:
            found = ranked(local.top(k, _RowIds(self.ids, rows).__getitem__, local_blocked), fallback=False)
        else:
            sub = self._induced.get(("graph", key), lambda: self._build_induced(rows))
            found = STRATEGIES[method].run(sub, local, local_blocked, k, strict)
        out = Growth(stopped=found.stopped)
        for row, gain, fallback in zip(found.rows, found.gains, found.fallback, strict=True):
            out.add(int(rows[row]), gain, fallback)
        out.steps = [s if s.kind == "community" else Step(s.kind, int(rows[s.target]), s.gain) for s in found.steps]
        return out

    def _build_induced(self, rows: np.ndarray) -> "Retriever":
        """A Retriever over the subgraph induced by `rows` (ascending): its own CSR, community
        statistics and blocks; its codes made from ours when a method asks for them."""
        view = self.graph.view
        if not isinstance(view, MemoryGraph) or view.ids != self.ids:
            raise ConfigError("filters need the graph in memory (a MemoryGraph in the retriever's row order)")
        n = len(self.ids)
        keep = np.zeros(n, bool)
        keep[rows] = True
        new = np.full(n, -1, np.int64)
        new[rows] = np.arange(rows.size)
        heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(view.indptr))
        inside = keep[heads] & keep[view.indices]
        h, t = new[heads[inside]], new[np.asarray(view.indices)[inside]]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(h, minlength=rows.size))]).astype(np.int64)
        ids = [self.ids[r] for r in rows.tolist()]
        sub_view = MemoryGraph.from_csr(ids, indptr, t.astype(np.int32), self.graph.community[rows])
        return Retriever(sub_view, lambda: self.codes[rows], ids, self.threshold)

    def _unit(self, q: np.ndarray) -> np.ndarray:
        v = np.asarray(q, dtype=np.float32).ravel()
        if v.size != self.codes.shape[1]:
            raise InputError(f"query code has {v.size} values, the database codes {self.codes.shape[1]}")
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm) or norm == 0.0:
            raise InputError("query code is zero or not finite")
        return (v / np.float32(norm)).astype(np.float32)


class _RowIds(Sequence[str]):
    """The ids of some rows, as a sequence (no copy of the id list per query)."""

    def __init__(self, ids: Sequence[str], rows: np.ndarray) -> None:
        self._ids, self._rows = ids, rows

    def __len__(self) -> int:
        return int(self._rows.size)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self._ids[int(self._rows[i])]



def _standing(cos: Cosines, blocked: np.ndarray, cosines: np.ndarray) -> list[float]:
    """For each cosine, the share of the rows (blocked ones aside) whose exact cosine to the query is below
    it: "closer than this share of the archive". Exact whatever the first pass (Cosines.count_at_least)."""
    n = len(cos) - int(blocked.size)
    if n <= 0:
        return [0.0] * int(cosines.size)
    above = cos.count_at_least(cosines)
    if blocked.size:
        above = above - (cos.exact(blocked)[None, :] >= cosines[:, None]).sum(axis=1)
    return [float(n - a) / n for a in above.tolist()]
