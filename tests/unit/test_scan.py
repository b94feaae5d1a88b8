"""BatchedScan: concurrent callers get exactly the numbers a lone call gets, in fewer passes."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cxrneo.retrieval.scan import BatchedScan, scan_one


def test_batches_equal_single_scans_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((20000, 64)).astype(np.float32)  # above BLAS small-matrix kernels
    queries = rng.standard_normal((40, 64)).astype(np.float32)
    scan = BatchedScan(codes, max_batch=16)
    start = threading.Barrier(8)

    def one(q: np.ndarray) -> np.ndarray:
        if scan.batches == 0:
            start.wait(5)  # the first eight calls arrive together
        return scan(q)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, queries))
    for q, sims in zip(queries, got, strict=True):
        assert np.array_equal(sims, scan_one(codes, q))
        assert np.allclose(sims, codes @ q, atol=1e-4)
    assert 1 <= scan.batches < len(queries)  # some calls shared a pass


def test_an_error_reaches_every_caller_and_the_scan_recovers() -> None:
    scan = BatchedScan(np.ones((10, 4), np.float32))
    try:
        scan(np.ones(3, np.float32))  # wrong width
    except ValueError:
        pass
    else:
        raise AssertionError("a wrong width must raise")
    assert np.array_equal(scan(np.ones(4, np.float32)), np.full(10, 4.0, np.float32))
