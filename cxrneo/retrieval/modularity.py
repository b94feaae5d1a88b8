"""Weighted modularity terms (docs/method.md section 4) and the two gains of Algorithm 2 (section 5); pure."""

from collections.abc import Mapping

import numpy as np

from cxrneo.records import CommunityStats


def fine_lambda(n: int, l: int) -> float:  # noqa: E741 - the paper's name
    """λ = 1 + ζ with ζ = 2l / (n(n-1)), the edge density of the community (0 when n <= 1)."""
    return 1.0 + 2.0 * l / (n * (n - 1)) if n > 1 else 1.0


def community_term(n: int, l: int, d: int, total: int) -> float:  # noqa: E741
    """λ_u · q_u with q_u = l/L − (d/2L)², fine λ, in a graph of `total` edges."""
    return fine_lambda(n, l) * (l / total - (d / (2.0 * total)) ** 2)


def merge_gain(r: tuple[int, int, int], c: tuple[int, int, int], e_rc: int, total: int) -> float:
    """Step 2a (Eq. 10–13, exact augmented terms): gain of merging R and c, each given as
    (n, l, d) in the augmented graph of `total` = L + d_q edges; e_rc edges join them."""
    n_r, l_r, d_r = r
    n_c, l_c, d_c = c
    after = community_term(n_r + n_c, l_r + l_c + e_rc, d_r + d_c, total)
    return after - community_term(n_r, l_r, d_r, total) - community_term(n_c, l_c, d_c, total)


def join_gains(n_r: int, l_r: int, d_r: int, e_jr: np.ndarray, d_j: np.ndarray, total: int) -> np.ndarray:
    """Step 2b (Eq. 14–15): gain of moving each singleton j into R inside G_s.

    n_r, l_r, d_r: R's nodes, internal edges and degree sum in G_s; e_jr[j] edges from j to R;
    d_j[j] the degree of j in G_s; total = |E_s|. Returns float64 gains, one per j.
    """
    e = np.asarray(e_jr, dtype=np.float64)
    d = np.asarray(d_j, dtype=np.float64)
    two_e = 2.0 * total
    lam_after = 1.0 + 2.0 * (l_r + e) / (n_r * (n_r + 1))
    q_after = (l_r + e) / total - ((d_r + d) / two_e) ** 2
    q_single = -((d / two_e) ** 2)  # λ_j = 1, l_j = 0
    return lam_after * q_after - community_term(n_r, l_r, d_r, total) - q_single


def coarse_modularity(stats: Mapping[int, CommunityStats], edges: int) -> float:
    """Plain (coarse, λ = 1) modularity Q = Σ_u l_u/L − (d_u/2L)² of a partition's statistics."""
    if edges == 0:
        return 0.0
    return float(sum(s.l / edges - (s.d / (2.0 * edges)) ** 2 for s in stats.values()))
