"""The first pass a graph generation uses, chosen by measurement on its own codes; pure (the caller
gives the kernels only it can make, e.g. bfloat16 from cxrneo/embed/kernels.py).

When a generation opens, each candidate this CPU supports (float32; bfloat16 where it may be fast; the
low-rank pass of lowrank.py at a few ranks D, or at a whitened graph's own rank d') does the work of
real queries on the loaded codes: one lone query and one batch of BATCH, archive codes as queries
(each leaving itself out), each deciding its TOP best, N(q) = {cosine >= T} and where each hit stands.
A loose bound shows up there as exact rechecks, and costs their time. Candidates are timed in rounds
(each once a round, its best time kept), so that a busy moment on a shared machine does not decide
alone. The fastest candidate whose bound holds on a sample (`scan.holds`) is taken; every answer is
exact whichever it is (cosines.py).
"""

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import ConfigError
from cxrneo.retrieval.cosines import Rows
from cxrneo.retrieval.lowrank import family
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.scan import Fp32Kernel, Kernel, holds

PRECISIONS = ("auto", "float32", "bfloat16", "lowrank")
DIMS = (16, 32, 64, 128)  # ranks tried on raw codes (at most a quarter of the width); 256 never won on
# codes with a real spectrum (scripts/bench_lowrank.py) and would double the start-up's projection
HOPELESS = 0.25  # a rank leaving codes this long outside it (root mean square) is not tried: a row's slack
# is about |x_rest| |q_rest|, 0.06 here, and nearly every row would be rechecked
FINE = 0.002  # no larger rank is tried once one leaves less than this outside
BATCH = 8  # queries of the batch trial (the service's concurrent queries)
TOP = 10
ROUNDS = 3  # each candidate's time is its best over these rounds (every candidate timed once a round)
GIVE_UP = 2.0  # a trial stops once it has taken this many times the fastest trial's time
LEAST_ROWS = 4096  # fewer codes: "auto" is float32 (every pass is fast; nothing to measure)

log = logging.getLogger(__name__)


class Directions:
    """The directions a low-rank pass may project on: a whitened graph's own basis (rank d', stored with
    the graph), else the archive's principal directions (principal.py, fitted when first asked)."""

    def __init__(self, principal: Callable[[], Principal | None], whitened: np.ndarray | None = None) -> None:
        self._principal = principal
        self.whitened = whitened  # (d', width) float32, or None

    def ranks(self, width: int) -> tuple[np.ndarray, list[int]] | None:
        """(the directions, the ranks D to try on their first rows), or None when there are none."""
        if self.whitened is not None:
            rows = np.ascontiguousarray(self.whitened, dtype=np.float32)
            return (rows, [rows.shape[0]]) if rows.shape[0] < width else None
        dims = [d for d in DIMS if d <= width // 4]
        principal = self._principal() if dims else None
        if principal is None:
            return None
        dims = [d for d in dims if d <= principal.directions.shape[0] + 1 and principal.left_over(d) <= HOPELESS]
        fine = [d for d in dims if principal.left_over(d) < FINE]
        dims = [d for d in dims if not fine or d <= fine[0]]
        return (principal.basis(dims[-1]), dims) if dims else None


@dataclass(frozen=True)
class Loaded:
    """What the choice looks at: the generation's codes (float32 rows, unit), where exact values read
    their rows, the graph's threshold T and the directions a low-rank pass may use."""

    codes: np.ndarray
    reader: Rows
    threshold: float
    directions: Directions


@dataclass(frozen=True)
class Trial:
    """One candidate on the loaded codes: whether its bound held, and (when it did) the seconds of a lone
    query and a batch of BATCH with their decisions (inf: stopped once slower than the fastest before
    it), and the exact values each query needed."""

    name: str
    holds: bool
    seconds: float = math.inf
    rechecks: float = math.nan


@dataclass(frozen=True)
class Chosen:
    """The kernel a generation uses and the trials that chose it (none when it was not measured)."""

    kernel: Kernel
    trials: tuple[Trial, ...] = ()

    @property
    def rechecks(self) -> float | None:
        """Exact values per query the chosen kernel needed in its trial (None: not measured)."""
        return next((t.rechecks for t in self.trials if t.name == self.kernel.name and t.holds), None)

    def summary(self) -> str:
        """One line: the chosen kernel and every trial."""
        shown = [f"{t.name}: bound failed" if not t.holds else
                 f"{t.name}: slower, {t.rechecks:.0f} rechecks/query" if math.isinf(t.seconds) else
                 f"{t.name}: {t.seconds * 1e3:.1f} ms, {t.rechecks:.0f} rechecks/query" for t in self.trials]
        return f"first pass {self.kernel.name}" + (f" ({'; '.join(shown)})" if shown else " (not measured)")


def float32(loaded: Loaded) -> Chosen:
    """The float32 pass, unmeasured (one-shot commands, small archives)."""
    return Chosen(Fp32Kernel(loaded.codes))


def choose(
    loaded: Loaded, precision: str = "auto", extra: Mapping[str, Callable[[], Kernel]] | None = None,
    least_rows: int = LEAST_ROWS,
) -> Chosen:
    """The first pass for these codes. "float32": float32. "auto": the fastest of float32, the low-rank
    ranks and `extra` whose bound holds (float32 for fewer than `least_rows` codes). "lowrank": the
    fastest low-rank rank whose bound holds; "bfloat16": `extra`'s (the caller gives it) if its bound
    holds; each falls back to float32 when none holds."""
    if precision not in PRECISIONS:
        raise ConfigError(f"the first pass must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    n = loaded.codes.shape[0]
    if precision == "float32" or n == 0 or (precision == "auto" and n < least_rows):
        return float32(loaded)
    queries, own = _queries(loaded.codes)
    kernels = list(_candidates(loaded, precision, dict(extra or {})))
    trials = {k.name: Trial(k.name, holds(k, loaded.codes)) for k in kernels}
    for _ in range(ROUNDS):  # rounds, every candidate timed in each: a busy moment cannot single one out
        for kernel in kernels:
            t = trials[kernel.name]
            if not t.holds:
                continue
            beat = min(x.seconds for x in trials.values())
            seconds, rechecks = _time(kernel, loaded, queries, own, beat)
            trials[kernel.name] = Trial(t.name, True, min(t.seconds, seconds),
                                        rechecks if math.isnan(t.rechecks) else t.rechecks)
    ranked = sorted((t.seconds, i) for i, t in enumerate(trials.values()) if t.holds and math.isfinite(t.seconds))
    best = kernels[ranked[0][1]] if ranked else None
    chosen = Chosen(best if best is not None else Fp32Kernel(loaded.codes), tuple(trials.values()))
    if best is None:
        log.warning("%s: no %s pass keeps its bound here", chosen.summary(), precision)
    return chosen


def _candidates(loaded: Loaded, precision: str, extra: dict[str, Callable[[], Kernel]]) -> Iterator[Kernel]:
    """The kernels to try (a low-rank family shares one projection of the codes)."""
    if precision == "auto":
        yield Fp32Kernel(loaded.codes)
    if precision in ("auto", "lowrank"):
        ranks = loaded.directions.ranks(loaded.codes.shape[1])
        if ranks is not None:
            kernels = family(loaded.codes, *ranks)
            while kernels:
                yield kernels.pop(0).compact()
    if precision in ("auto", "bfloat16"):
        for make in extra.values():
            yield make()


def _queries(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BATCH archive codes (a seeded draw) as unit float32 queries (width x BATCH), and their rows."""
    rows = np.sort(np.random.default_rng(0).choice(codes.shape[0], min(BATCH, codes.shape[0]), replace=False))
    q = np.asarray(codes[rows], np.float64).T
    q /= np.maximum(np.linalg.norm(q, axis=0), 1e-12)
    return np.ascontiguousarray(q, dtype=np.float32), rows


def _time(kernel: Kernel, loaded: Loaded, queries: np.ndarray, own: np.ndarray, beat: float) -> tuple[float, float]:
    """One timing of `kernel` (a lone query, then a batch, every decision made) and the exact values each
    query needed. `beat`: the time to beat; past GIVE_UP times it the timing stops there (inf: a loose
    bound's rechecks are slow)."""
    start, computed, done = time.perf_counter(), 0, 0
    for block in (queries[:, :1], queries):
        p = kernel(block)
        for j in range(block.shape[1]):
            cos = p.cosines(loaded.reader, block[:, j], j)
            top = cos.top(TOP, str, np.array([own[j]]))
            cos.at_least(loaded.threshold)
            cos.count_at_least(cos.exact(top))
            computed, done = computed + cos.computed, done + 1
            if time.perf_counter() - start > GIVE_UP * beat:
                return math.inf, computed / done
    return time.perf_counter() - start, computed / done
