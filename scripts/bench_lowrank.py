"""In-process figures for the first passes over the codes (docs/method.md, "Exact answers from a
reduced-precision pass"): float32 against the low-rank pass at each rank, at N codes of each kind.

For each kind of codes: the start-up cost (the principal fit, the shared projection, the whole measured
choice and what it chose), then per kernel one query and a batch of 8 per pass (median of repeats),
and the exact rechecks per query for the top 10 and for N(q) at T (mean degree 50), over archive codes
as queries (each leaving itself out). Every decision is checked against float32's, which is exact.

Kinds: "noise4" (cxrneo.archive.synthetic over the full NIH table, noise 4: nearly isotropic), "like"
(Gaussian codes with the mean and covariance of a codes file, e.g. the shipped checkpoint's codes of
the sample: a real spectrum), "whitened" (those, whitened to --dim directions).

  nice python scripts/bench_lowrank.py --labels Data_Entry_2017_v2020.csv.gz --like sample-codes.npz
"""

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from cxrneo.archive.codes import load
from cxrneo.archive.synthetic import from_table
from cxrneo.graph import normalise, threshold_for_degree
from cxrneo.retrieval.fastest import Directions, Loaded, choose
from cxrneo.retrieval.lowrank import LowRankKernel, family
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.scan import Fp32Kernel, Kernel
from cxrneo.whiten import Spectrum


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), platform.processor())


def like(path: Path, n: int, seed: int) -> np.ndarray:
    """n unit codes drawn from a Gaussian with the mean and covariance of the unit codes in `path`."""
    x = normalise(load(path).codes).astype(np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    scale = s / np.sqrt(len(x) - 1)
    rng = np.random.default_rng(seed)
    out = np.empty((n, x.shape[1]), np.float32)
    for i in range(0, n, 8192):
        m = min(8192, n - i)
        out[i : i + m] = normalise(mean + (rng.standard_normal((m, scale.size)) * scale) @ vt)
    return out


def median_seconds(kernel: Kernel, q: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        kernel(q)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def rechecks(kernel: Kernel, codes: np.ndarray, rows: np.ndarray, t: float) -> tuple[float, float, bool]:
    """Mean exact values per query for the top 10, and for N(q) at t; and whether every decision matched."""
    q = np.ascontiguousarray(codes[rows].T)
    p, ref = kernel(q), Fp32Kernel(codes)(q)
    top, least, same = [], [], True
    for j, row in enumerate(rows.tolist()):
        cos, exact = p.cosines(codes, q[:, j], j), ref.cosines(codes, q[:, j], j)
        a, b = cos.top(10, str, np.array([row])), exact.top(10, str, np.array([row]))
        top.append(cos.computed)
        fresh = p.cosines(codes, q[:, j], j)
        same &= np.array_equal(a, b) and np.array_equal(fresh.at_least(t), exact.at_least(t))
        least.append(fresh.computed)
    return float(np.mean(top)), float(np.mean(least)), same


def report(name: str, codes: np.ndarray, whitened: np.ndarray | None, queries: int, repeats: int) -> None:
    n = len(codes)
    t = threshold_for_degree(codes, 50)
    print(f"\n== {name}: {n:,} codes x {codes.shape[1]}, T = {t:.4f} (mean degree 50)", flush=True)
    start = time.perf_counter()
    principal = Principal.fit(codes, n)
    fit = time.perf_counter() - start
    assert principal is not None
    print("root mean square left-over outside rank D:",
          ", ".join(f"{d}: {principal.left_over(d):.3f}" for d in (16, 32, 64, 128)))
    start = time.perf_counter()
    chosen = choose(Loaded(codes, codes, t, Directions(lambda: principal, whitened)), "auto")
    print(f"start-up: principal fit {fit:.2f} s; measured choice {time.perf_counter() - start:.2f} s -> {chosen.summary()}")
    rows_p = whitened if whitened is not None else principal.basis(128)
    dims = [whitened.shape[0]] if whitened is not None else [16, 32, 64, 128]
    start = time.perf_counter()
    low = family(codes, rows_p, dims)
    print(f"projections for ranks {[k.dim for k in low]}: {time.perf_counter() - start:.2f} s")
    kernels: list[Kernel] = [Fp32Kernel(codes), *(k.compact() for k in low)]
    rows = np.random.default_rng(1).choice(n, queries, replace=False)
    q1, q8 = np.ascontiguousarray(codes[rows[:1]].T), np.ascontiguousarray(codes[rows[:8]].T)
    print(f"{'kernel':<13} {'1 query':>9} {'8 queries':>10} {'rest p50':>9} {'rechecks top-10':>16} {'N(q)':>7} same")
    for k in kernels:
        rest = f"{np.median(k.rest.values):.4f}" if isinstance(k, LowRankKernel) else "-"
        top, least, same = rechecks(k, codes, rows, t)
        print(f"{k.name:<13} {median_seconds(k, q1, repeats) * 1e3:7.2f} ms {median_seconds(k, q8, repeats) * 1e3:7.2f} ms "
              f"{rest:>9} {top:16.1f} {least:7.1f} {same}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, help="the full NIH label table (noise-4 synthetic codes)")
    ap.add_argument("--like", type=Path, help="a codes file whose mean and covariance the 'like' codes follow")
    ap.add_argument("--n", type=int, default=112_120)
    ap.add_argument("--dim", type=int, default=64, help="whitened rank of the 'whitened' codes")
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (the service's default is 1)")
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; "
          f"BLAS threads {args.threads}")
    with threadpool_limits(args.threads, "blas"):
        if args.labels:
            report("noise 4", from_table(args.labels, args.n, noise=4.0).codes, None, args.queries, args.repeats)
        if args.like:
            codes = like(args.like, args.n, seed=0)
            report(f"like {args.like.name}", codes, None, args.queries, args.repeats)
            w = Spectrum.of(codes[:20_000]).whitening(args.dim, 0.1)
            report(f"like {args.like.name}, whitened to {w.dim}", w.apply(codes), np.ascontiguousarray(w.basis.T),
                   args.queries, args.repeats)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
