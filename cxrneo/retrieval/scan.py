"""The first pass over the codes, and BatchedScan: concurrent queries share one pass; pure.

An exact scan reads every code (460 MB at 112,120 x 1024 float32) to compute one column of
cosines; it is bound by memory bandwidth, so eight concurrent scans cost about eight passes.
A `Kernel` computes a whole block of queries in one pass and says how far each value may be from
the exact cosine; `Cosines` then decides every answer on exact values (see cosines.py). Here the
first caller becomes the leader, takes every query waiting at that moment into one kernel call,
hands each caller its column, and passes the lead to the next waiting caller.

Kernels: `Fp32Kernel` (numpy BLAS, everywhere) and `ExactKernel` (float64, the reference for
tests); cxrneo/embed/kernels.py adds bfloat16 (AMX / AVX512-BF16 CPUs, GPUs), which reads half the bytes,
and lowrank.py a pass on the codes projected on D directions, D/width of the multiplications (its bound
has a per-row term). fastest.py picks one by measurement.
"""

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cxrneo.graph import dot_error_bound
from cxrneo.retrieval.cosines import Cosines, Rows, RowTerm, exact_dot

MAX_BATCH = 64


@dataclass(frozen=True)
class Pass:
    """A first pass for b queries: approx (rows x b) and, for row i and query j,
    |exact - approx[i, j]| <= base[j] + rel |approx[i, j]| + scale[j] row.values[i] (no row term: 0)."""

    approx: np.ndarray
    base: np.ndarray  # (b,)
    rel: float
    row: RowTerm | None = None
    scale: np.ndarray | None = None  # (b,), with `row`

    def bound(self, j: int, rows: np.ndarray) -> np.ndarray:
        """The bound of query j's values at `rows` (float64)."""
        a = self.approx[rows, j].astype(np.float64)
        out: np.ndarray = self.base[j] + self.rel * np.abs(a)
        if self.row is not None and self.scale is not None:
            out = out + float(self.scale[j]) * self.row.values[rows]
        return out

    def cosines(self, codes: Rows, q: np.ndarray, j: int) -> Cosines:
        """Query j's Cosines (exact values read from `codes`)."""
        scale = 0.0 if self.scale is None else float(self.scale[j])
        return Cosines(codes, q, np.ascontiguousarray(self.approx[:, j]), float(self.base[j]), self.rel,
                       row=self.row, scale=scale)


class Kernel(Protocol):
    """Cosines of a (width x b) block of unit float32 queries to every row, in one pass."""

    name: str  # how the codes are read ("float32", "bfloat16", "float64", "lowrank-64")

    def __call__(self, queries: np.ndarray) -> Pass: ...


class Fp32Kernel:
    """codes @ queries with float32 BLAS: any summation order is within dot_error_bound(width)."""

    name = "float32"

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        self._bound = dot_error_bound(codes.shape[1]) if codes.ndim == 2 and codes.shape[1] else 0.0

    def __call__(self, queries: np.ndarray) -> Pass:
        q = np.asarray(queries, np.float32)
        approx = self.codes @ q[:, 0] if q.shape[1] == 1 else self.codes @ q  # a lone query: one matrix-vector pass
        return Pass(np.asarray(approx, np.float32).reshape(self.codes.shape[0], q.shape[1]),
                    np.full(q.shape[1], self._bound), 0.0)


class ExactKernel:
    """Every value exact (float64, `exact_dot`): the reference the other kernels are tested against."""

    name = "float64"

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes

    def __call__(self, queries: np.ndarray) -> Pass:
        rows = np.arange(self.codes.shape[0])
        cols = [exact_dot(self.codes, rows, np.asarray(q, np.float64)) for q in np.asarray(queries).T]
        return Pass(np.stack(cols, axis=1), np.zeros(len(cols)), 0.0)


def first_pass(kernel: Kernel, codes: Rows, q: np.ndarray) -> Cosines:
    """The Cosines of one unit query through `kernel` (no batching)."""
    q32 = np.ascontiguousarray(q, dtype=np.float32)
    return kernel(q32[:, None]).cosines(codes, q32, 0)


def holds(kernel: Kernel, codes: np.ndarray, samples: int = 4096, queries: int = 8, seed: int = 0) -> bool:
    """Whether every first-pass value of `kernel` lies within its bound of the exact cosine, on a
    sample of rows against codes of the archive and random unit queries."""
    rng = np.random.default_rng(seed)
    n, d = codes.shape
    rows = np.unique(rng.integers(0, n, min(samples, n)))
    q = np.concatenate([np.asarray(codes[rng.integers(0, n, queries // 2)], np.float32).T,
                        rng.standard_normal((d, queries - queries // 2)).astype(np.float32)], axis=1)
    q /= np.linalg.norm(q, axis=0).astype(np.float32)
    p = kernel(q)
    for j in range(q.shape[1]):
        exact = exact_dot(codes, rows, q[:, j].astype(np.float64))
        if (np.abs(exact - p.approx[rows, j].astype(np.float64)) > p.bound(j, rows)).any():
            return False
    return True


class _Slot:
    __slots__ = ("error", "event", "lead", "q", "result")

    def __init__(self, q: np.ndarray) -> None:
        self.q = q
        self.event = threading.Event()
        self.lead = False
        self.result: Cosines | None = None
        self.error: BaseException | None = None


class BatchedScan:
    """Callable `scan(q) -> Cosines`, safe and shared across threads: one kernel pass per batch."""

    def __init__(self, kernel: Kernel, codes: Rows, max_batch: int = MAX_BATCH) -> None:
        """`codes`: where exact values read their rows (the array, or a file read row by row)."""
        self.kernel = kernel
        self.codes = codes
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many passes ran (for tests and benchmarks)

    def __call__(self, q: np.ndarray) -> Cosines:
        slot = _Slot(np.ascontiguousarray(q, dtype=np.float32))
        with self._lock:
            self._pending.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.event.wait()
        if slot.lead or lead:
            self._run_batch()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _run_batch(self) -> None:
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
        try:
            p = self.kernel(np.stack([s.q for s in batch], axis=1))
            for j, s in enumerate(batch):
                s.result = p.cosines(self.codes, s.q, j)
            self.batches += 1
        except BaseException as e:  # every caller of the batch sees the error
            for s in batch:
                s.error = e
        with self._lock:
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
            else:
                nxt = None
                self._busy = False
        for s in batch:
            s.lead = False
            s.event.set()
        if nxt is not None:
            nxt.event.set()
