"""Benchmark the graph build (edges, ingest, Louvain) on synthetic codes, with baselines.

WIPES the database it is pointed at. Usage:
  python scripts/bench_build.py --labels Data_Entry_2017_v2020.csv.gz --n 112120 --mean-degree 50
"""

import argparse
import logging
import os
import time

import numpy as np

from cxrneo.archive.synthetic import from_table
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import EDGE_BATCH, WRITERS, _grouped_rows, _source_batches, _write_all, ingest, oriented
from cxrneo.graph import degree_stats, edges_numpy, normalise, similarity_edges, threshold_for_degree
from cxrneo.settings import Settings

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
    p.add_argument("--writers", type=int, default=WRITERS, help="transactions at once (cxrneo ingest --writers)")
    p.add_argument("--batch", type=int, default=EDGE_BATCH, help="edges per transaction (cxrneo ingest --batch)")
    p.add_argument("--baseline-n", type=int, default=10_000, help="subset for the numpy edge baseline")
    p.add_argument("--skip-baseline-ingest", action="store_true",
                   help="skip rewriting every edge at the old pace (1 writer, batches of 10,000)")
    a = p.parse_args()
    if not a.labels:
        p.error("give --labels (or CXRNEO_NIH_LABELS): " + LABELS_HELP)
    logging.getLogger("neo4j").setLevel(logging.ERROR)

    codes, _ = timed(f"synthesise {a.n} codes", from_table, a.labels, a.n, a.noise)
    unit = normalise(codes.codes)
    t, t_thr = timed("threshold_for_degree", threshold_for_degree, unit, a.mean_degree)
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
        rep, t_ing = timed(f"ingest (fresh, {a.writers} writers, batches of {a.batch})", ingest, db, codes, edges, t,
                           batch=a.batch, writers=a.writers)
        print(f"ingest: nodes {rep.nodes} in {rep.node_seconds:.1f} s ({rep.nodes / rep.node_seconds:,.0f} images/s), "
              f"edges {rep.edges}, edge phase {rep.edge_seconds:.1f} s = {rep.rel_per_s:,.0f} rel/s; "
              f"whole ingest {t_ing:.1f} s")
        rep2, _ = timed("ingest again (no-op)", ingest, db, codes, edges, t)
        print(f"repeat: changed={rep2.changed} generation={rep2.generation} skipped={rep2.sources_skipped}")
        c1, t_com = timed("communities, concurrency 1", detect, db, 1, False)
        print(f"  {c1.communities} communities, Q={c1.modularity:.4f}, sizes min/median/max "
              f"{c1.size_min}/{c1.size_median}/{c1.size_max}, top {c1.top_sizes[:5]}, "
              f"louvain {c1.louvain_seconds:.1f} s")
        build_s = t_thr + t_edges + t_ing + t_com
        print(f"whole build (T + edges + ingest + communities): {build_s:.1f} s = {build_s / 60:.1f} min")

        if not a.skip_baseline_ingest:  # both paces on the same store state: edges deleted, nodes kept
            ids = codes.ids
            element = {r["id"]: r["element"] for r in db.read("match_image_element_ids")}
            eids = [element[x] for x in ids]
            sa, sb, sc, _ = oriented(ids, edges)

            class _NoLease:
                def check(self) -> None: ...

            def rewrite(writers: int, batch: int) -> float:
                db.auto("delete_similar_edges")
                rows = ((len(pos), _grouped_rows(eids, sa[pos], sb[pos], sc[pos]))
                        for pos in _source_batches(sa, np.arange(len(sa)), batch))
                _, dt = timed(f"rewrite every edge, {writers} writer(s), batches of {batch}", _write_all,
                              lambda r: db.write("create_similar_edges", rows=r), rows, writers, _NoLease(),
                              lambda n: None)
                return len(sa) / dt

            old, new = rewrite(1, 10_000), rewrite(a.writers, a.batch)
            print(f"rewriting the edges of a loaded graph: old pace {old:,.0f} rel/s, now {new:,.0f} rel/s = "
                  f"{new / old:.2f}x; the fresh load above ran at {rep.rel_per_s:,.0f} rel/s")
        print(f"SUMMARY n={a.n} T={t:.5f} edges={st.edges} edges_s={t_edges:.1f} ingest_s={t_ing:.1f} "
              f"nodes_s={rep.node_seconds:.1f} edge_phase_s={rep.edge_seconds:.1f} rel_per_s={rep.rel_per_s:,.0f} "
              f"communities_s={t_com:.1f} louvain1_s={c1.louvain_seconds:.1f} build_s={build_s:.1f}")


if __name__ == "__main__":
    main()
