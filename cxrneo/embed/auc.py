"""Rank-based ROC AUC per label in numpy (ties get average ranks; masked entries ignored)."""

import numpy as np


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mann-Whitney AUC of one label; NaN when only one class is present.

    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth).astype(bool)
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average rank (1-based) over each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def per_label(scores: np.ndarray, targets: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """AUC of each column, using only rows where ``known`` is True (NaN if undefined)."""
    if known is None:
        known = np.ones(targets.shape, dtype=bool)
    return np.array([auc(scores[known[:, j], j], targets[known[:, j], j]) for j in range(targets.shape[1])])


def mean_auc(values: np.ndarray) -> float:
    """Mean over the labels whose AUC is defined (NaN if none is)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")
