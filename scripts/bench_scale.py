"""Measurements behind docs/scale.md: how edge cost grows with N, what approximate edges (FAISS IVF)
cost and recall against the exact ones, the GPU code path on this machine, Neo4j's bytes per image
and per edge, and GDS's own memory estimate of Louvain at 1 and 10 million images.

Usage (the store and Louvain figures need a Neo4j holding a cxrneo graph, e.g. after
scripts/bench_build.py; --no-db skips them):
  python scripts/bench_scale.py --labels Data_Entry_2017_v2020.csv.gz [--store-dir DIR]
"""

import argparse
import json
import os
import time
from pathlib import Path

from cxrneo.archive.synthetic import from_table
from cxrneo.graph import approximate_edges, edges_numpy, normalise, similarity_edges, threshold_for_degree

LABELS_HELP = "NIH Data_Entry_2017_v2020.csv(.gz), the full label table (default: $CXRNEO_NIH_LABELS)"


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def pairs(e) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return set(zip(e.src.tolist(), e.dst.tolist(), strict=True))


def store_bytes(store: Path) -> dict[str, int]:
    """Bytes of the database's store files, by kind (nodes, relationships, properties, indexes, logs)."""
    kinds = {"node": "nodes", "relationship": "relationships", "property": "properties", "schema": "indexes"}
    out: dict[str, int] = {}
    for f in store.rglob("*"):
        if not f.is_file() or "system" in f.parts:  # the system database is not the graph
            continue
        kind = next((v for k, v in kinds.items() if k in f.name), "other")
        if "transaction" in str(f) or f.name.startswith("neostore.transaction"):
            kind = "transaction logs"
        out[kind] = out.get(kind, 0) + f.stat().st_size
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--labels", default=os.environ.get("CXRNEO_NIH_LABELS"), help=LABELS_HELP)
    p.add_argument("--n", type=int, default=112_120)
    p.add_argument("--mean-degree", type=float, default=50)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--sizes", default="14015,28030,56060",
                   help="smaller N for the N^2 fit (the full N is added; empty: only the full N)")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", default="8,32", help="IVF cells visited per row (comma-separated; empty: skip)")
    p.add_argument("--store-dir", type=Path, help="the database folder of the Neo4j holding the graph")
    p.add_argument("--no-db", action="store_true")
    p.add_argument("--out", type=Path, default=Path("scale.json"))
    a = p.parse_args()
    if not a.labels:
        p.error("give --labels (or CXRNEO_NIH_LABELS): " + LABELS_HELP)
    report: dict[str, object] = {"n": a.n, "mean_degree": a.mean_degree, "noise": a.noise}

    unit = normalise(from_table(a.labels, a.n, a.noise).codes)
    t = threshold_for_degree(unit, a.mean_degree)
    print(f"N={a.n} d={unit.shape[1]} T={t:.5f}", flush=True)
    exact, t_exact = timed(similarity_edges, unit, t)
    print(f"exact edges, FAISS (all N): {len(exact)} edges in {t_exact:.1f} s", flush=True)
    growth = []
    for m in [int(s) for s in a.sizes.split(",") if s] + [a.n]:
        sub = unit[:m]
        e_f, t_f = (exact, t_exact) if m == a.n else timed(similarity_edges, sub, t)
        e_n, t_n = timed(edges_numpy, sub, t)
        assert pairs(e_f) == pairs(e_n), "numpy and FAISS edges differ"
        c_f, c_n = t_f / (m * m * unit.shape[1]), t_n / (m * m * unit.shape[1])
        growth.append({"n": m, "edges": len(e_f), "faiss_s": t_f, "numpy_s": t_n, "faiss_s_per_n2d": c_f, "numpy_s_per_n2d": c_n})
        print(f"  N={m}: {len(e_f)} edges; FAISS {t_f:.1f} s, numpy blocked matmul {t_n:.1f} s "
              f"(N^2 d constants {c_f:.3e} / {c_n:.3e} s)", flush=True)
    report["exact"] = growth

    want = pairs(exact)
    ann = []
    for nprobe in [int(s) for s in a.nprobe.split(",") if s]:
        e, dt = timed(approximate_edges, unit, t, a.nlist, nprobe)
        got = pairs(e)
        recall = len(got & want) / len(want)
        assert got <= want, "approximate edges must be a subset of the exact ones"
        ann.append({"nlist": a.nlist, "nprobe": nprobe, "seconds": dt, "edges": len(e), "recall": recall})
        print(f"IVF nlist {a.nlist} nprobe {nprobe}: {len(e)} edges in {dt:.1f} s, recall {recall:.4f} "
              f"({t_exact / dt:.2f}x faster than exact)", flush=True)
    report["approximate"] = ann

    try:
        import torch

        from cxrneo.embed.edges import device_edges

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        m = a.n if dev == "cuda" else min(a.n, 10_000)
        ref = exact if m == a.n else similarity_edges(unit[:m], t)
        got_e, dt = timed(device_edges, unit[:m], t, device=dev)
        same = pairs(got_e) == pairs(ref)
        name = torch.cuda.get_device_name(0) if dev == "cuda" else "CPU"
        report["device_edges"] = {"device": name, "n": m, "seconds": dt, "same_as_faiss": same}
        print(f"device_edges on {name}, N={m}: {dt:.1f} s, same edge set as FAISS: {same}", flush=True)
    except ImportError as e:
        print(f"device edges skipped: {e}")

    if not a.no_db:
        from cxrneo.db.connection import Database
        from cxrneo.settings import Settings

        with Database.connect(Settings()) as db:
            counts = db.read("count_graph")[0]
            report["graph"] = counts
            est = []
            for nodes, degree in ((a.n, a.mean_degree), (1_000_000, 50), (10_000_000, 50)):
                rels = int(nodes * degree)  # undirected: each edge twice in GDS's projection
                r = db.auto("estimate_louvain", nodeCount=nodes, relationshipCount=rels)[0]
                est.append({"nodes": nodes, "relationships": rels, **r})
                print(f"GDS Louvain estimate, {nodes} nodes, {rels} relationships: {r['requiredMemory']}", flush=True)
            report["louvain_estimate"] = est
        if a.store_dir is not None:
            sizes = store_bytes(a.store_dir)
            report["store_bytes"] = sizes
            n_nodes, n_edges = counts["nodes"], counts["edges"]
            print(f"store ({n_nodes} images, {n_edges} edges): "
                  + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in sorted(sizes.items())), flush=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(f"report: {a.out}")


if __name__ == "__main__":
    main()
