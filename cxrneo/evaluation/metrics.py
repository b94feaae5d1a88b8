"""Retrieval scores of docs/method.md section 6 (precision, ACG, DCG/nDCG) and bootstrap intervals, pure numpy.

Conventions: ``rel`` is an integer matrix Q x K of graded relevances r_n = |P(q) ∩ P(x_n)|
in rank order (a missing result has r = 0); ``k`` defaults to the width of ``rel`` and a
``rel`` narrower than ``k`` is padded with zeros (missing results score 0).
"""

from typing import NamedTuple

import numpy as np


def _at(rel: np.ndarray, k: int | None) -> np.ndarray:
    rel = np.asarray(rel)
    if rel.ndim != 2:
        raise ValueError(f"rel must be Q x K, got shape {rel.shape}")
    k = rel.shape[1] if k is None else k
    if k < 1:
        raise ValueError("k must be at least 1")
    if rel.shape[1] >= k:
        return rel[:, :k]
    return np.pad(rel, ((0, 0), (0, k - rel.shape[1])))


def relevance(query_labels: np.ndarray, db_labels: np.ndarray, results: np.ndarray) -> np.ndarray:
    """r_n = number of positive labels query and result share; result row -1 = missing (r = 0).

    >>> q = np.array([[1, 1, 0]], bool); db = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 1]], bool)
    >>> relevance(q, db, np.array([[2, 0, 1, -1]])).tolist()
    [[2, 1, 0, 0]]
    """
    results = np.asarray(results, dtype=np.int64)
    got = db_labels[np.maximum(results, 0)]  # Q x K x L
    rel = (got & query_labels[:, None, :]).sum(axis=2)
    rel[results < 0] = 0
    out: np.ndarray = rel.astype(np.int64)
    return out


def precision_at_k(rel: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per query, the share of the top k results that share at least one positive label.

    >>> precision_at_k(np.array([[2, 0, 1, 0]]), 4).tolist()
    [0.5]
    >>> precision_at_k(np.array([[1, 1]]), 4).tolist()  # two results missing
    [0.5]
    """
    r = _at(rel, k)
    out: np.ndarray = (r > 0).mean(axis=1)
    return out


def acg_at_k(rel: np.ndarray, n_pos: np.ndarray | None, k: int | None = None) -> np.ndarray:
    """Average cumulative gain; normalised by |P(q)| (the paper's form) unless ``n_pos`` is None.

    >>> acg_at_k(np.array([[2, 0, 1, 1]]), np.array([2]), 4).tolist()
    [0.5]
    >>> acg_at_k(np.array([[2, 0, 1, 1]]), None, 4).tolist()
    [1.0]
    """
    r = _at(rel, k)
    acg: np.ndarray = r.mean(axis=1)
    if n_pos is None:
        return acg
    n = np.asarray(n_pos, dtype=np.float64)
    if (n <= 0).any():
        raise ValueError("normalised ACG needs at least one positive label per query")
    out: np.ndarray = acg / n
    return out


def _discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))  # position n = 1..k -> 1/log2(n+1)


def dcg_at_k(rel: np.ndarray, k: int | None = None) -> np.ndarray:
    """DCG = sum over n of (2^r_n - 1) / log2(n + 1).

    >>> dcg_at_k(np.array([[2, 0, 1]])).round(4).tolist()
    [3.5]
    """
    r = _at(rel, k)
    out: np.ndarray = ((np.exp2(r) - 1.0) * _discount(r.shape[1])).sum(axis=1)
    return out


def ideal_relevance(
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    query_groups: np.ndarray | None = None,
    db_groups: np.ndarray | None = None,
    chunk: int = 512,
) -> np.ndarray:
    """The best k relevances the database offers each query (descending), Q x k.

    Database images in the query's own group (its patient; group -1 = none) are excluded,
    as they are from the results.

    >>> q = np.array([[1, 1, 0]], bool); db = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 1]], bool)
    >>> ideal_relevance(q, db, 2).tolist()
    [[2, 1]]
    >>> ideal_relevance(q, db, 2, np.array([7]), np.array([-1, -1, 7])).tolist()
    [[1, 0]]
    """
    nq, n = query_labels.shape[0], db_labels.shape[0]
    out = np.zeros((nq, k), dtype=np.int64)
    if n == 0 or nq == 0:
        return out
    take = min(k, n)
    dbt = db_labels.T.astype(np.int32)
    for s in range(0, nq, chunk):
        r = query_labels[s : s + chunk].astype(np.int32) @ dbt  # chunk x N
        if query_groups is not None and db_groups is not None:
            qg = np.asarray(query_groups[s : s + chunk])[:, None]
            r[(qg == np.asarray(db_groups)[None, :]) & (qg >= 0)] = 0
        top = -np.partition(-r, take - 1, axis=1)[:, :take] if take < n else r
        out[s : s + chunk, :take] = -np.sort(-top, axis=1)[:, :take]
    return out


def ndcg_at_k(rel: np.ndarray, ideal: np.ndarray, k: int | None = None) -> np.ndarray:
    """nDCG = DCG / IDCG with IDCG from :func:`ideal_relevance`; 0 where IDCG = 0.

    >>> ndcg_at_k(np.array([[1, 2]]), np.array([[2, 1]])).round(4).tolist()
    [0.7967]
    """
    k = np.asarray(rel).shape[1] if k is None else k
    dcg, idcg = dcg_at_k(rel, k), dcg_at_k(ideal, k)
    ndcg: np.ndarray = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return ndcg


def precision_curve(rel: np.ndarray, k_max: int | None = None) -> np.ndarray:
    """Q x k_max matrix; column k-1 is precision@k.

    >>> precision_curve(np.array([[1, 0, 1, 0]])).tolist()
    [[1.0, 0.5, 0.6666666666666666, 0.5]]
    """
    r = _at(rel, k_max)
    return np.cumsum(r > 0, axis=1) / np.arange(1, r.shape[1] + 1)


def acg_curve(rel: np.ndarray, n_pos: np.ndarray | None, k_max: int | None = None) -> np.ndarray:
    """Q x k_max matrix; column k-1 is ACG@k (normalised unless ``n_pos`` is None).

    >>> acg_curve(np.array([[2, 0]]), np.array([2])).tolist()
    [[1.0, 0.5]]
    """
    r = _at(rel, k_max)
    c = np.cumsum(r, axis=1) / np.arange(1, r.shape[1] + 1)
    return c if n_pos is None else c / np.asarray(n_pos, dtype=np.float64)[:, None]


def ndcg_curve(rel: np.ndarray, ideal: np.ndarray, k_max: int | None = None) -> np.ndarray:
    """Q x k_max matrix; column k-1 is nDCG@k (the ideal prefix of length k is the ideal at k).

    >>> ndcg_curve(np.array([[1, 2]]), np.array([[2, 1]])).round(4).tolist()
    [[0.3333, 0.7967]]
    """
    r = _at(rel, k_max)
    i = _at(ideal, r.shape[1])
    d = _discount(r.shape[1])
    dcg = np.cumsum((np.exp2(r) - 1.0) * d, axis=1)
    idcg = np.cumsum((np.exp2(i) - 1.0) * d, axis=1)
    ndcg: np.ndarray = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return ndcg


class Interval(NamedTuple):
    """A mean with its percentile-bootstrap interval."""

    mean: float
    lo: float
    hi: float


class Paired(NamedTuple):
    """Mean difference A - B over the same queries, its interval, and P(A > B) over resamples."""

    diff: float
    lo: float
    hi: float
    frac_a_better: float


def _resample_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // max(n, 1))  # bound memory: at most ~2M indices at once
    for s in range(0, n_boot, step):
        idx = rng.integers(0, n, size=(min(step, n_boot - s), n))
        means[s : s + idx.shape[0]] = values[idx].mean(axis=1)
    return means


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of per-query values with a seeded percentile bootstrap interval (nan when empty).

    >>> m, lo, hi = bootstrap_ci(np.array([0.0, 1.0, 1.0, 1.0]), seed=1)
    >>> m, lo <= m <= hi
    (0.75, True)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    means = _resample_means(v, n_boot, seed)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return Interval(float(v.mean()), float(lo), float(hi))


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Paired:
    """Compare methods A and B scored on the same queries (resampling queries, seeded).

    >>> p = paired_bootstrap(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]))
    >>> p.diff, p.frac_a_better > 0.8
    (0.5, True)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        nan = float("nan")
        return Paired(nan, nan, nan, nan)
    d = a - b
    means = _resample_means(d, n_boot, seed)
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [q, 1.0 - q])
    return Paired(float(d.mean()), float(lo), float(hi), float((means > 0).mean()))
