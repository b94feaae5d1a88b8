"""The retrieval tie-break: higher value, then smaller image id (cosines.Cosines.top builds on it)."""

from collections.abc import Callable

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
