"""BatchedScan: concurrent queries share one pass over the codes matrix.

An exact scan reads every code (460 MB at 112,120 x 1024 float32) to compute one column of
cosines; it is bound by memory bandwidth, so eight concurrent scans cost about eight passes.
Here the first caller becomes the leader, takes every query waiting at that moment into one
matrix product (one pass for the whole batch), hands each caller its column, and passes the
lead to the next waiting caller. The result is the same numbers as `codes @ q`, column by column.
"""

import threading

import numpy as np

MAX_BATCH = 64


def cosines(codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """codes @ queries for a (width x b) block of unit queries, always as a matrix product.

    BLAS answers a single column with a matrix-vector kernel whose rounding differs from the
    matrix-matrix one; padding one query with a zero column keeps every batch size, and so the
    service and the CLI, bit for bit equal.
    """
    if queries.shape[1] == 1:
        queries = np.concatenate([queries, np.zeros_like(queries)], axis=1)
    out: np.ndarray = codes @ queries
    return out


def scan_one(codes: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Cosines of one unit query to every row (the same numbers as inside any batch)."""
    return np.ascontiguousarray(cosines(codes, np.asarray(q, dtype=np.float32)[:, None])[:, 0])


class _Slot:
    __slots__ = ("error", "event", "lead", "q", "result")

    def __init__(self, q: np.ndarray) -> None:
        self.q = q
        self.event = threading.Event()
        self.lead = False
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class BatchedScan:
    """Callable `scan(q) -> codes @ q`, safe and shared across threads."""

    def __init__(self, codes: np.ndarray, max_batch: int = MAX_BATCH) -> None:
        self.codes = codes
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many products ran (for tests and benchmarks)

    def __call__(self, q: np.ndarray) -> np.ndarray:
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
            sims = cosines(self.codes, np.stack([s.q for s in batch], axis=1))
            for j, s in enumerate(batch):
                s.result = np.ascontiguousarray(sims[:, j])
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
