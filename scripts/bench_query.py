"""Benchmark per-query retrieval latency (no CNN forward pass): every method of the registry vs exact kNN.

Synthetic label-faithful codes (cxrneo.archive.synthetic over the NIH table), exact edges at the T of a
target mean degree, Louvain communities (networkx, in memory), then the same random stored
queries (self excluded) through every method, interleaved, in one run. A first pass fills the
community block cache and builds diffusion's sparse walk once ("cold" times are printed too), the
second pass is timed.
With --neo4j (needs an EMPTY database; it is emptied again afterwards) a smaller graph is also
ingested and queried through the stored graph (StoredGraph, as `cxrneo query` and `cxrneo serve`
read it), and diffusion through GDS (gds.pageRank.stream on a kept projection, seeds N(q), top K)
is timed on it. The service under concurrent clients: scripts/bench_serve.py.

  nice python scripts/bench_query.py --n 50000 --queries 200
  python scripts/bench_query.py --noise 4 --mean-degree 50 --methods knn,diffusion --cache g112k.npz
"""

import argparse
import os
import platform
import time

import numpy as np

from cxrneo.archive.synthetic import from_table
from cxrneo.graph import Edges, normalise, similarity_edges, threshold_for_degree
from cxrneo.retrieval import METHODS, MemoryGraph, Retriever
from cxrneo.retrieval.question import Question

# NIH ChestX-ray14's full label table (112,120 rows, published by NIH with the data set; not in
# this repository). --labels or CXRNEO_NIH_LABELS gives its place.
LABELS_HELP = "NIH Data_Entry_2017_v2020.csv(.gz), the full label table (default: $CXRNEO_NIH_LABELS)"


def timed(label: str, fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    print(f"{label:<40} {time.perf_counter() - t:8.2f} s", flush=True)
    return out


def louvain(n: int, edges, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(edges.src.tolist(), edges.dst.tolist(), strict=True))
    com = np.empty(n, np.int64)
    for c, members in enumerate(nx.community.louvain_communities(g, seed=seed)):
        com[list(members)] = c
    return com


def measure(run, queries: list[int], ids: list[str], methods: tuple[str, ...] = METHODS):  # type: ignore[no-untyped-def]
    """Cold (first pass) and warm (second pass) seconds per query for every method, interleaved."""
    times: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in methods}
    n = len(methods)
    for p in (0, 1):
        for i, row in enumerate(queries):
            for m in methods[i % n :] + methods[: i % n]:  # rotate the order between queries
                t = time.perf_counter()
                run(row, m, frozenset({ids[row]}))
                times[m][p].append(time.perf_counter() - t)
    return times


def report(title: str, times: dict[str, tuple[list[float], list[float]]]) -> None:
    cols = ("warm p50 ms", "warm p95 ms", "cold p50 ms", "cold p95 ms")
    print(f"\n{title}\n{'method':<10} " + " ".join(f"{c:>12}" for c in cols))
    for m, (cold, warm) in times.items():
        c, w = np.array(cold) * 1e3, np.array(warm) * 1e3
        cells = (np.median(w), np.percentile(w, 95), np.median(c), np.percentile(c, 95))
        print(f"{m:<10} " + " ".join(f"{v:12.2f}" for v in cells))
    knn = np.median(times["knn"][1])
    for m in times:
        if m != "knn":
            print(f"{m} warm p50 / knn warm p50 = {np.median(times[m][1]) / knn:.2f}")


def graph(labels: str, n: int, mean_degree: float, seed: int, noise: float = 1.0, cache: str | None = None):  # type: ignore[no-untyped-def]
    """Codes, unit codes, edges, communities and T; with `cache`, the edges and communities are kept
    in (or read from) that .npz file (the codes are drawn again: the same seed gives the same codes)."""
    codes = timed(f"synthetic codes (N={n}, noise {noise})", from_table, labels, n, noise, seed)
    unit = normalise(codes.codes)
    key = np.array([n, mean_degree, seed, noise], np.float64)
    if cache and os.path.exists(cache) and np.array_equal(np.load(cache)["key"], key):
        kept = np.load(cache)
        t, com = float(kept["t"]), kept["com"]
        edges = Edges(kept["src"], kept["dst"], kept["cosine"])
        print(f"edges and communities from {cache}")
    else:
        t = timed("threshold for mean degree", threshold_for_degree, unit, mean_degree, 1000, seed)
        edges = timed("exact edges (FAISS)", similarity_edges, unit, t)
        com = timed("Louvain (networkx)", louvain, n, edges, seed)
        if cache:
            np.savez(cache, key=key, t=t, com=com, src=edges.src, dst=edges.dst, cosine=edges.cosine)
    sizes = np.bincount(com)
    print(
        f"T={t:.4f} edges={len(edges)} mean degree={2 * len(edges) / n:.1f} communities={sizes.size} "
        f"size median={np.median(sizes):.0f} max={sizes.max()}"
    )
    return codes, unit, edges, com, t


def gds_query(db, unit: np.ndarray, ids: list[str], row: int, t: float, k: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from cxrneo.retrieval.diffusion import DiffusionParams
    from tests import gds_diffusion  # the GDS cross-check (run from the repository root)

    seeds = [ids[i] for i in np.flatnonzero(unit @ unit[row] >= np.float32(t))]
    return gds_diffusion.personalized_pagerank(db, seeds, DiffusionParams(seed_weights="uniform", scope="graph"),
                                               limit=k + 1)


def neo4j_bench(args: argparse.Namespace) -> None:
    from cxrneo.db.communities import detect
    from cxrneo.db.connection import Database
    from cxrneo.db.ingest import ingest
    from cxrneo.db.stored import StoredGraph
    from cxrneo.settings import Settings
    from tests import gds_diffusion  # the GDS cross-check (run from the repository root)

    codes, unit, edges, _, t = graph(args.labels, args.neo4j_n, args.mean_degree, args.seed, args.noise)
    with Database.connect(Settings()) as db:
        if db.read("count_graph")[0]["nodes"]:
            print("\nNeo4j: the database is not empty; skipped (this benchmark wipes what it writes)")
            return
        try:
            timed("Neo4j ingest", ingest, db, codes, edges, t)
            timed("Neo4j Louvain (GDS)", detect, db)
            g = StoredGraph(db, None)  # no local snapshot: read once from Neo4j
            timed("Neo4j read graph + stats", g.retriever)
            retr = g.retriever()
            queries = (
                np.random.default_rng(args.seed).choice(len(codes), args.queries, replace=False).tolist()
            )
            ids = codes.ids
            times = measure(lambda r, m, ex: retr.query(retr.code_of(ids[r]), Question(args.k, m, exclude=ex)), queries, ids)
            times["gds-diffusion"] = measure(lambda r, m, ex: gds_query(db, unit, ids, r, t, args.k), queries, ids,
                                             ("gds",))["gds"]
            report(f"StoredGraph, N={len(ids)} (retrieval on the graph read from Neo4j; "
                   "gds-diffusion: N(q) by numpy, then gds.pageRank.stream top K)", times)
        finally:
            gds_diffusion.drop(db)
            db.auto("delete_everything")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=112_120)
    ap.add_argument("--labels", default=os.environ.get("CXRNEO_NIH_LABELS"), help=LABELS_HELP)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mean-degree", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=1.0, help="noise of the synthetic codes (cxrneo synth)")
    ap.add_argument(
        "--neo4j", action="store_true", help="also benchmark the stored graph and GDS diffusion (needs an empty database)"
    )
    ap.add_argument("--neo4j-n", type=int, default=3000)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods to time (knn always)")
    ap.add_argument("--cache", help="keep the in-memory graph's edges and communities in this .npz (Louvain is slow)")
    args = ap.parse_args()
    if not args.labels:
        ap.error("give --labels (or CXRNEO_NIH_LABELS): " + LABELS_HELP)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; numpy {np.__version__}")
    codes, unit, edges, com, t = graph(args.labels, args.n, args.mean_degree, args.seed, args.noise, args.cache)
    ids = codes.ids
    methods = tuple(dict.fromkeys(["knn", *[m for m in args.methods.split(",") if m]]))
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}: use {', '.join(METHODS)}")
    retr = timed(
        "MemoryGraph + Retriever", lambda: Retriever(MemoryGraph.build(ids, edges, com), unit, ids, t)
    )
    queries = np.random.default_rng(args.seed).choice(len(ids), args.queries, replace=False).tolist()
    dq = [int((unit @ unit[r] >= np.float32(t)).sum()) - 1 for r in queries[:50]]
    print(f"query degree d_q (self excluded) median={np.median(dq):.0f} max={max(dq)}")
    report(
        f"in memory, N={len(ids)}, K={args.k}, {args.queries} queries",
        measure(lambda r, m, ex: retr.query(unit[r], Question(args.k, m, exclude=ex)), queries, ids, methods),
    )
    if args.neo4j:
        neo4j_bench(args)


if __name__ == "__main__":
    main()
