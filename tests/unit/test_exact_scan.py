"""A reduced-precision first pass never changes an answer: every method, strict or not, with
exclusions and filters, gives the same hits in the same order as exact float64 cosines, on random
and adversarial codes (exact ties, duplicates, cosines exactly at T and one float32 step below)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cxrneo.embed.kernels import Bf16Kernel, candidates
from cxrneo.graph import normalise, similarity_edges
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.cosines import Cosines, RowTerm, exact_dot
from cxrneo.retrieval.fastest import Directions, Loaded, choose
from cxrneo.retrieval.lowrank import family
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.question import Question
from cxrneo.retrieval.scan import BatchedScan, ExactKernel, Fp32Kernel, Kernel, Pass, first_pass, holds

N, D = 420, 32


class Hostile:
    """Every value as far from the exact one as a (deliberately wide) bound allows: low cosines pushed
    up and high ones down ("squeeze"), or each up or down at random ("shuffle"). With `per_row`, part of
    the bound is a per-row term (0 to 0.1 per row, so cuts must use each row's own)."""

    name = "hostile"

    def __init__(self, codes: np.ndarray, mode: str = "squeeze", base: float = 0.03, rel: float = 0.2,
                 per_row: bool = False) -> None:
        self.exact, self.mode, self.base, self.rel = ExactKernel(codes), mode, base, rel
        self.rng = np.random.default_rng(11)
        self.row = RowTerm.of(np.random.default_rng(12).uniform(0, 0.1, len(codes)) ** 2 * 10) if per_row else None

    def __call__(self, queries: np.ndarray) -> Pass:
        e = self.exact(queries).approx
        if self.mode == "squeeze":
            push = np.where(e < np.median(e, axis=0), 1.0, -1.0)
        else:
            push = self.rng.choice([-1.0, 1.0], e.shape)
        extra = 0.0 if self.row is None else self.row.values[:, None]
        # |a - e| = 0.99 (base + extra + rel |e|) / (1 + rel) <= base + extra + rel |a|, since |a| >= |e| - |a - e|
        a = e + push * 0.99 * (self.base + extra + self.rel * np.abs(e)) / (1 + self.rel)
        scale = None if self.row is None else np.ones(e.shape[1])
        return Pass(a, np.full(e.shape[1], self.base), self.rel, self.row, scale)


def _lowrank(codes: np.ndarray, dim: int = 8) -> Kernel:
    principal = Principal.fit(codes, len(codes))
    assert principal is not None
    return family(codes, principal.basis(dim), [dim])[0]


def _kernel(kind: str, codes: np.ndarray) -> Kernel:
    if kind == "bfloat16":
        return Bf16Kernel(codes)
    if kind == "float32":
        return Fp32Kernel(codes)
    if kind == "lowrank":
        return _lowrank(codes)
    mode, _, rows = kind.partition("-")
    return Hostile(codes, mode, per_row=rows == "rows")


def _world(seed: int) -> tuple[np.ndarray, list[str], float, list[np.ndarray]]:
    """Clustered unit codes with exact ties, duplicates and rows at and just below T for e_0."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, D))
    x = normalise(centres[rng.integers(0, 5, N)] + 0.8 * rng.standard_normal((N, D)))
    x[40:50] = x[30:40]  # exact duplicates
    base = x[60].copy()
    for i in range(61, 72):  # the same first value, the rest permuted: ties to e_0, distinct codes
        x[i] = base
        x[i, 1:] = rng.permutation(base[1:])
    t = float(x[60, 0])
    x[72] = x[61]
    x[72, 0] = np.nextafter(np.float32(t), np.float32(-1))  # one float32 step below T
    e0 = np.zeros(D, np.float32)
    e0[0] = 1.0
    queries = [e0, x[60].copy(), x[35].copy(), normalise(rng.standard_normal((1, D)))[0]]
    return x, [f"img{i:04d}" for i in range(N)], t, queries


def _retriever(codes: np.ndarray, ids: list[str], t: float, kernel: Kernel | None, batched: bool = False) -> Retriever:
    com = np.random.default_rng(1).integers(0, 12, len(ids))  # a coarse partition stands in for Louvain
    if kernel is None:
        scan = lambda q: first_pass(ExactKernel(codes), codes, q)  # noqa: E731
    elif batched:
        scan = BatchedScan(kernel, codes)
    else:
        scan = lambda q, k=kernel: first_pass(k, codes, q)  # type: ignore[misc]  # noqa: E731
    return Retriever(MemoryGraph.build(ids, similarity_edges(codes, t), com), codes, ids, t, scan=scan)


def _same(a: Retriever, b: Retriever, q: np.ndarray, k: int, method: Method, strict: bool,
          exclude: frozenset[str], allowed: np.ndarray | None) -> None:
    ga = a.grow(q, Question(k, method, strict, exclude, allowed))
    gb = b.grow(q, Question(k, method, strict, exclude, allowed))
    assert (ga.rows, ga.gains, ga.fallback, ga.stopped, ga.steps) == (gb.rows, gb.gains, gb.fallback, gb.stopped, gb.steps)
    assert a.query(q, Question(k, method, strict, exclude, allowed)) == b.query(q, Question(k, method, strict, exclude, allowed))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["bfloat16", "float32", "lowrank", "squeeze", "shuffle", "squeeze-rows",
                                  "shuffle-rows"])
def test_every_method_answers_as_exact_cosines(seed: int, kind: str) -> None:
    codes, ids, t, queries = _world(seed)
    kernel = _kernel(kind, codes)
    assert holds(kernel, codes)  # the kernel keeps its own bound (the hostile one only just)
    ref, fast = _retriever(codes, ids, t, None), _retriever(codes, ids, t, kernel, batched=seed == 1)
    nq = Cosines.exact_all(codes, queries[0]).at_least(t)
    assert 60 in nq and 61 in nq and 72 not in nq  # the probe really sits on T
    some = np.random.default_rng(seed).random(N) < 0.5
    few = np.zeros(N, bool)
    few[np.arange(0, N, 12)] = True  # 35 rows: the subset scan
    few[60:73] = True
    for q in queries:
        for method in Method:
            for strict in (False, True):
                for exclude in (frozenset(), frozenset(ids[30:72:3])):
                    for k in (1, 10, 40):
                        _same(ref, fast, q, k, method, strict, exclude, None)
                    for allowed in (some, few):
                        _same(ref, fast, q, 10, method, strict, exclude, allowed)


def test_concurrent_batches_answer_as_lone_queries() -> None:
    codes, ids, t, _ = _world(3)
    queries = codes[np.random.default_rng(3).choice(N, 48, replace=False)]
    ref, fast = _retriever(codes, ids, t, None), _retriever(codes, ids, t, Bf16Kernel(codes), batched=True)
    start = threading.Barrier(8)
    scan = fast.scan
    assert isinstance(scan, BatchedScan)

    def one(q: np.ndarray) -> list[object]:
        if scan.batches == 0:
            start.wait(5)  # the first eight calls arrive together
        return list(fast.query(q, Question(10, Method.COMMUNITY)))

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, queries))
    assert got == [list(ref.query(q, Question(10, Method.COMMUNITY))) for q in queries]
    assert 1 <= scan.batches < len(queries)  # some calls shared a pass


def test_the_bfloat16_bound_holds_on_hard_codes() -> None:
    rng = np.random.default_rng(5)
    d = 1024
    x = rng.standard_normal((3000, d)).astype(np.float32)
    x[:500] = 1e-3 * rng.standard_normal((500, d))  # nearly collinear: every cosine near 1
    x[:500, 0] = 1.0
    x[500:600] = rng.standard_normal((100, d)) * np.exp(rng.uniform(-30, 0, d))  # values down to subnormal bfloat16
    x = normalise(x)
    kernel = Bf16Kernel(x)
    assert holds(kernel, x, samples=3000, queries=16)
    q = np.ascontiguousarray(x[:8].T)
    p = kernel(q)
    exact = np.stack([exact_dot(x, np.arange(len(x)), q[:, j].astype(np.float64)) for j in range(8)], axis=1)
    slack = p.base + p.rel * np.abs(p.approx) - np.abs(exact - p.approx)
    assert slack.min() >= 0
    assert (np.abs(exact - p.approx) > 0).any()  # the pass really is approximate


def test_a_kernel_outside_its_bound_is_refused() -> None:
    codes = normalise(np.random.default_rng(6).standard_normal((500, 64)))

    class Liar(Fp32Kernel):
        def __call__(self, queries: np.ndarray) -> Pass:
            p = super().__call__(queries)
            return Pass(p.approx + 1e-3, p.base, p.rel)

    assert not holds(Liar(codes), codes)
    assert holds(Fp32Kernel(codes), codes)
    loaded = Loaded(codes, codes, 0.5, Directions(lambda: None))
    assert choose(loaded, "float32").kernel.name == "float32"
    assert choose(loaded, "bfloat16", candidates(codes, "bfloat16")).kernel.name == "bfloat16"
    assert choose(loaded, "bfloat16", {"bfloat16": lambda: Liar(codes)}).kernel.name == "float32"


def test_exact_values_do_not_depend_on_the_batch() -> None:
    rng = np.random.default_rng(8)
    x = normalise(rng.standard_normal((300, 1024)))
    q = x[7].astype(np.float64)
    together = exact_dot(x, np.arange(300), q)
    alone = np.array([exact_dot(x, np.array([i]), q)[0] for i in range(300)])
    assert np.array_equal(together, alone)
    assert np.array_equal(exact_dot(x, np.array([5, 3, 5]), q), together[[5, 3, 5]])


def test_an_error_reaches_every_caller_and_the_scan_recovers() -> None:
    codes = np.ones((10, 4), np.float32) / 2
    scan = BatchedScan(Fp32Kernel(codes), codes)
    with pytest.raises(ValueError):
        scan(np.ones(3, np.float32))  # wrong width
    assert np.array_equal(scan(np.full(4, 0.5, np.float32)).exact(np.arange(10)), np.ones(10))


def test_rows_read_from_the_codes_file_equal_the_mapped_rows(tmp_path: Path) -> None:
    from cxrneo.db.snapshot import RowFile, release, rows_of

    x = normalise(np.random.default_rng(9).standard_normal((50, 16)))
    np.save(tmp_path / "unit.npy", x)
    mapped = np.load(tmp_path / "unit.npy", mmap_mode="r")
    rows = rows_of(mapped)
    assert isinstance(rows, RowFile)
    pick = np.array([7, 0, 49, 7])
    assert np.array_equal(rows[pick], x[pick])
    release(mapped)  # pages dropped from this process; the values stay readable
    assert np.array_equal(np.asarray(mapped[pick]), x[pick])
    with pytest.raises(IndexError):
        rows[np.array([50])]
    assert rows_of(x) is x  # codes in memory are read as they are
    q = x[3].astype(np.float64)
    assert np.array_equal(exact_dot(rows, pick, q), exact_dot(x, pick, q))
