"""What would take over from the exact scan: approximate candidates (FAISS IVF or HNSW) + the exact recheck.

For a codes file (e.g. the 112,120 synthetic codes of scripts/bench_serve.py): the exact answer
(exact float64 cosines, `Cosines.exact_all`) for QUERIES stored codes plus noise, then for each
index and setting the time per query (one thread, one query at a time: the candidates, then exact
cosines of those candidates, as `Cosines` would compute them) and its recall against the exact
answer: of the top k (recall@k) and of N(q) = {cosine >= T} at the graph's threshold T. Beside it,
one exact pass (float32 and, where torch has it, bfloat16) over the same codes in the same run.

  nice python scripts/bench_ann.py CODES.npz --threshold 0.1533 [--queries 200] [--k 10]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from cxrneo.archive.codes import load
from cxrneo.graph import normalise
from cxrneo.retrieval.cosines import exact_dot
from cxrneo.retrieval.scan import Fp32Kernel, first_pass


def exact_answers(x: np.ndarray, q: np.ndarray, k: int, t: float) -> tuple[list[set[int]], list[set[int]]]:
    """The exact top k and N(q) of each query, as the service decides them (float32 pass + exact recheck)."""
    tops, nqs = [], []
    kernel = Fp32Kernel(x)
    for v in q:
        cos = first_pass(kernel, x, v)
        tops.append(set(cos.top(k, str).tolist()))
        nqs.append(set(cos.at_least(t).tolist()))
    return tops, nqs


def score(x: np.ndarray, q: np.ndarray, cand: np.ndarray, k: int, t: float,
          tops: list[set[int]], nqs: list[set[int]]) -> tuple[float, float]:
    """Recall@k and recall of N(q) when the candidates get exact cosines (the recheck)."""
    hit_k = hit_n = total_n = 0
    for j, v in enumerate(q):
        c = cand[j][cand[j] >= 0]
        e = exact_dot(x, c, v.astype(np.float64))
        hit_k += len(set(c[np.argsort(-e, kind="stable")[:k]].tolist()) & tops[j])
        hit_n += len(set(c[e >= t].tolist()) & nqs[j])
        total_n += len(nqs[j])
    return hit_k / (k * len(q)), hit_n / max(total_n, 1)


def per_query_ms(search: "object", q: np.ndarray, c: int, x: np.ndarray) -> tuple[float, np.ndarray]:
    out = np.empty((len(q), c), np.int64)
    t = time.perf_counter()
    for j, v in enumerate(q):
        _, idx = search.search(v[None, :], c)  # type: ignore[attr-defined]
        out[j] = idx[0]
        exact_dot(x, idx[0][idx[0] >= 0], v.astype(np.float64))
    return (time.perf_counter() - t) / len(q) * 1e3, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("codes", type=Path)
    ap.add_argument("--threshold", type=float, required=True, help="the graph's T")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=400, help="candidates per query given the exact recheck")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    codes = load(args.codes)
    x = normalise(codes.codes)
    n, d = x.shape
    rng = np.random.default_rng(args.seed)
    base = x[rng.choice(n, args.queries, replace=False)]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    q = normalise(base + args.noise * noise / np.linalg.norm(noise, axis=1, keepdims=True))
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {n} codes x {d}, "
          f"{args.queries} new-code queries, k={args.k}, T={args.threshold}, {args.candidates} candidates, one thread")
    tops, nqs = exact_answers(x, q, args.k, args.threshold)
    print(f"N(q): mean {np.mean([len(s) for s in nqs]):.1f}, max {max(len(s) for s in nqs)}")

    fp32 = Fp32Kernel(x)
    t = time.perf_counter()
    for v in q[:50]:
        fp32(v[:, None])
    print(f"| exact float32 pass | — | {(time.perf_counter() - t) / 50 * 1e3:.1f} ms | 1.000 | 1.000 |")
    try:
        import torch

        from cxrneo.embed.kernels import Bf16Kernel

        torch.set_num_threads(1)
        bf = Bf16Kernel(x)
        t = time.perf_counter()
        for v in q[:50]:
            bf(v[:, None])
        print(f"| exact bfloat16 pass | — | {(time.perf_counter() - t) / 50 * 1e3:.1f} ms | 1.000 | 1.000 |")
    except ImportError:
        pass

    print("\n| index | build s | ms per query (candidates + recheck) | recall@k | recall of N(q) |\n|---|---|---|---|---|")
    for nlist in (1024,):
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(x[rng.choice(n, min(n, 50 * nlist), replace=False)])
        ivf.add(x)
        built = time.perf_counter() - t
        for nprobe in (4, 16, 64):
            ivf.nprobe = nprobe
            ms, cand = per_query_ms(ivf, q, args.candidates, x)
            rk, rn = score(x, q, cand, args.k, args.threshold, tops, nqs)
            print(f"| IVF-Flat nlist {nlist}, nprobe {nprobe} | {built:.0f} | {ms:.2f} | {rk:.3f} | {rn:.3f} |", flush=True)
    t = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 64
    hnsw.add(x)
    built = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    for ef in (args.candidates, 2 * args.candidates, 4 * args.candidates):
        hnsw.hnsw.efSearch = ef
        ms, cand = per_query_ms(hnsw, q, args.candidates, x)
        rk, rn = score(x, q, cand, args.k, args.threshold, tops, nqs)
        print(f"| HNSW M 32, efSearch {ef} | {built:.0f} (2 threads) | {ms:.2f} | {rk:.3f} | {rn:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
