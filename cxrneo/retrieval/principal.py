"""The archive's principal directions: one seeded fit per graph generation, shared by the familiarity
statistic (familiar.py) and the low-rank first pass (lowrank.py); pure numpy.

A seeded sample of at most SAMPLE unit codes is split in two halves: the mean and the principal
directions of the centred codes are fitted on the first (the eigenvectors of their scatter matrix,
largest first); the second half is held out for statistics that must not see the fit.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from cxrneo.retrieval.cosines import Rows

SAMPLE = 20_000
KEPT = 128  # directions kept (the most any user asks for: the low-rank pass at D = 128)
MIN_ROWS = 4  # fewer codes: nothing to fit


@dataclass(frozen=True)
class Principal:
    """The mean unit code of the fit half and its principal directions (orthonormal rows, largest variance first)."""

    mean: np.ndarray  # (d,) float64
    directions: np.ndarray  # (k, d) float64
    variances: np.ndarray  # (k,) the fit half's mean square along each direction
    total: float  # the fit half's mean square distance from the mean
    fit_rows: np.ndarray  # ascending rows of the fit half
    held_rows: np.ndarray  # ascending rows of the held-out half

    @classmethod
    def fit(cls, codes: Rows, n: int, seed: int = 0, kept: int = KEPT) -> "Principal | None":
        """Fitted on a seeded sample of the archive's ``n`` unit codes (read by rows from ``codes``); None
        for fewer than MIN_ROWS codes."""
        if n < MIN_ROWS:
            return None
        order = np.random.default_rng(seed).permutation(n)[:SAMPLE]
        half = order.size // 2
        fit_rows, held_rows = np.sort(order[:half]), np.sort(order[half:])
        sample = np.asarray(codes[fit_rows], np.float64)
        mean = sample.mean(axis=0)
        centred = sample - mean
        scatter = centred.T @ centred
        width = scatter.shape[0]
        k = max(1, min(kept, half - 1, width))  # centred codes of `half` rows span at most half - 1 directions
        values, vectors = scipy.linalg.eigh(scatter, subset_by_index=[width - k, width - 1])
        directions = np.ascontiguousarray(vectors[:, ::-1].T)
        variances = np.maximum(values[::-1], 0.0) / half
        return cls(mean, directions, variances, float(np.trace(scatter)) / half, fit_rows, held_rows)

    def left_over(self, dim: int) -> float:
        """The root mean square length of the fit half's codes outside basis(dim) (at most: outside the top
        dim - 1 directions of their centred codes; the mean's direction takes away more)."""
        return float(np.sqrt(max(self.total - float(self.variances[: max(dim - 1, 0)].sum()), 0.0)))

    def basis(self, dim: int) -> np.ndarray:
        """`dim` orthonormal float32 rows spanning the mean's direction and the top dim - 1 directions:
        their left-over is within one eigenvalue of the best rank-dim subspace's (docs/method.md).
        Row i spans the same space as the first i + 1 of (mean, directions...): the first a rows of
        basis(b) are a basis(a)."""
        dim = max(1, min(dim, self.directions.shape[0] + 1))
        m = float(np.linalg.norm(self.mean))
        span = np.concatenate([self.mean[None] / m, self.directions[: dim - 1]]) if m > 0 else self.directions[:dim]
        q, _ = np.linalg.qr(span.T)
        out: np.ndarray = np.ascontiguousarray(q.T, dtype=np.float32)
        return out
