"""Benchmark the graph build (edges, ingest, Louvain) on synthetic codes, with baselines.

WIPES the database it is pointed at. Usage:
  nice python scripts/bench_build.py --n 20000 --mean-degree 50
"""

import argparse
import logging
import os
import time

import numpy as np

from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import _grouped_rows, _source_batches, ingest, oriented
from cxrneo.graph import degree_stats, edges_numpy, normalise, similarity_edges, threshold_for_degree
from cxrneo.settings import Settings
from cxrneo.synthetic import from_table

# NIH ChestX-ray14's full label table (112,120 rows, published by NIH with the data set; not in
# this repository). --labels or CXRNEO_NIH_LABELS gives its place.
LABELS_HELP = "NIH Data_Entry_2017_v2020.csv(.gz), the full label table (default: $CXRNEO_NIH_LABELS)"


def timed(label: str, fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    dt = time.perf_counter() - t
    print(f"{label:<44} {dt:8.2f} s", flush=True)
    return out, dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=112_120)
    p.add_argument("--labels", default=os.environ.get("CXRNEO_NIH_LABELS"), help=LABELS_HELP)
    p.add_argument("--mean-degree", type=float, default=50)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--baseline-n", type=int, default=10_000, help="subset for the numpy edge baseline")
    p.add_argument("--merge-edges", type=int, default=100_000, help="edges for the MERGE measurement")
    p.add_argument("--skip-louvain4", action="store_true")
    a = p.parse_args()
    if not a.labels:
        p.error("give --labels (or CXRNEO_NIH_LABELS): " + LABELS_HELP)
    logging.getLogger("neo4j").setLevel(logging.ERROR)

    codes, _ = timed(f"synthesise {a.n} codes", from_table, a.labels, a.n, a.noise)
    unit = normalise(codes.codes)
    t, _ = timed("threshold_for_degree", threshold_for_degree, unit, a.mean_degree)
    edges, t_edges = timed("edges: FAISS range search (all N)", similarity_edges, unit, t)
    st = degree_stats(len(codes), edges, t)
    print(f"T={t:.5f} edges={st.edges} mean_degree={st.mean_degree:.2f} max={st.max_degree} "
          f"isolated={st.isolated}")
    m = min(a.baseline_n, a.n)
    _, tf = timed(f"edges: FAISS on first {m} rows", similarity_edges, unit[:m], t)
    _, tn = timed(f"edges: numpy blocked matmul, first {m} rows", edges_numpy, unit[:m], t)
    print(f"edge speed-up FAISS vs numpy at n={m}: {tn / tf:.2f}x")

    with Database.connect(Settings()) as db:
        timed("wipe database", lambda: db.auto("delete_everything"))
        rep, t_ing = timed("ingest (fresh: CREATE path)", ingest, db, codes, edges, t)
        print(f"ingest: nodes {rep.nodes} in {rep.node_seconds:.1f} s, edges {rep.edges}, "
              f"edge phase {rep.edge_seconds:.1f} s, "
              f"{rep.rel_per_s:,.0f} rel/s; whole ingest {rep.edges / t_ing:,.0f} rel/s")
        rep2, _ = timed("ingest again (no-op)", ingest, db, codes, edges, t)
        print(f"repeat: changed={rep2.changed} generation={rep2.generation} skipped={rep2.sources_skipped}")

        c1, _ = timed("communities, concurrency 1", detect, db, 1, False)
        print(f"  {c1.communities} communities, Q={c1.modularity:.4f}, sizes min/median/max "
              f"{c1.size_min}/{c1.size_median}/{c1.size_max}, top {c1.top_sizes[:5]}, "
              f"louvain {c1.louvain_seconds:.1f} s")
        if not a.skip_louvain4:
            c4, _ = timed("communities, concurrency 4", detect, db, 4, False)
            print(f"  {c4.communities} communities, Q={c4.modularity:.4f}, "
                  f"louvain {c4.louvain_seconds:.1f} s")

        ids = codes.ids
        element = {r["id"]: r["element"] for r in db.read("match_image_element_ids")}
        eids = [element[x] for x in ids]
        sa, sb, sc, _ = oriented(ids, edges)
        k = min(a.merge_edges, len(sa))
        batches = [_grouped_rows(eids, sa[pos], sb[pos], sc[pos])
                   for pos in _source_batches(sa, np.arange(k), 10_000)]

        def merge_all() -> None:
            for rows in batches:
                db.write("merge_similar_edges", rows=rows)

        def create_all() -> None:
            for rows in batches:
                db.write("create_similar_edges", rows=rows)

        def drop_edges() -> None:
            db.auto("delete_similar_edges")

        timed("delete all SIMILAR edges", drop_edges)
        _, t_m = timed(f"MERGE {k} absent edges, batches of 10k", merge_all)
        print(f"MERGE (absent edges): {k / t_m:,.0f} rel/s")
        _, t_m2 = timed(f"MERGE the same {k} edges again (present)", merge_all)
        print(f"MERGE (present edges): {k / t_m2:,.0f} rel/s")
        timed("delete all SIMILAR edges", drop_edges)
        _, t_c = timed(f"CREATE {k} edges, batches of 10k", create_all)
        print(f"CREATE: {k / t_c:,.0f} rel/s")
        base = [(ids[i], ids[j], c) for i, j, c in
                zip(sa[k:k + 500].tolist(), sb[k:k + 500].tolist(), sc[k:k + 500].tolist(), strict=True)]

        def per_row() -> None:
            for x, y, c in base:
                db.write("merge_similar_edge", a=x, b=y, cosine=c)

        if base:
            _, t_b = timed(f"baseline: {len(base)} edges, one transaction each", per_row)
            print(f"baseline per-row transactions by id: {len(base) / t_b:,.0f} rel/s")
        print(f"SUMMARY n={a.n} T={t:.5f} edges={st.edges} edges_s={t_edges:.1f} ingest_s={t_ing:.1f} "
              f"louvain1_s={c1.louvain_seconds:.1f} rel_per_s={rep.rel_per_s:,.0f}")


if __name__ == "__main__":
    main()
