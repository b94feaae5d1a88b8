"""Choose diffusion's parameters on a validation split of DATABASE images (never the evaluation queries).

The split is `cxrneo evaluate`'s own (patient_split with the same seed, queries and db size);
its evaluation queries are dropped unseen. The database part is split again by patient into
validation queries and a validation database, whose graph (T for the target mean degree, exact
edges, networkx Louvain for the "communities" scope) answers the validation queries with kNN and
each parameter setting. Prints one Markdown row per setting: precision@10 and nDCG@10 (label set
nih, both scoring forms) and their paired differences against kNN.

  nice python scripts/tune_diffusion.py codes.npz --db-size 12000 --val 500 --grid stage1
"""

import argparse
import itertools
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cxrneo import labels as lsets
from cxrneo.archive import codes as codes_io
from cxrneo.evaluation import metrics as m
from cxrneo.evaluation.evaluate import louvain_in_memory, patient_split
from cxrneo.graph import normalise, similarity_edges, threshold_for_degree
from cxrneo.retrieval import MemoryGraph, Retriever
from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.diffusion import DiffusionParams, diffuse
from cxrneo.retrieval.question import Question

K = 10
# The plain values the sweep starts from (the library's defaults are the sweep's outcome, not these).
BASE = DiffusionParams(restart=0.5, iterations=10, weighting="unweighted", scope="graph", mix=0.5, seeds=None,
                       seed_weights="cosine", per_degree=False, pool=50)


def grid(name: str, best: DiffusionParams) -> list[DiffusionParams]:
    if name == "stage1":  # restart x mix, the rest at their plain values
        return [replace(BASE, restart=a, mix=b) for a, b in itertools.product((0.1, 0.3, 0.5, 0.7), (0.0, 0.25, 0.5, 0.75))]
    if name == "wide":  # restart x mix x per-degree x edge weighting
        return [replace(BASE, restart=a, mix=b, per_degree=c, weighting=w) for a, b, c, w in itertools.product(
            (0.1, 0.3, 0.5), (0.5, 0.6, 0.75, 0.9), (False, True), ("unweighted", "cosine"))]
    if name == "stage3":  # the communities scope: pool x mix x restart
        return [replace(BASE, scope="communities", pool=n, mix=b, restart=a) for n, b, a in itertools.product(
            (10, 50, 200), (0.6, 0.75, 0.85), (0.1, 0.3))]
    if name == "stage4":  # around the stage-3 choice
        v = best.__dict__
        return [best] + [DiffusionParams(**{**v, key: val}) for key, val in (
            ("mix", 0.9), ("mix", 0.95), ("weighting", "cosine"), ("iterations", 20), ("restart", 0.05),
            ("seed_weights", "uniform"),
        )]
    if name == "none":  # references only
        return []
    if name == "stage2":  # one change at a time around the stage-1 choice
        v = best.__dict__
        return [best] + [DiffusionParams(**{**v, key: val}) for key, val in (
            ("weighting", "cosine"), ("scope", "communities"), ("seeds", 10), ("seed_weights", "uniform"),
            ("iterations", 5), ("iterations", 20), ("restart", 0.05), ("mix", 0.8), ("mix", 0.7),
        )]
    raise SystemExit(f"unknown grid {name}")


Form = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # keep, query labels, db labels, ideal


def scores(res: np.ndarray, forms: dict[str, Form]) -> dict[str, np.ndarray]:
    """Per-query precision@K and nDCG@K in each form."""
    out = {}
    for form, (keep, lq, ld, ideal) in forms.items():
        rel = m.relevance(lq, ld, res[keep])
        out[f"p-{form}"] = m.precision_at_k(rel, K)
        out[f"n-{form}"] = m.ndcg_at_k(rel, ideal, K)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("codes", type=Path)
    ap.add_argument("--queries", type=int, default=1000, help="evaluate's query count (dropped unseen)")
    ap.add_argument("--db-size", type=int, default=12000)
    ap.add_argument("--mean-degree", type=float, default=50.0)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", default="stage1")
    ap.add_argument("--best", default="", help="an earlier stage's choice as key=value,... over BASE (stage2, stage4)")
    args = ap.parse_args()

    codes = codes_io.load(args.codes)
    db_rows, _ = patient_split(codes.images, args.queries, args.seed, args.db_size)  # queries: never used
    db = codes.subset(db_rows)
    base_rows, val_rows = patient_split(db.images, args.val, args.seed + 1)
    unit = normalise(db.codes)
    b_unit, v_unit = unit[base_rows], unit[val_rows]
    t0 = time.perf_counter()
    t = threshold_for_degree(b_unit, args.mean_degree, seed=args.seed)
    edges = similarity_edges(b_unit, t)
    base = db.subset(base_rows)
    community = louvain_in_memory(base, edges, t)
    ids = base.ids
    engine = Retriever(MemoryGraph.build(ids, edges, [int(c) for c in community]), b_unit, ids, t)
    print(f"validation: {len(base_rows)} db images, {len(val_rows)} queries, T = {t:.4f}, {len(edges)} edges, "
          f"{np.unique(community).size} communities; built in {time.perf_counter() - t0:.0f} s", flush=True)

    ls = lsets.get("nih")
    forms: dict[str, Form] = {}
    for form in ("positive", "no-finding"):
        nf = form == "no-finding"
        lq = lsets.matrix([db.images[i].labels for i in val_rows], ls, nf)
        ld = lsets.matrix([r.labels for r in base.images], ls, nf)
        keep = lq.sum(axis=1) > 0
        groups = np.arange(len(val_rows))  # no validation patient is in the validation database
        ideal = m.ideal_relevance(lq[keep], ld, K, groups[keep], np.full(len(ids), -1))
        forms[form] = (keep, lq[keep], ld, ideal)

    sims_all = v_unit @ b_unit.T
    knn = np.stack([Cosines.of(s).top(K, ids.__getitem__) for s in sims_all])
    ref = scores(knn, forms)
    head = ("| restart | iter | weighting | scope | seeds | seed w | per deg | mix | P@10 pos | nDCG pos | P@10 nf | nDCG nf "
            "| ΔP pos [95%] | ΔnDCG pos [95%] | ΔP nf [95%] | ΔnDCG nf [95%] | s |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    print(f"| kNN | | | | | | | | {ref['p-positive'].mean():.3f} | {ref['n-positive'].mean():.3f} | "
          f"{ref['p-no-finding'].mean():.3f} | {ref['n-no-finding'].mean():.3f} | | | | | |", flush=True)
    for name in ("hybrid", "community"):  # references on the same split: the other graph methods
        t1 = time.perf_counter()
        res = np.stack([np.array(engine.grow(v, Question(K, name)).rows) for v in v_unit])
        sc = scores(res, forms)
        cells = [_paired(sc[key], ref[key]) for key in ("p-positive", "n-positive", "p-no-finding", "n-no-finding")]
        print(f"| {name} | | | | | | | | {sc['p-positive'].mean():.3f} | {sc['n-positive'].mean():.3f} | "
              f"{sc['p-no-finding'].mean():.3f} | {sc['n-no-finding'].mean():.3f} | " + " | ".join(cells)
              + f" | {time.perf_counter() - t1:.0f} |", flush=True)
    best = replace(BASE, **{k: _value(v) for k, v in (kv.split("=") for kv in args.best.split(",") if kv)})
    empty = np.zeros(0, np.int64)
    for p in grid(args.grid, best):
        t1 = time.perf_counter()
        res = np.stack([np.array(diffuse(engine, s, empty, K, False, p).rows) for s in sims_all])
        sc = scores(res, forms)
        diffs = [_paired(sc[key], ref[key]) for key in ("p-positive", "n-positive", "p-no-finding", "n-no-finding")]
        scope = p.scope if p.scope == "graph" else f"{p.scope} {p.pool}"
        print(f"| {p.restart} | {p.iterations} | {p.weighting} | {scope} | {p.seeds or 'all'} | {p.seed_weights} "
              f"| {p.per_degree} | "
              f"{p.mix} | {sc['p-positive'].mean():.3f} | {sc['n-positive'].mean():.3f} | "
              f"{sc['p-no-finding'].mean():.3f} | {sc['n-no-finding'].mean():.3f} | " + " | ".join(diffs)
              + f" | {time.perf_counter() - t1:.0f} |", flush=True)


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    d = m.paired_bootstrap(a, b, 1000, seed=0)
    return f"{d.diff:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]"


def _value(v: str) -> object:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return None if v == "None" else v


if __name__ == "__main__":
    main()
