"""Issue 35's matrix: build each graph and run scripts/bench_serve.py on it, then print one table.

Graphs: N codes of each kind, `noise4` (`cxrneo synth --noise 4`, nearly isotropic) and `like` (`cxrneo
synth --like SAMPLE`, the spectrum of the shipped checkpoint's codes of the NIH sample), each stored raw
and whitened (`cxrneo ingest --whiten DIM`), mean degree 50, Louvain communities. For each: `cxrneo db
reset --yes`, `cxrneo ingest`, `cxrneo communities`, then at once (the check starts its load right after
its own ingest) `bench_serve.py` against the service as configured and the float32 kernel, its output
kept in WORK/GRAPH.log and its figures in WORK/GRAPH.json.

Needs the configured Neo4j running (`cxrneo db start`, CXRNEO_* settings as for every command), and
**empties its graph**. Full scale, on a quiet machine:

  nice python scripts/bench_kernels.py --labels Data_Entry_2017_v2020.csv.gz --work /tmp/matrix

A check at small scale: `--n 5000 --queries 100 --floor-queries 20`. `--table` prints the table of the
JSON files already in WORK without building anything. Options after `--` go to bench_serve.py.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "nih-sample"
SAMPLE_CODES = SAMPLE / "codes.npz"  # the shipped checkpoint's codes of the sample (examples/README.md)
CLI = [sys.executable, "-m", "cxrneo.cli.main"]
ALT = "knn|community"


def sh(cmd: list[str], log: Path | None = None) -> float:
    """Run a command, its output shown (and appended to `log`); its wall time; exit on failure."""
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    t = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        assert p.stdout is not None
        with open(log, "a") if log else open(os.devnull, "w") as out:
            for line in p.stdout:
                print(line, end="", flush=True)
                out.write(line)
    if p.returncode:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(str(c) for c in cmd)}")
    return time.perf_counter() - t


def sample_codes(work: Path, given: Path | None) -> Path:
    """The codes file `--like` imitates: given, shipped, or embedded now from the sample (CPU: minutes)."""
    if given is not None:
        return given
    if SAMPLE_CODES.is_file():
        return SAMPLE_CODES
    out = work / "sample-codes.npz"
    if not out.is_file():
        sh([*CLI, "embed", str(ROOT / "examples" / "checkpoint" / "best.pt"), "--labels",
            str(SAMPLE / "Data_Entry_2017.csv"), "--images", str(SAMPLE / "images"), "--out", str(out)])
    return out


def codes_file(work: Path, kind: str, labels: Path, n: int, like: Path, seed: int = 0) -> Path:
    """The synthetic codes of one kind (made once; the same arguments give the same file). Seed 0: the
    archive; another seed: new films of the same population (the benchmark's new codes)."""
    out = work / (f"{kind}-{n}.npz" if seed == 0 else f"{kind}-{n}-seed{seed}.npz")
    if not out.is_file():
        how = ["--noise", "4"] if kind == "noise4" else ["--like", str(like)]
        sh([*CLI, "synth", "--labels", str(labels), "--n", str(n), "--seed", str(seed), *how, "--out", str(out)])
    return out


def build_and_bench(work: Path, name: str, codes: Path, whiten: str, mean_degree: float, bench: list[str]) -> None:
    log = work / f"{name}.log"
    log.write_text("")
    took = {"reset": sh([*CLI, "db", "reset", "--yes"], log)}
    ingest = [*CLI, "ingest", str(codes), "--mean-degree", str(mean_degree)]
    took["ingest"] = sh(ingest + ([] if whiten == "none" else ["--whiten", whiten]), log)
    took["communities"] = sh([*CLI, "communities"], log)
    print(f"== {name}: built in " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()), flush=True)
    sh([sys.executable, str(ROOT / "scripts" / "bench_serve.py"), str(codes), "--cold", "0", "--label", name,
        "--json", str(work / f"{name}.json"), *bench], log)
    doc = json.loads((work / f"{name}.json").read_text())
    doc["build_s"] = took
    (work / f"{name}.json").write_text(json.dumps(doc, indent=1))


def _row(doc: dict[str, Any]) -> str:
    svc, base = doc["service"], doc.get("baseline")
    rows = svc["rows"]

    def alt(run: dict[str, Any], key: str, fmt: str) -> str:
        return "/".join(format(run["rows"][f"{ALT} {kind}"][key], fmt) for kind in ("stored", "new"))

    p50 = " / ".join(f"{rows[f'{m} stored']['p50_ms']:.0f}" for m in ("knn", "community", "hybrid", "diffusion")
                     if f"{m} stored" in rows)
    met = all(rows[f"{ALT} {k}"]["qps"] >= 100 and rows[f"{ALT} {k}"]["p50_ms"] <= 60 for k in ("stored", "new"))
    floors = {f["setting"]: f for f in doc["floors"] if f}
    floor = "; ".join(f"{f['kernel']} {f['one_ms']:.1f}/{f['eight_ms']:.1f}" for f in floors.values())
    same = base is None and svc["scan"] == "float32"  # bench_serve.py made no second run: it is float32
    differ = sum(doc["differing"].values()) if base else ("0 (float32 itself)" if same else "-")
    base_cols = (f"{alt(base, 'qps', '.0f')} | {alt(base, 'p50_ms', '.0f')} | {base['qps']:.0f} | {base['rss_mb']:.0f}"
                 if base else ("= | = | = | =" if same else "- | - | - | -"))
    return (f"| {doc['label']} | {doc['images']:,} | {svc['scan']} | {alt(svc, 'qps', '.0f')} | {alt(svc, 'p50_ms', '.0f')} | "
            f"{alt(svc, 'p99_ms', '.0f')} | {p50} | {svc['qps']:.0f} | {svc['rss_mb']:.0f} | {base_cols} | {differ} | "
            f"{floor} | {'met' if met else 'missed'} |")


def table(work: Path, names: list[str]) -> None:
    docs = [json.loads((work / f"{n}.json").read_text()) for n in names if (work / f"{n}.json").is_file()]
    if not docs:
        raise SystemExit(f"no results in {work}")
    cpus = sorted({f"{d['cpu']} ({d['cpus']} CPUs" + "".join(f", {k}={v}" for k, v in (d.get("limits") or {}).items()) + ")"
                   for d in docs})
    new = ", ".join(f"{d['label']} {Path(d.get('new_codes', 'noise')).name}" for d in docs)
    print(f"\nCPU: {'; '.join(cpus)}; {docs[0]['clients']} clients, {docs[0]['queries']} queries per row, k = {docs[0]['k']}; "
          f"q/s and ms as stored ids / new codes ({new}); floors: one pass in process, ms for 1 / 8 queries")
    print("| graph | images | kernel | kNN+community q/s | p50 ms | p99 ms | p50 ms kNN / community / hybrid / diffusion "
          "| all q/s | RSS MB | float32: kNN+community q/s | p50 ms | all q/s | RSS MB | answers differing | floors "
          "| aim (>= 100 q/s, p50 <= 60 ms) |")
    print("|" + "---|" * 16)
    for d in docs:
        print(_row(d))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=os.environ.get("CXRNEO_NIH_LABELS"),
                    help="NIH Data_Entry_2017_v2020.csv(.gz), the full label table (default: $CXRNEO_NIH_LABELS)")
    ap.add_argument("--n", type=int, default=112_120, help="codes per graph (the table's first N rows)")
    ap.add_argument("--work", type=Path, required=True, help="folder of the codes files, logs and results")
    ap.add_argument("--like", type=Path, default=None, help=f"codes to imitate (default: {SAMPLE_CODES.relative_to(ROOT)})")
    ap.add_argument("--kinds", default="noise4,like", help="comma-separated: noise4, like")
    ap.add_argument("--whiten", default="none,64", help="comma-separated `ingest --whiten` values (none: raw)")
    ap.add_argument("--mean-degree", type=float, default=50)
    ap.add_argument("--queries", type=int, default=500, help="bench_serve.py --queries")
    ap.add_argument("--floor-queries", type=int, default=100, help="bench_serve.py --floor-queries")
    ap.add_argument("--new", choices=("draws", "noise"), default="draws",
                    help="like graphs' new codes: more draws from the same model (seed 1: films of the same "
                         "population), or stored codes plus noise (bench_serve.py's --noise, off the codes' own "
                         "directions); noise4 graphs always take the latter (another seed is another population)")
    ap.add_argument("--table", action="store_true", help="only print the table of the results in WORK")
    args, bench = ap.parse_known_args()
    bench = [a for a in bench if a != "--"]
    kinds = [k for k in args.kinds.split(",") if k]
    if set(kinds) - {"noise4", "like"}:
        raise SystemExit(f"--kinds: noise4 and like only, got {args.kinds}")
    whitens = [w for w in args.whiten.split(",") if w]
    names = [f"{kind}-{'raw' if w == 'none' else 'whiten' + w}" for kind in kinds for w in whitens]
    if args.table:
        table(args.work, names)
        return
    if args.labels is None or not Path(args.labels).is_file():
        raise SystemExit("give --labels: NIH's full label table (Data_Entry_2017_v2020.csv.gz)")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sh([*CLI, "db", "status"])  # the configured Neo4j answers before anything is built
    like = sample_codes(args.work, args.like) if "like" in kinds else Path()
    bench = ["--queries", str(args.queries), "--floor-queries", str(args.floor_queries), *bench]
    for kind in kinds:
        codes = codes_file(args.work, kind, Path(args.labels), args.n, like)
        fresh = [] if args.new == "noise" or kind != "like" else \
            ["--new", str(codes_file(args.work, kind, Path(args.labels), args.queries, like, seed=1))]
        for w in whitens:
            build_and_bench(args.work, f"{kind}-{'raw' if w == 'none' else 'whiten' + w}", codes, w,
                            args.mean_degree, [*bench, *fresh])
    table(args.work, names)
    print(f"\nthe whole matrix took {(time.perf_counter() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
