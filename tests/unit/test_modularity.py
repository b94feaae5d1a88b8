"""The gain formulas of Algorithm 2 against weighted modularity computed from scratch."""


import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle import q_from_scratch

from cxrneo.retrieval.modularity import community_term, fine_lambda, join_gains, merge_gain


def test_lambda_and_term_by_hand() -> None:
    # a triangle: n=3, l=3 -> density 1 -> λ = 2; in a graph of 7 edges with d=9:
    # q = 3/7 - (9/14)^2 = 84/196 - 81/196 = 3/196, λq = 6/196
    assert fine_lambda(3, 3) == 2.0
    assert fine_lambda(1, 0) == 1.0
    assert abs(community_term(3, 3, 9, 7) - 6 / 196) < 1e-15


def test_merge_gain_by_hand() -> None:
    # R = {q}: n=1, l=0, d=2; c: n=3, l=3, d=9 (augmented); e(R,c)=2; L' = 7.
    # R∪c: n=4, l=5, d=11: λ = 1 + 10/12 = 11/6, q = 5/7 - (11/14)^2 = 19/196 -> 209/1176
    # R: -(2/14)^2 = -1/49 = -24/1176; c: 6/196 = 36/1176
    # ΔQ = 209/1176 + 24/1176 - 36/1176 = 197/1176
    assert abs(merge_gain((1, 0, 2), (3, 3, 9), 2, 7) - 197 / 1176) < 1e-15


def test_join_gains_by_hand() -> None:
    # G_s has 5 edges; R = {q}: n=1, l=0, d=2. j=a: e=1, d=3; j=c: e=0, d=2.
    # a: λ = 1 + 2/2 = 2, q = 1/5 - (5/10)^2 = -1/20 -> -1/10; minus λ_R q_R = -(2/10)^2 = -1/25;
    #    minus q_a = -(3/10)^2 = -9/100 -> ΔQ = -10/100 + 4/100 + 9/100 = 3/100
    # c: λ = 1, q = 0 - (4/10)^2 = -16/100; ΔQ = -16/100 + 4/100 + 4/100 = -8/100
    got = join_gains(1, 0, 2, np.array([1, 0]), np.array([3, 2]), 5)
    assert np.allclose(got, [0.03, -0.08], atol=1e-15)


graphs = st.integers(3, 9).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1]), min_size=1
        ),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(graphs, st.data())
def test_merge_gain_is_q_difference(
    g: tuple[int, set[tuple[int, int]], list[int]], data: st.DataObject
) -> None:
    n, edges, part = g
    label: dict[int, object] = dict(enumerate(part))
    a, b = data.draw(st.sampled_from(sorted(set(part)))), data.draw(st.sampled_from(sorted(set(part))))
    assume(a != b)  # a merge needs two different communities
    ra = {v for v in range(n) if part[v] == a}
    rb = {v for v in range(n) if part[v] == b}

    def stats(s: set[int]) -> tuple[int, int, int]:
        return (
            len(s),
            sum(1 for x, y in edges if x in s and y in s),
            sum((x in s) + (y in s) for x, y in edges),
        )

    e_ab = sum(1 for x, y in edges if (x in ra and y in rb) or (x in rb and y in ra))
    after = {v: ("m" if v in ra | rb else lab) for v, lab in label.items()}
    exact = q_from_scratch(edges, after) - q_from_scratch(edges, label)
    assert abs(merge_gain(stats(ra), stats(rb), e_ab, len(edges)) - float(exact)) < 1e-12


@settings(max_examples=150, deadline=None)
@given(graphs, st.data())
def test_join_gain_is_q_difference(
    g: tuple[int, set[tuple[int, int]], list[int]], data: st.DataObject
) -> None:
    n, edges, _ = g
    r = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    label: dict[int, object] = {v: ("R" if v in r else v) for v in range(n)}
    rest = sorted(set(range(n)) - r)
    n_r = len(r)
    l_r = sum(1 for x, y in edges if x in r and y in r)
    d_r = sum((x in r) + (y in r) for x, y in edges)
    e_j = np.array([sum(1 for x, y in edges if (x == j and y in r) or (y == j and x in r)) for j in rest])
    d_j = np.array([sum((x == j) + (y == j) for x, y in edges) for j in rest])
    got = join_gains(n_r, l_r, d_r, e_j, d_j, len(edges))
    for j, gain in zip(rest, got, strict=True):
        exact = q_from_scratch(edges, {**label, j: "R"}) - q_from_scratch(edges, label)
        assert abs(gain - float(exact)) < 1e-12
