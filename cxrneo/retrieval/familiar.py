"""Is a query like the archive? A code's distance from the archive's main directions, against the same
distance of archived codes held out of the fit (docs/method.md, "Familiar queries").

The archive's unit codes (a seeded sample, principal.py) are split in two: the mean and a principal
subspace of COMPONENTS directions come from the fit on one half (the generation's one `Principal`), and
the other half's residuals (the length of what a code keeps outside that subspace) give the threshold,
their QUANTILE quantile. So the threshold is what a real archived film, unseen by the fit, exceeds 1% of
the time. A query code above it is unfamiliar. Pure numpy, built once per graph generation.
"""

from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError
from cxrneo.retrieval.cosines import Rows
from cxrneo.retrieval.principal import Principal

COMPONENTS = 32
QUANTILE = 0.99
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
        return cls.of(Principal.fit(codes, n, seed) if n >= MIN_CODES else None, codes)

    @classmethod
    def of(cls, principal: Principal | None, codes: Rows) -> "Familiarity | None":
        """From the archive's principal fit (its held-out half read by rows from ``codes``); None for an
        archive too small to say."""
        if principal is None or principal.fit_rows.size + principal.held_rows.size < MIN_CODES:
            return None
        basis = principal.directions[:COMPONENTS]
        held = _residuals(np.asarray(codes[principal.held_rows], np.float64), principal.mean, basis)
        return cls(principal.mean, basis, float(np.quantile(held, QUANTILE)), int(principal.held_rows.size))

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
