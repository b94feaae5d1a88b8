"""Benchmark `cxrneo serve` under concurrent clients, beside the in-process exact-kNN floor.

Against the graph already in the configured Neo4j (CXRNEO_* settings; build it first, e.g.
`cxrneo synth --noise 4`, `cxrneo ingest --mean-degree 50`, `cxrneo communities`) and the codes
file that built it (for query ids and new codes):

1. cold CLI: `cxrneo query ID --json` in fresh processes vs `cxrneo db status` (wall, median);
2. starts `cxrneo serve` on a free loopback port and waits until it answers;
3. for every method: QUERIES stored ids (themselves excluded) and QUERIES new codes (a stored
   code plus noise, not in the graph), sent by CLIENTS threads at once; p50/p95/p99, errors,
   queries per second; then the server's resident memory (VmRSS, VmHWM);
4. in this process: the floor (one pass of the service's first pass over the codes, and of float32),
   then every method on the same snapshot and queries, one at a time, with the exact cosines each needed.

  nice python scripts/bench_serve.py CODES.npz [--queries 1000] [--clients 8] [--cold 5] [--floor-queries 200]

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
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cxrneo.archive.codes import load
from cxrneo.filters import QueryFilter
from cxrneo.retrieval import Method
from cxrneo.retrieval.question import Question
from cxrneo.retrieval.scan import BatchedScan, Fp32Kernel
from cxrneo.retrieval.strategies import STRATEGIES
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings

CLI = [sys.executable, "-m", "cxrneo.cli.main"]


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


def post(url: str, body: dict[str, object]) -> tuple[float, bool]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    token = os.environ.get("CXRNEO_API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            ok = r.status == 200 and len(json.loads(r.read())["hits"]) == body["k"]
    except Exception:  # any failure counts as an error in the report
        ok = False
    return time.perf_counter() - t, ok


def memory(pid: int) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return f"RSS {fields['VmRSS']:.0f} MB, peak {fields['VmHWM']:.0f} MB"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("codes", type=Path, help="the codes file that built the stored graph")
    ap.add_argument("--queries", type=int, default=1000, help="queries per method and kind")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cold", type=int, default=5, help="fresh-process CLI runs (0 to skip)")
    ap.add_argument("--noise", type=float, default=0.5, help="noise norm of new codes, relative to a code")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--floor-queries", type=int, default=200, help="queries of the in-process comparison")
    ap.add_argument("--methods", default=",".join(m.value for m in Method), help="comma-separated methods to send")
    ap.add_argument("--filters", type=int, default=0, help="only the filtered in-process runs, with N queries")
    args = ap.parse_args()
    if args.filters:
        filtered_runs(args.filters, args.k, args.seed)
        return

    codes = load(args.codes)
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(codes), args.queries, replace=False)
    ids = [codes.ids[int(r)] for r in rows]
    unit = codes.codes[rows] / np.linalg.norm(codes.codes[rows], axis=1, keepdims=True)
    noise = rng.standard_normal(unit.shape).astype(np.float32)
    new = unit + args.noise * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{len(codes)} codes, {args.queries} queries per method and kind, {args.clients} clients, k={args.k}")

    if args.cold:
        status = median_wall([*CLI, "db", "status"], args.cold)
        query = median_wall([*CLI, "query", ids[0], "-k", str(args.k), "--json"], args.cold)
        print(f"cold CLI (median of {args.cold}): `cxrneo db status` {status:.2f} s, "
              f"`cxrneo query ID --json` {query:.2f} s = {query / status:.2f}x")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        t = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.perf_counter() - t > 600:
                raise SystemExit(f"cxrneo serve did not come up: {server.stdout.read().decode() if server.stdout else ''}")
            time.sleep(0.2)
        print(f"cxrneo serve up in {time.perf_counter() - t:.1f} s ({memory(server.pid)})")
        print(f"\n{'method':<10} {'kind':<7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'q/s':>7}")
        total_q, total_s = 0, 0.0
        neo4j = neo4j_pid(Settings().data_dir)
        cpu0 = (cpu_seconds(server.pid), cpu_seconds(neo4j) if neo4j else 0.0, sum(os.times()[:2]))
        for method in [Method.parse(m) for m in args.methods.split(",")]:
            for kind in ("stored", "new"):
                bodies: list[dict[str, object]] = [
                    {"id": i, "k": args.k, "method": method.value} if kind == "stored"
                    else {"code": new[j].tolist(), "k": args.k, "method": method.value}
                    for j, i in enumerate(ids)
                ]
                t = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    got = list(pool.map(lambda b: post(url + "/query", b), bodies))
                wall = time.perf_counter() - t
                total_q, total_s = total_q + len(got), total_s + wall
                lat = [s for s, _ in got]
                errors = sum(1 for _, ok in got if not ok)
                print(f"{method.value:<10} {kind:<7} {pct(lat)} {errors:7d} {len(got) / wall:7.1f}", flush=True)
        print(f"all: {total_q} queries in {total_s:.1f} s = {total_q / total_s:.1f} queries/s; "
              f"server {memory(server.pid)}")
        cpu = (cpu_seconds(server.pid) - cpu0[0], (cpu_seconds(neo4j) - cpu0[1]) if neo4j else float("nan"),
               sum(os.times()[:2]) - cpu0[2])
        per = [c / total_q * 1e3 for c in cpu]
        print(f"CPU per query: service {per[0]:.1f} ms, Neo4j {per[1]:.1f} ms, these clients {per[2]:.1f} ms; "
              f"{os.cpu_count()} CPUs at full use would allow {(os.cpu_count() or 1) * 1e3 / sum(per):.0f} queries/s")
    finally:
        server.terminate()
        server.wait(30)

    searcher = Searcher.connect(Settings(), serving=True)  # the service's first pass
    try:
        in_process(searcher, ids, new, args.k, args.floor_queries)
    finally:
        searcher.close()


def median_ms(f: Callable[[], object], runs: int = 30) -> float:
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def in_process(searcher: Searcher, ids: list[str], new: np.ndarray, k: int, n: int) -> None:
    """The machine's floor (one pass over the codes, in the precision the service uses and in float32)
    and every method one query at a time, with how many exact cosines each needed."""
    retriever = searcher.graph.current().retriever
    scan = retriever.scan
    assert isinstance(scan, BatchedScan)
    kernel, codes = scan.kernel, retriever.codes
    one = np.ascontiguousarray(new[:1].T, dtype=np.float32)
    eight = np.ascontiguousarray(new[:8].T, dtype=np.float32)
    floor = median_ms(lambda: kernel(one))
    floor8 = median_ms(lambda: kernel(eight))
    p = kernel(one)
    print(f"\nfirst pass: {kernel.name}, bound {p.base[0]:.2e} + {p.rel:.2e} |a|; one pass over the codes "
          f"{floor:.1f} ms for 1 query, {floor8:.1f} ms for 8 (the floor)")
    if kernel.name != "float32":
        fp32 = Fp32Kernel(codes)
        print(f"float32 pass over the same codes: {median_ms(lambda: fp32(one)):.1f} ms for 1 query, "
              f"{median_ms(lambda: fp32(eight)):.1f} ms for 8")
    retriever.query(new[0], Question(k, Method.COMMUNITY))  # warm the block cache as the service was
    times: dict[tuple[str, str], list[float]] = {}
    computed: dict[str, list[int]] = {}
    for j, i in enumerate(ids[:n]):
        for method in Method:
            for kind, code, exclude in (("stored", retriever.code_of(i), frozenset({i})), ("new", new[j], frozenset())):
                t = time.perf_counter()
                retriever.query(code, Question(k, method, exclude=exclude))
                times.setdefault((method.value, kind), []).append(time.perf_counter() - t)
                if kind == "new":
                    cos = scan(np.asarray(code / np.linalg.norm(code), np.float32))
                    STRATEGIES[method].run(retriever, cos, np.empty(0, np.int64), k, False)
                    computed.setdefault(method.value, []).append(cos.computed)
    print("\nin process, one query at a time (retrieval only):")
    for (method, kind), xs in times.items():
        knn = np.median(times[("knn", kind)])
        print(f"{method:<10} {kind:<7} p50/p95/p99 ms {pct(xs)}   p50 = {np.median(xs) / knn:.2f}x kNN = "
              f"{np.median(xs) * 1e3 / floor:.2f}x the floor; exact cosines per query "
              f"{np.mean(computed[method]):.0f} (max {max(computed[method])})")


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
