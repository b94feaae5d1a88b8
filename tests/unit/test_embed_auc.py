"""The numpy rank AUC against scikit-learn, with ties and masked (uncertain) entries."""

import doctest

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from cxrneo.embed import auc


def test_doctest() -> None:
    result = doctest.testmod(auc)
    assert result.attempted > 0 and result.failed == 0  # the examples exist and hold


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=40))
def test_matches_sklearn_with_ties(rows: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in rows], dtype=float)
    truth = np.array([t for _, t in rows])
    got = auc.auc(scores, truth)
    if truth.all() or not truth.any():
        assert np.isnan(got)
    else:
        assert np.isclose(got, roc_auc_score(truth, scores))


def test_per_label_masks_uncertain_rows() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 3))
    targets = (rng.random((50, 3)) < 0.4).astype(np.float32)
    known = rng.random((50, 3)) < 0.7
    targets[:, 2] = 0  # one class only: undefined
    values = auc.per_label(scores, targets, known)
    for j in range(2):
        assert np.isclose(values[j], roc_auc_score(targets[known[:, j], j], scores[known[:, j], j]))
    assert np.isnan(values[2])
    assert np.isclose(auc.mean_auc(values), values[:2].mean())
