"""Exact cosine ranking with the retrieval tie-break: higher cosine, then smaller image id."""

from collections.abc import Callable, Sequence

import numpy as np


def best_first(values: np.ndarray, name: Callable[[int], str], need: int) -> list[int]:
    """Positions of the `need` largest finite values, best first, ties by name(position)."""
    finite = np.flatnonzero(np.isfinite(values))
    need = min(need, finite.size)
    if need <= 0:
        return []
    v = values[finite]
    if need < finite.size:
        cut = np.partition(v, v.size - need)[v.size - need]
        finite = finite[v >= cut]  # every tie at the cut stays in
    ordered = sorted(finite.tolist(), key=lambda p: (-float(values[p]), name(p)))
    return ordered[:need]


def top_by_cosine(
    sims: np.ndarray, k: int, ids: Sequence[str], blocked: np.ndarray | None = None
) -> np.ndarray:
    """The rows of the k largest `sims` not in `blocked`, best first (fewer if fewer remain)."""
    s = np.array(sims, dtype=np.float32, copy=True)
    if blocked is not None and blocked.size:
        s[blocked] = -np.inf
    return np.array(best_first(s, ids.__getitem__, k), dtype=np.int64)
