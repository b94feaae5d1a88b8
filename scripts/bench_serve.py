"""Benchmark `cxrneo serve` under concurrent clients, beside the float32 kernel and the in-process floor.

Against the graph already in the configured Neo4j (CXRNEO_* settings; build it first, e.g.
`cxrneo synth --noise 4` or `cxrneo synth --like SAMPLE_CODES`, `cxrneo ingest --mean-degree 50
[--whiten 64]`, `cxrneo communities`; scripts/bench_kernels.py builds and runs a whole matrix) and
the codes file that built it (for query ids and new codes), one run prints:

1. the CPU model (`lscpu`), and Neo4j's CPU use in the seconds before the load (a vector-index merge
   after an ingest shows there);
2. cold CLI: `cxrneo query ID --json` in fresh processes vs `cxrneo db status` (wall, median; --cold 0 skips);
3. `cxrneo serve` as configured (CXRNEO_SCAN from the environment or --scan; the kernel it chose is
   /health's "scan"), then the same with CXRNEO_SCAN=float32 (--baseline), one after the other on a free
   loopback port: for every method, QUERIES stored ids (themselves excluded) and QUERIES new codes (not
   in the graph: the first codes of --new FILE, e.g. more `cxrneo synth` draws of the same kind with
   another seed, films of the same population; without it a stored code plus --noise, off the codes'
   own directions), then kNN and community alternating, sent by CLIENTS
   threads at once (after one query of each row alone, not counted, whose time is printed: a lazy
   start shows there): p50/p95/p99, errors, queries/s; the server's resident memory and the CPU per
   query of the service, Neo4j and these clients;
4. the two services side by side, with the number of answers whose hit ids differ from the float32
   kernel's (every answer is exact, so it must be 0), and the issue-35 aim (kNN and community
   alternating: at least 100 queries/s, p50 at most 60 ms);
5. in this process, per kernel (the service's, float32, and any --floor-scans): the floor (one pass over
   the codes for 1 query and for 8, BLAS threads as the service's), then every method one query at a
   time on the same snapshot and queries, with the exact cosines (rechecks) each needed.

  nice python scripts/bench_serve.py CODES.npz [--queries 1000] [--clients 8] [--cold 5] [--floor-queries 200]
      [--scan auto] [--baseline float32|none] [--floor-scans bfloat16,...] [--json OUT.json] [--quick]

--quick: 100 queries, no cold CLI, 20 in-process queries (a check that everything runs).

With --filters N, instead: filtered queries in process on the stored graph (its snapshot and filter
columns), for every method, N stored query ids, each asked unfiltered and under filters passing about
1%, 10%, 50% and 90% of the archive and a combined one, in alternation (so the ratios to unfiltered
hold on a noisy machine); p50 per method and filter, its ratio to the same method unfiltered, and
the first query under each filter (which builds the filter's induced subgraph).
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrneo.archive.codes import load
from cxrneo.filters import QueryFilter
from cxrneo.retrieval import Method
from cxrneo.retrieval.question import Question
from cxrneo.retrieval.scan import BatchedScan
from cxrneo.retrieval.strategies import STRATEGIES
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings

LIMITS = ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
CLI = [sys.executable, "-m", "cxrneo.cli.main"]
ALTERNATING = "knn|community"  # the row of kNN and community queries in alternation (issue 35's aim)
AIM_QPS, AIM_P50_MS = 100.0, 60.0


def cpu_model() -> str:
    """`lscpu`'s model name (/proc/cpuinfo's when lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, object]) -> tuple[float, bool, tuple[str, ...] | None]:
    """Latency, whether the answer was whole, and its hit ids (None on an error)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    token = os.environ.get("CXRNEO_API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t = time.perf_counter()
    hits: tuple[str, ...] | None = None
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            if r.status == 200:
                hits = tuple(str(h["image_id"]) for h in json.loads(r.read())["hits"])
    except Exception:  # any failure counts as an error in the report
        hits = None
    took = time.perf_counter() - t
    return took, hits is not None and len(hits) == body["k"], hits


def memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def memory(pid: int) -> str:
    m = memory_mb(pid)
    return f"RSS {m['VmRSS']:.0f} MB, peak {m['VmHWM']:.0f} MB"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def neo4j_pid(data_dir: Path) -> int | None:
    """The local Neo4j server of this data folder (a java process), if there is one."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and "java" in cmd and "neo4j" in cmd.lower() and str(data_dir) in cmd:
            return int(proc.name)
    return None


def pct(xs: list[float]) -> str:
    a = np.array(xs) * 1e3
    return f"{np.percentile(a, 50):8.1f} {np.percentile(a, 95):8.1f} {np.percentile(a, 99):8.1f}"


@dataclass
class Row:
    """One load of the service: a method (or the alternation) and a kind of query."""

    latencies: list[float]
    errors: int
    qps: float
    answers: list[tuple[str, ...] | None]

    def summary(self) -> dict[str, float]:
        a = np.array(self.latencies) * 1e3
        return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
                "p99_ms": float(np.percentile(a, 99)), "qps": self.qps, "errors": self.errors}


@dataclass
class ServiceRun:
    """Everything one `cxrneo serve` measured."""

    setting: str
    scan: str = "?"
    rows: dict[str, Row] = field(default_factory=dict)
    qps: float = 0.0
    rss_mb: float = 0.0
    peak_mb: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)
    startup_s: float = 0.0
    warmup_ms: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"setting": self.setting, "scan": self.scan, "qps": self.qps, "rss_mb": self.rss_mb,
                "peak_mb": self.peak_mb, "cpu_ms_per_query": self.cpu_ms, "startup_s": self.startup_s,
                "warmup_ms": self.warmup_ms,
                "rows": {k: r.summary() for k, r in self.rows.items()}}


def _bodies(methods: list[Method], ids: list[str], new: np.ndarray, k: int) -> dict[str, list[dict[str, object]]]:
    """The request bodies of every row, in the order they are sent."""
    out: dict[str, list[dict[str, object]]] = {}

    def body(kind: str, j: int, method: str) -> dict[str, object]:
        if kind == "stored":
            return {"id": ids[j], "k": k, "method": method}
        return {"code": new[j].tolist(), "k": k, "method": method}

    for method in methods:
        for kind in ("stored", "new"):
            out[f"{method.value} {kind}"] = [body(kind, j, method.value) for j in range(len(ids))]
    for kind in ("stored", "new"):
        out[f"{ALTERNATING} {kind}"] = [body(kind, j, ("knn", "community")[j % 2]) for j in range(len(ids))]
    return out


def run_service(setting: str | None, bodies: dict[str, list[dict[str, object]]], clients: int,
                blas_threads: int) -> ServiceRun:
    """Start `cxrneo serve` (CXRNEO_SCAN=setting, or as the environment says when None), send every row's
    bodies with `clients` threads, stop it."""
    env = dict(os.environ)
    if setting is not None:
        env["CXRNEO_SCAN"] = setting
    run = ServiceRun(setting=env.get("CXRNEO_SCAN", "auto (default)"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--blas-threads", str(blas_threads)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        t = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    health = json.loads(r.read())
                    if health.get("status") == "ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.perf_counter() - t > 900:
                log.seek(0)
                raise SystemExit(f"cxrneo serve did not come up: {log.read().decode(errors='replace')}")
            time.sleep(0.2)
        run.startup_s, run.scan = time.perf_counter() - t, str(health.get("scan"))
        log.seek(0)
        said = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
        print(f"\n== cxrneo serve, CXRNEO_SCAN={run.setting}: up in {run.startup_s:.1f} s, /health scan "
              f"\"{run.scan}\", {health.get('images')} images ({memory(server.pid)})")
        for line in said[:8]:
            print(f"   | {line}")
        warm = {name: post(url + "/query", rows[-1])[0] for name, rows in bodies.items()}  # its last query
        run.warmup_ms = {name: t * 1e3 for name, t in warm.items()}
        print("first query of each row, alone (warm-up, not counted), ms: "
              + ", ".join(f"{name} {t * 1e3:.0f}" for name, t in warm.items()))
        print(f"{'method':<15} {'kind':<7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'q/s':>7}")
        total_q, total_s = 0, 0.0
        neo4j = neo4j_pid(Settings().data_dir)
        cpu0 = (cpu_seconds(server.pid), cpu_seconds(neo4j) if neo4j else 0.0, sum(os.times()[:2]))
        for name, rows in bodies.items():
            t = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                got = list(pool.map(lambda b: post(url + "/query", b), rows))
            wall = time.perf_counter() - t
            total_q, total_s = total_q + len(got), total_s + wall
            row = Row([s for s, _, _ in got], sum(1 for _, ok, _ in got if not ok), len(got) / wall,
                      [h for _, _, h in got])
            run.rows[name] = row
            method, kind = name.rsplit(" ", 1)
            print(f"{method:<15} {kind:<7} {pct(row.latencies)} {row.errors:7d} {row.qps:7.1f}", flush=True)
        mem = memory_mb(server.pid)
        run.qps, run.rss_mb, run.peak_mb = total_q / total_s, mem["VmRSS"], mem["VmHWM"]
        cpu = (cpu_seconds(server.pid) - cpu0[0], (cpu_seconds(neo4j) - cpu0[1]) if neo4j else float("nan"),
               sum(os.times()[:2]) - cpu0[2])
        per = [c / total_q * 1e3 for c in cpu]
        run.cpu_ms = {"service": per[0], "neo4j": per[1], "clients": per[2]}
        print(f"all: {total_q} queries in {total_s:.1f} s = {run.qps:.1f} queries/s; server {memory(server.pid)}")
        print(f"CPU per query: service {per[0]:.1f} ms, Neo4j {per[1]:.1f} ms, these clients {per[2]:.1f} ms; "
              f"{os.cpu_count()} CPUs at full use would allow {(os.cpu_count() or 1) * 1e3 / np.nansum(per):.0f} "
              "queries/s")
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return run


def differing(a: ServiceRun, b: ServiceRun) -> dict[str, int]:
    """Per row, the answers whose hit ids (in rank order) differ between two runs (an error counts)."""
    return {name: sum(1 for x, y in zip(row.answers, b.rows[name].answers, strict=True) if x is None or x != y)
            for name, row in a.rows.items() if name in b.rows}


def side_by_side(main: ServiceRun, base: ServiceRun | None) -> dict[str, int]:
    diff = differing(main, base) if base is not None else {}
    print(f"\n== side by side: \"{main.scan}\"" + (f" against \"{base.scan}\" (CXRNEO_SCAN={base.setting})"
                                                    if base else ""))
    head = f"{'method':<15} {'kind':<7} {'p50 ms':>8} {'p99 ms':>8} {'q/s':>7}"
    print(head + (f"  | {'p50 ms':>8} {'p99 ms':>8} {'q/s':>7} {'differing answers':>18}" if base else ""))
    for name, row in main.rows.items():
        method, kind = name.rsplit(" ", 1)
        m = row.summary()
        line = f"{method:<15} {kind:<7} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['qps']:7.1f}"
        if base is not None and name in base.rows:
            b = base.rows[name].summary()
            line += f"  | {b['p50_ms']:8.1f} {b['p99_ms']:8.1f} {b['qps']:7.1f} {diff[name]:18d}"
        print(line)
    print(f"{'all':<23} {main.qps:>25.1f}" + (f"  | {base.qps:>25.1f} {sum(diff.values()):18d}" if base else "")
          + f"   (RSS {main.rss_mb:.0f} MB" + (f" | {base.rss_mb:.0f} MB)" if base else ")"))
    for kind in ("stored", "new"):
        alt = main.rows[f"{ALTERNATING} {kind}"].summary()
        met = alt["qps"] >= AIM_QPS and alt["p50_ms"] <= AIM_P50_MS
        print(f"aim (kNN and community alternating, {kind}: >= {AIM_QPS:.0f} queries/s, p50 <= {AIM_P50_MS:.0f} ms): "
              f"{alt['qps']:.1f} queries/s, p50 {alt['p50_ms']:.1f} ms: {'met' if met else 'missed'}")
    if base is not None:
        total = sum(diff.values())
        print(f"answers differing from the float32 kernel's: {total} of {sum(len(r.answers) for r in main.rows.values())}"
              + ("" if total == 0 else " (NOT EQUAL)"))
    return diff


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("codes", type=Path, help="the codes file that built the stored graph")
    ap.add_argument("--queries", type=int, default=1000, help="queries per method and kind")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cold", type=int, default=5, help="fresh-process CLI runs (0 to skip)")
    ap.add_argument("--noise", type=float, default=0.5, help="noise norm of new codes, relative to a code (without --new)")
    ap.add_argument("--new", type=Path, default=None, help="a codes file whose first QUERIES codes are the new codes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--floor-queries", type=int, default=200, help="queries of the in-process comparison (0: floors only)")
    ap.add_argument("--methods", default=",".join(m.value for m in Method), help="comma-separated methods to send")
    ap.add_argument("--filters", type=int, default=0, help="only the filtered in-process runs, with N queries")
    ap.add_argument("--scan", default=None, help="CXRNEO_SCAN of the measured service (default: the environment's)")
    ap.add_argument("--baseline", default="float32", help="CXRNEO_SCAN of the service compared with it (none: no second run)")
    ap.add_argument("--floor-scans", default="", help="more CXRNEO_SCAN values whose kernels are timed in process")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads of the service and of the in-process floor")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of Neo4j CPU measured before the load")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    ap.add_argument("--label", default="", help="a name for this graph in the JSON (bench_kernels.py)")
    ap.add_argument("--quick", action="store_true", help="100 queries, no cold CLI, 20 in-process queries")
    args = ap.parse_args()
    if args.filters:
        filtered_runs(args.filters, args.k, args.seed)
        return
    if args.quick:
        args.queries, args.cold, args.floor_queries = min(args.queries, 100), 0, min(args.floor_queries, 20)

    codes = load(args.codes)
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(codes), args.queries, replace=False)
    ids = [codes.ids[int(r)] for r in rows]
    unit = codes.codes[rows] / np.linalg.norm(codes.codes[rows], axis=1, keepdims=True)
    noise = rng.standard_normal(unit.shape).astype(np.float32)
    new = unit + args.noise * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    if args.new is not None:
        fresh = load(args.new).codes[: args.queries]
        if len(fresh) < args.queries:
            raise SystemExit(f"{args.new} holds {len(fresh)} codes; --queries {args.queries} needs as many")
        new = fresh / np.linalg.norm(fresh, axis=1, keepdims=True)
    model = cpu_model()
    print(f"CPU: {model}; {platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{len(codes)} codes, {args.queries} queries per method and kind, {args.clients} clients, k={args.k}; "
          f"new codes: " + (f"the first of {args.new.name}" if args.new else f"stored codes plus noise {args.noise:g}"))
    limits = {k: os.environ[k] for k in LIMITS if os.environ.get(k)}
    if limits:  # instruction sets held back (e.g. an AVX2-only CPU imitated on a newer one)
        print("instruction sets limited: " + ", ".join(f"{k}={v}" for k, v in limits.items()))
    neo4j = neo4j_pid(Settings().data_dir)
    settle = None
    if neo4j and args.settle > 0:
        c0 = cpu_seconds(neo4j)
        time.sleep(args.settle)
        settle = (cpu_seconds(neo4j) - c0) / args.settle
        print(f"Neo4j before the load: {settle:.0%} of a core over {args.settle:g} s"
              + (" (busy: a vector-index merge after an ingest? figures are indicative)" if settle > 0.2 else ""))

    if args.cold:
        status = median_wall([*CLI, "db", "status"], args.cold)
        query = median_wall([*CLI, "query", ids[0], "-k", str(args.k), "--json"], args.cold)
        print(f"cold CLI (median of {args.cold}): `cxrneo db status` {status:.2f} s, "
              f"`cxrneo query ID --json` {query:.2f} s = {query / status:.2f}x")

    bodies = _bodies([Method.parse(m) for m in args.methods.split(",")], ids, new, args.k)
    main_run = run_service(args.scan, bodies, args.clients, args.blas_threads)
    base_run = None
    if args.baseline != "none" and main_run.scan == args.baseline:
        print(f"\nthe service's kernel is {main_run.scan} already: no second run")
    elif args.baseline != "none":
        base_run = run_service(args.baseline, bodies, args.clients, args.blas_threads)
    diff = side_by_side(main_run, base_run)

    scans = [args.scan or os.environ.get("CXRNEO_SCAN", "auto")]
    for s in [args.baseline, *args.floor_scans.split(",")]:
        if s and s != "none" and s not in scans:
            scans.append(s)
    floors: list[dict[str, Any]] = []
    for setting in scans:
        if setting in {f.get("kernel") for f in floors}:
            print(f"\n== in process, CXRNEO_SCAN={setting}: measured above (the kernel \"{setting}\")")
            continue
        floors.append(in_process(setting, ids, new, args.k, args.floor_queries, args.blas_threads))
    print("\n== summary: " + f"CPU {model}; service kernel \"{main_run.scan}\"; " + ", ".join(
        f"floor {f['kernel']} {f['one_ms']:.1f} ms (1 query) / {f['eight_ms']:.1f} ms (8)" for f in floors if f))
    if args.json is not None:
        doc = {"label": args.label, "cpu": model, "cpus": os.cpu_count(), "codes": str(args.codes),
               "images": len(codes), "new_codes": str(args.new) if args.new else f"noise {args.noise:g}",
               "queries": args.queries, "clients": args.clients, "k": args.k,
               "neo4j_before_load": settle, "limits": limits, "service": main_run.summary(),
               "baseline": base_run.summary() if base_run else None, "differing": diff, "floors": floors}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1))


def median_ms(f: Callable[[], object], runs: int = 30) -> float:
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def in_process(setting: str, ids: list[str], new: np.ndarray, k: int, n: int, blas_threads: int) -> dict[str, Any]:
    """The floor of the kernel CXRNEO_SCAN=setting makes over the stored codes (one pass for 1 query and for
    8), then every method one query at a time, with how many exact cosines (rechecks) each needed."""
    from threadpoolctl import threadpool_limits

    try:
        settings = Settings(scan=setting)
    except ValueError as e:
        print(f"\n== in process, CXRNEO_SCAN={setting}: not a setting this revision knows ({str(e).splitlines()[0]})")
        return {}
    searcher = Searcher.connect(settings, serving=True)  # the service's first pass
    try:
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            return _in_process(searcher, setting, ids, new, k, n, blas_threads)
    finally:
        searcher.close()


def _in_process(searcher: Searcher, setting: str, ids: list[str], new: np.ndarray, k: int, n: int,
                blas_threads: int) -> dict[str, Any]:
    t = time.perf_counter()
    generation = searcher.graph.current()
    opened = time.perf_counter() - t
    retriever = generation.retriever
    scan = retriever.scan
    assert isinstance(scan, BatchedScan)
    kernel = scan.kernel
    space = np.stack([searcher.graph.in_graph_space(generation.meta, c) for c in new])  # as the service does
    space /= np.linalg.norm(space, axis=1, keepdims=True)
    one = np.ascontiguousarray(space[:1].T, dtype=np.float32)
    eight = np.ascontiguousarray(space[:8].T, dtype=np.float32)
    floor = median_ms(lambda: kernel(one))
    floor8 = median_ms(lambda: kernel(eight))
    print(f"\n== in process, CXRNEO_SCAN={setting}: kernel \"{kernel.name}\" (graph opened in {opened:.1f} s), "
          f"{blas_threads} BLAS thread(s): one pass over the codes {floor:.1f} ms for 1 query, "
          f"{floor8:.1f} ms for 8 (the floor)")
    out: dict[str, Any] = {"setting": setting, "kernel": kernel.name, "one_ms": floor, "eight_ms": floor8}
    if n == 0:
        return out
    retriever.query(space[0], Question(k, Method.COMMUNITY))  # warm the block cache as the service was
    times: dict[tuple[str, str], list[float]] = {}
    computed: dict[str, list[int]] = {}
    for j, i in enumerate(ids[:n]):
        for method in Method:
            for kind, code, exclude in (("stored", retriever.code_of(i), frozenset({i})), ("new", space[j], frozenset())):
                t = time.perf_counter()
                retriever.query(code, Question(k, method, exclude=exclude))
                times.setdefault((method.value, kind), []).append(time.perf_counter() - t)
                if kind == "new":
                    cos = scan(np.asarray(code, np.float32))
                    STRATEGIES[method].run(retriever, cos, np.empty(0, np.int64), k, False)
                    computed.setdefault(method.value, []).append(cos.computed)
    print(f"one query at a time (retrieval only), {min(n, len(ids))} queries:")
    print(f"{'method':<10} {'kind':<7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  {'/ kNN':>6} {'/ floor':>7}  "
          "exact cosines per new query: mean (max)")
    out["methods"] = {}
    for (method, kind), xs in times.items():
        knn = np.median(times[("knn", kind)])
        p50 = float(np.median(xs)) * 1e3
        print(f"{method:<10} {kind:<7} {pct(xs)}  {p50 / 1e3 / knn:5.2f}x {p50 / floor:6.2f}x  "
              f"{np.mean(computed[method]):.0f} ({max(computed[method])})")
        out["methods"][f"{method} {kind}"] = {"p50_ms": p50, "rechecks_mean": float(np.mean(computed[method])),
                                              "rechecks_max": int(max(computed[method]))}
    return out


FILTERS = {  # named by the share of a NIH-table archive they pass (measured and printed below)
    "~1% (Pneumonia)": QueryFilter(findings=["Pneumonia"]),
    "~10% (Effusion)": QueryFilter(findings=["Effusion"]),
    "~50% (sex M)": QueryFilter(sex="M"),
    "~90% (age 18-80)": QueryFilter(age_min=18, age_max=80),
    "combined": QueryFilter(findings=["Effusion"], sex="F", age_min=60, views=["PA"]),
}


def filtered_runs(n: int, k: int, seed: int) -> None:
    searcher = Searcher.connect(Settings())
    try:
        t = time.perf_counter()
        searcher.warm()
        retriever = searcher.graph.current().retriever
        print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; graph of "
              f"{len(retriever.ids)} images opened in {time.perf_counter() - t:.1f} s; {n} queries per method and "
              f"filter, k={k}")
        facets = searcher.graph.current().facets
        from cxrneo.filters import passing

        shares = {name: float(passing(facets, f, retriever.graph.community).mean()) for name, f in FILTERS.items()}
        rng = np.random.default_rng(seed)
        ids = [retriever.ids[int(r)] for r in rng.choice(len(retriever.ids), n, replace=False)]
        first: dict[tuple[str, str], float] = {}
        times: dict[tuple[str, str], list[float]] = {}
        for method in Method:
            for j, i in enumerate(ids):
                for name, f in [("none", None), *FILTERS.items()]:
                    t = time.perf_counter()
                    answer = searcher.by_id(i, QueryOptions(k=k, method=method, filter=f))
                    took = time.perf_counter() - t
                    if j == 0:
                        first[(method.value, name)] = took  # builds the filter's induced subgraph
                        continue
                    passed = answer.passing if answer.passing is not None else len(retriever.ids)
                    assert len(answer.hits) in (min(k, passed), min(k, passed - 1)), (name, len(answer.hits))
                    times.setdefault((method.value, name), []).append(took)
        print("\n| method | filter | passing | p50 ms | p50 / unfiltered | first query ms |")
        print("|---|---|---|---|---|---|")
        for (method, name), xs in times.items():
            base = float(np.median(times[(method, "none")]))
            share = "100%" if name == "none" else f"{shares[name]:.1%}"
            print(f"| {method} | {name} | {share} | {np.median(xs) * 1e3:.1f} | {np.median(xs) / base:.2f}x | "
                  f"{first[(method, name)] * 1e3:.0f} |", flush=True)
    finally:
        searcher.close()


if __name__ == "__main__":
    main()
