"""A code transform learned from the archive: centring and PCA whitening, then L2 normalisation (pure numpy).

Codes of a network trained on few images share a large common component: every cosine sits
near 1 (T = 0.98 for mean degree 20 on the bundled sample). Learned on the database codes only,

    w(x) = normalise( U diag(s) U^T (x̂ - μ) ),  x̂ = x / |x|,

where μ is the mean unit code, U the top ``dim`` eigenvectors of the codes' covariance and
s_i = 1 / sqrt(λ_i + shrink · mean(λ)) (shrink = 0: full whitening of those ``dim`` directions;
larger values whiten the small eigenvalues less). ``U diag(s) U^T`` maps back into the original
1024 coordinates, so a transformed code is an ordinary code (same width, same files, same vector
index) whose cosines are exactly those of the ``dim``-dimensional whitened vectors
(U has orthonormal columns). Jegou and Chum (ECCV 2012) and Radenovic, Tolias and Chum (TPAMI
2019) use this learned whitening for instance retrieval.
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cxrneo.errors import ConfigError

DIMS = (16, 32, 64, 128, 256)


def option(value: str) -> str:
    """A `--whiten` value: none, auto or a dimension (>= 1), normalised; ConfigError otherwise."""
    v = str(value).strip().lower()
    if v not in ("none", "auto") and not (v.isdigit() and int(v) >= 1):
        raise ConfigError(f"--whiten must be none, auto or a dimension, got {value!r}")
    return v
SHRINKS = (0.0, 0.1, 1.0)


def unit(codes: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64)."""
    x = np.asarray(codes, dtype=np.float64)
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


@dataclass(frozen=True)
class Spectrum:
    """Mean and eigen-decomposition of unit codes' covariance, largest eigenvalue first."""

    mean: np.ndarray
    values: np.ndarray
    vectors: np.ndarray

    @classmethod
    def of(cls, codes: np.ndarray) -> "Spectrum":
        x = unit(codes)
        if len(x) < 2:
            raise ConfigError("whitening needs at least two database codes")
        mean = x.mean(axis=0)
        centred = x - mean
        values, vectors = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
        order = np.argsort(values)[::-1]
        return cls(mean, np.maximum(values[order], 0.0), vectors[:, order])

    def whitening(self, dim: int, shrink: float) -> "Whitening":
        """The transform keeping ``dim`` directions (at most the codes' rank), shrinkage ``shrink``."""
        if dim < 1:
            raise ConfigError(f"whitening dimension must be at least 1, got {dim}")
        if shrink < 0:
            raise ConfigError(f"whitening shrinkage must be >= 0, got {shrink}")
        rank = int((self.values > self.values[0] * 1e-9).sum()) if self.values[0] > 0 else 0
        if rank == 0:
            raise ConfigError("the database codes are all equal: nothing to whiten")
        d = min(dim, rank)
        lam = self.values[:d]
        scale = 1.0 / np.sqrt(lam + shrink * float(self.values[:rank].mean()))
        return Whitening(self.mean.astype(np.float32), self.vectors[:, :d].astype(np.float32),
                         scale.astype(np.float32), shrink)


@dataclass(frozen=True)
class Whitening:
    """A fitted transform: mean (D,), basis (D, d), scale (d,); see the module docstring."""

    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray
    shrink: float

    @property
    def dim(self) -> int:
        return int(self.basis.shape[1])

    def apply(self, codes: np.ndarray) -> np.ndarray:
        """Unit float32 codes of the same width, in the whitened space."""
        z = ((unit(codes) - self.mean) @ self.basis) * self.scale
        out = unit(z @ self.basis.T.astype(np.float64)).astype(np.float32)
        return out

    def direction(self, w: np.ndarray) -> np.ndarray:
        """A direction of the raw code space (a classifier row w) as the direction of the whitened
        space along which w . x grows fastest: on the kept subspace x - mean = y B S^-1 B^T, so the
        gradient of w . x with respect to y is (w B / S) B^T."""
        out: np.ndarray = ((np.asarray(w, np.float64) @ self.basis) / self.scale) @ self.basis.T
        return out.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """What to store: three float32 arrays and the shrinkage."""
        return {"mean": self.mean, "basis": self.basis, "scale": self.scale,
                "shrink": np.asarray([self.shrink], dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Whitening":
        try:
            mean, basis, scale = (np.asarray(arrays[k], dtype=np.float32) for k in ("mean", "basis", "scale"))
            shrink = float(np.asarray(arrays["shrink"]).reshape(-1)[0])
        except (KeyError, ValueError, IndexError) as e:
            raise ConfigError(f"unreadable whitening ({e})") from None
        if mean.ndim != 1 or basis.shape[0] != mean.shape[0] or scale.shape != (basis.shape[1],):
            raise ConfigError(f"whitening arrays do not fit: mean {mean.shape}, basis {basis.shape}, scale {scale.shape}")
        return cls(mean, basis, scale, shrink)

    @property
    def sha256(self) -> str:
        """A digest of the exact arrays (the transform's identity)."""
        h = hashlib.sha256()
        for name, arr in self.arrays().items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


# --- choosing the dimension and the shrinkage on a validation split ---------------------------------

Scorer = Callable[[np.ndarray, np.ndarray], float]  # (database unit codes, query unit codes) -> mean precision


@dataclass(frozen=True)
class Choice:
    """The chosen parameters and every candidate's validation score (raw codes as dim 0)."""

    dim: int
    shrink: float
    scores: dict[tuple[int, float], float]


def choose(db_codes: np.ndarray, val_rows: np.ndarray, fit_rows: np.ndarray, score: Scorer,
           dims: Sequence[int] = DIMS, shrinks: Sequence[float] = SHRINKS) -> Choice:
    """Fit on ``fit_rows`` of the database codes, score retrieval of ``val_rows`` among them with every
    (dim, shrink) and keep the best (ties: the smaller dimension, then the larger shrinkage)."""
    spectrum = Spectrum.of(db_codes[fit_rows])
    scores: dict[tuple[int, float], float] = {(0, 0.0): score(unit(db_codes[fit_rows]), unit(db_codes[val_rows]))}
    for dim in dims:
        if dim >= len(fit_rows):
            continue
        for shrink in shrinks:
            w = spectrum.whitening(dim, shrink)
            scores[(dim, shrink)] = score(w.apply(db_codes[fit_rows]), w.apply(db_codes[val_rows]))
    candidates = [key for key in scores if key[0] > 0]
    if not candidates:
        raise ConfigError(f"too few database codes ({len(fit_rows)}) to choose a whitening dimension")
    best = max(candidates, key=lambda key: (round(scores[key], 12), -key[0], key[1]))
    return Choice(best[0], best[1], scores)
