"""Is a query like the archive? A code's distance from the archive's main directions, against the same
distance of archived codes held out of the fit (docs/method.md, "Familiar queries").

The archive's unit codes (a seeded sample of at most SAMPLE of them) are split in two: a principal
subspace of COMPONENTS directions is fitted on one half, and the other half's residuals (the length of
what a code keeps outside that subspace) give the threshold, their QUANTILE quantile. So the threshold
is what a real archived film, unseen by the fit, exceeds 1% of the time. A query code above it is
unfamiliar. Pure numpy, built once per graph generation.
"""

from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError
from cxrneo.retrieval.cosines import Rows

COMPONENTS = 32
QUANTILE = 0.99
SAMPLE = 20_000
MIN_CODES = 40  # fewer archived codes: no statistic (every query is called familiar)
DUPLICATE_COSINE = 1.0 - 1e-5  # the same film embedded again; distinct sample films stay below 0.9997


@dataclass(frozen=True)
class Familiarity:
    """The fitted statistic: the archive's mean unit code, its principal directions and the threshold."""

    mean: np.ndarray
    basis: np.ndarray  # COMPONENTS x d, orthonormal rows
    threshold: float
    held_out: int  # how many archived codes set the threshold

    @classmethod
    def fit(cls, codes: Rows, n: int, seed: int = 0) -> "Familiarity | None":
        """Fitted on a seeded sample of the archive's ``n`` unit codes (read by rows from ``codes``); None
        for an archive too small to say."""
        if n < MIN_CODES:
            return None
        order = np.random.default_rng(seed).permutation(n)[:SAMPLE]
        half = order.size // 2
        fit_rows, check_rows = np.sort(order[:half]), np.sort(order[half:])
        sample = np.asarray(codes[fit_rows], np.float64)
        mean = sample.mean(axis=0)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        basis = vt[: min(COMPONENTS, vt.shape[0] - 1)]
        held = _residuals(np.asarray(codes[check_rows], np.float64), mean, basis)
        return cls(mean, basis, float(np.quantile(held, QUANTILE)), int(check_rows.size))

    def residual(self, unit: np.ndarray) -> float:
        """The length of a unit code's part outside the archive's principal subspace."""
        v = np.asarray(unit, np.float64).reshape(1, -1)
        if v.shape[1] != self.mean.size:
            raise InputError(f"a code of {v.shape[1]} values for an archive of {self.mean.size}")
        return float(_residuals(v, self.mean, self.basis)[0])

    def doubt(self, unit: np.ndarray) -> str | None:
        """Why the code is unlike the archive's (one line), or None when it is like them."""
        r = self.residual(unit)
        if r <= self.threshold:
            return None
        return (f"the image is unlike the archive's chest X-rays: its features lie further from theirs than "
                f"for {QUANTILE:.0%} of archived X-rays (residual {r:.3f} > {self.threshold:.3f})")


def _residuals(codes: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    centred = codes - mean
    rest = centred - (centred @ basis.T) @ basis
    out: np.ndarray = np.linalg.norm(rest, axis=1)
    return out
