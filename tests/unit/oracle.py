"""An independent, exact (fractions) weighted modularity for tests: SPEC section 4 from scratch."""

from fractions import Fraction


def q_from_scratch(edges: set[tuple[int, int]], label: dict[int, object]) -> Fraction:
    """SPEC §4 fine weighted modularity Q = Σ_u λ_u (l_u/L − (d_u/2L)²), exactly."""
    total = len(edges)
    groups: dict[object, set[int]] = {}
    for node, lab in label.items():
        groups.setdefault(lab, set()).add(node)
    q = Fraction(0)
    for members in groups.values():
        n = len(members)
        l_u = sum(1 for a, b in edges if a in members and b in members)
        d_u = sum((a in members) + (b in members) for a, b in edges)
        lam = 1 + (Fraction(2 * l_u, n * (n - 1)) if n > 1 else 0)
        q += lam * (Fraction(l_u, total) - Fraction(d_u, 2 * total) ** 2)
    return q
