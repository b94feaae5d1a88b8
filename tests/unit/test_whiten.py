"""The learned code transform: centring + PCA whitening in the code space, fitted on database rows only."""

import numpy as np
import pytest

from cxrneo.errors import ConfigError
from cxrneo.evaluation.evaluate import EvalOptions, _whitening, evaluate, louvain_in_memory, patient_split
from cxrneo.whiten import Spectrum, Whitening, choose, unit
from tests.unit.test_evaluate import make_codes


def _collinear(n: int = 300, d: int = 1024, seed: int = 0) -> np.ndarray:
    """Codes with a large shared component and a few informative directions, as a weak model makes."""
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(d)
    signal = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d))
    return (20 * common + signal + 0.1 * rng.standard_normal((n, d))).astype(np.float32)


def test_the_transform_is_pca_whitening_expressed_in_the_code_space() -> None:
    x = _collinear()
    s = Spectrum.of(x)
    w = s.whitening(8, 0.0)
    out = w.apply(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # the same cosines as the 8-dimensional whitened vectors, computed directly
    z = (unit(x) - s.mean) @ s.vectors[:, :8] / np.sqrt(s.values[:8])
    assert np.allclose(out @ out.T, unit(z) @ unit(z).T, atol=1e-4)
    # whitened directions are uncorrelated with equal variance before the final normalisation
    cov = np.cov(z.T)
    assert np.allclose(cov, np.eye(8), atol=1e-6)
    raw_cos = unit(x) @ unit(x).T
    assert raw_cos[np.triu_indices(len(x), 1)].mean() > 0.9  # nearly collinear before ...
    assert abs((out @ out.T)[np.triu_indices(len(x), 1)].mean()) < 0.05  # ... spread after


def test_shrinkage_whitens_small_eigenvalues_less_and_arrays_round_trip() -> None:
    s = Spectrum.of(_collinear())
    full, shrunk = s.whitening(16, 0.0), s.whitening(16, 1.0)
    ratio_full = full.scale[-1] / full.scale[0]
    ratio_shrunk = shrunk.scale[-1] / shrunk.scale[0]
    assert ratio_shrunk < ratio_full
    back = Whitening.from_arrays(shrunk.arrays())
    assert back.sha256 == shrunk.sha256 != full.sha256
    x = _collinear(seed=1)
    assert np.array_equal(back.apply(x), shrunk.apply(x))
    with pytest.raises(ConfigError, match="do not fit"):
        Whitening.from_arrays({**shrunk.arrays(), "scale": shrunk.scale[:3]})
    with pytest.raises(ConfigError, match="at least 1"):
        s.whitening(0, 0.0)
    assert s.whitening(5000, 0.0).dim <= 300  # never more directions than the codes' rank


def test_choose_keeps_the_best_candidate_and_records_raw_codes() -> None:
    x = _collinear()
    fit, val = np.arange(200), np.arange(200, 300)
    choice = choose(x, val, fit, lambda db, q: -abs(np.linalg.matrix_rank(db) - 16) / 100,
                    dims=(8, 16, 32), shrinks=(0.0, 1.0))
    assert (choice.dim, choice.shrink) == (16, 1.0)  # ties on shrink: the larger one
    assert (0, 0.0) in choice.scores and len(choice.scores) == 7


def test_evaluation_fits_the_whitening_on_database_rows_only() -> None:
    codes = make_codes(240, seed=3)
    opts = EvalOptions(n_queries=60, k=5, k_max=10, mean_degree=8, n_boot=100, whiten="auto", label_sets=["nih"],
                       methods=["knn", "community"])
    db_rows, q_rows = patient_split(codes.images, 60, opts.seed)
    w, how, table = _whitening(codes, db_rows, opts, "nih")
    poisoned = codes.codes.copy()
    poisoned[q_rows] = np.random.default_rng(9).standard_normal(poisoned[q_rows].shape) * 1e3
    w2, _, table2 = _whitening(codes.with_codes(poisoned), db_rows, opts, "nih")
    assert w.sha256 == w2.sha256 and table == table2  # query rows change nothing
    assert how.startswith("auto") and "0/0" in table
    res = evaluate(codes, opts, lambda c, e, t: louvain_in_memory(c, e, t, 0))
    assert res.whitening is not None and res.whitening.dim == w.dim
    methods = {s.method for s in res.results[0].methods}
    assert {"knn", "knn (whitened)", "community (whitened)", "random"} <= methods
    pairs = {(c.a, c.b) for c in res.results[0].comparisons}
    assert ("knn (whitened)", "knn") in pairs and ("community (whitened)", "community") in pairs
    with pytest.raises(ValueError, match="whiten"):
        EvalOptions(whiten="lots")
