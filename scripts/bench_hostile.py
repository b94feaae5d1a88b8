"""Benchmark: a running `cxrneo serve` is not hurt by hostile requests while clients query it.

Against the graph already in the configured Neo4j (CXRNEO_* settings) and the codes file that built
it (stored ids are read from it), the script starts `cxrneo serve` on a free loopback port (with
`--checkpoint PATH` when given, so that the upload routes exist; without one the hostile uploads
must still be refused with a 4xx) and measures, printing everything side by side:

* phase A (baseline): CLIENTS threads send stored-id queries (POST /query, K = 10, methods knn and
  community in alternation) for SECONDS; every latency and status is kept;
* phase B (as long again): the same clients again while one more thread sends every request of the
  hostile corpus of tests/hostile.py (decompression bombs, huge images, deep JSON, ...) once, in
  sequence, then repeats the corpus until the phase ends (`--once`: one pass); the service's resident
  memory (VmRSS) is sampled every 50 ms, VmHWM read before and after (reset first with clear_refs
  where permitted);
* the machine's CPU model (lscpu "Model name") and the number of images in the graph (GET /health);
  per hostile input its status, its worst latency over the repeats, the status tests/hostile.py
  expects and a pass/fail against "4xx and under 1 s"; the clients' p50/p95/p99 and queries/s in
  phase A vs B with the ratio of p99 B/A (aim at most 2.0), the peak RSS growth during B (aim under
  300 MB) and the clients' errors (non-200) in each phase. `--json PATH` writes the same numbers.

HTTP is the standard library's: urllib.request for the clients, http.client (which urllib is built on)
for the hostile requests, so that an answer the service sends before it has read a whole body (and
then resets the connection) is still read; such answers are marked in their error column. Every
request has a timeout and every loop a bound in count and time: the script ends by itself. Traffic
only ever goes to 127.0.0.1. Full scale (112,120 synthetic codes, as in README.md, issue 25):

  cxrneo synth --labels Data_Entry_2017_v2020.csv.gz --noise 4 --out codes.npz
  cxrneo ingest codes.npz --mean-degree 50 --bulk && cxrneo communities
  nice python scripts/bench_hostile.py codes.npz --seconds 30 --json hostile.json [--checkpoint best.pt]
"""

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrneo.archive.codes import load  # noqa: E402
from tests.hostile import Hostile, corpus  # noqa: E402

CLI = [sys.executable, "-m", "cxrneo.cli.main"]
HOST = "127.0.0.1"
METHODS = ("knn", "community")
MAX_PER_CLIENT = 1_000_000  # requests per client thread and phase, whatever the clock says
MAX_PASSES = 10_000  # passes over the hostile corpus in one phase
SAMPLE_S = 0.05  # RSS sampling period


@dataclass
class Reply:
    status: int  # 0: no HTTP answer (timeout, reset, ...)
    seconds: float
    error: str  # one line; '' for a 2xx


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_of(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and "error" in doc:
            return one_line(str(doc["error"]))
    except ValueError:
        pass
    return one_line(raw[:400].decode("utf-8", "replace")) or "(empty body)"


def send(url: str, body: bytes, kind: str, timeout: float) -> Reply:
    """POST body to url; the status, the wall time until the answer was read, and its one-line error."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": kind})
    token = os.environ.get("CXRNEO_API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
        return Reply(status, time.perf_counter() - t, "" if 200 <= status < 300 else _error_of(raw))
    except urllib.error.HTTPError as e:
        try:
            raw = e.read()
        except OSError:
            raw = b""
        return Reply(e.code, time.perf_counter() - t, _error_of(raw))
    except Exception as e:  # timeout, reset, refused: no HTTP status
        return Reply(0, time.perf_counter() - t, one_line(f"{type(e).__name__}: {e}"))


def send_early(url: str, body: bytes, kind: str, timeout: float) -> Reply:
    """As send, for the hostile requests, but a service that answers before it has read the whole body
    and then closes the connection (the client's send fails with a reset) still has its answer read
    (http.client, which urllib.request is built on, lets the response be read after a failed send)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != HOST:
        raise ValueError(f"only {HOST} is ever sent traffic, not {parts.hostname}")
    headers = {"Content-Type": kind, "Content-Length": str(len(body)), "Connection": "close"}
    token = os.environ.get("CXRNEO_API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(HOST, parts.port, timeout=timeout)
    t = time.perf_counter()
    note = ""
    try:
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError) as e:  # answered early? read what came back
            note = f" [{type(e).__name__} while sending the body]"
        r = conn.getresponse()
        raw = r.read()
        seconds = time.perf_counter() - t
        return Reply(r.status, seconds, ("" if 200 <= r.status < 300 else _error_of(raw)) + note)
    except Exception as e:  # timeout, reset, refused: no HTTP status
        return Reply(0, time.perf_counter() - t, one_line(f"{type(e).__name__}: {e}") + note)
    finally:
        conn.close()


def get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    req = urllib.request.Request(url)
    token = os.environ.get("CXRNEO_API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        doc = json.loads(r.read())
    return doc if isinstance(doc, dict) else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                return value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def proc_kb(pid: int, key: str) -> int:
    """A field of /proc/PID/status in kB (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, value = line.partition(":")
            if k == key:
                return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (clear_refs 5); False where not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def start_service(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """`cxrneo serve` on a free loopback port, once /health says ok (within --startup seconds)."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = [*CLI, "serve", "--host", HOST, "--port", str(port)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(args.checkpoint)]
    # a file, not a pipe: a pipe nobody reads fills up and would stall a service that logs errors
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the caller's process end
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    t = time.perf_counter()
    while True:
        try:
            if get_json(url + "/health").get("status") == "ok":
                break
        except (OSError, ValueError):
            pass
        if server.poll() is not None or time.perf_counter() - t > args.startup:
            stop_service(server)
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"cxrneo serve did not come up within {args.startup:.0f} s:\n{tail}")
        time.sleep(0.2)
    return server, url, time.perf_counter() - t


def stop_service(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)


def client(url: str, ids: list[str], seed: int, k: int, timeout: float, running: threading.Event,
           out: list[tuple[float, float, int]]) -> None:
    """Stored-id queries, knn and community in alternation, while ``running`` is set (bounded in count)."""
    rng = np.random.default_rng(seed)
    for n in range(MAX_PER_CLIENT):
        if not running.is_set():
            return
        body = json.dumps({"id": ids[int(rng.integers(len(ids)))], "k": k, "method": METHODS[(n + seed) % 2]})
        t = time.perf_counter()
        reply = send(url + "/query", body.encode(), "application/json", timeout)
        out.append((t, reply.seconds, reply.status))


def run_clients(url: str, ids: list[str], args: argparse.Namespace, running: threading.Event,
                seed: int) -> tuple[list[threading.Thread], list[list[tuple[float, float, int]]]]:
    outs: list[list[tuple[float, float, int]]] = [[] for _ in range(args.clients)]
    threads = [threading.Thread(target=client, args=(url, ids, seed + i, args.k, args.timeout, running, outs[i]),
                                name=f"client-{i}", daemon=True) for i in range(args.clients)]
    for th in threads:
        th.start()
    return threads, outs


def summary(outs: list[list[tuple[float, float, int]]], wall: float) -> dict[str, Any]:
    got = [x for out in outs for x in out]
    lat = np.array([s for _, s, _ in got]) * 1e3 if got else np.array([np.nan])
    statuses: dict[str, int] = {}
    for _, _, st in got:
        statuses[str(st)] = statuses.get(str(st), 0) + 1
    return {
        "queries": len(got), "seconds": wall, "qps": len(got) / wall if wall > 0 else float("nan"),
        "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(np.max(lat)),
        "errors": sum(n for st, n in statuses.items() if st != "200"), "statuses": statuses,
    }


class RssSampler:
    """VmRSS of a process every SAMPLE_S seconds, in a thread, until stopped (or ``limit`` seconds)."""

    def __init__(self, pid: int, limit: float) -> None:
        self.pid, self.limit = pid, limit
        self.samples: list[tuple[float, int]] = []
        self._on = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> "RssSampler":
        self.t0 = time.perf_counter()
        self._on.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        while self._on.is_set() and time.perf_counter() - self.t0 < self.limit:
            self.samples.append((time.perf_counter() - self.t0, proc_kb(self.pid, "VmRSS")))
            time.sleep(SAMPLE_S)

    def __exit__(self, *_: object) -> None:
        self._on.clear()
        self._thread.join(5)

    def peak_kb(self) -> int:
        return max((kb for _, kb in self.samples), default=0)


def phase_a(url: str, ids: list[str], pid: int, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    running = threading.Event()
    running.set()
    before = proc_kb(pid, "VmRSS")
    t = time.perf_counter()
    with RssSampler(pid, args.seconds + args.timeout + 60) as rss:
        threads, outs = run_clients(url, ids, args, running, args.seed)
        time.sleep(args.seconds)
        running.clear()
        for th in threads:
            th.join(args.timeout + 10)
    memory = {"rss_before_mb": before / 1024, "rss_peak_mb": rss.peak_kb() / 1024,
              "rss_growth_mb": (rss.peak_kb() - before) / 1024, "rss_mb_by_second": by_second(rss.samples)}
    return summary(outs, time.perf_counter() - t), memory


def phase_b(url: str, ids: list[str], items: list[Hostile], pid: int,
            args: argparse.Namespace) -> tuple[dict[str, Any], list[list[Reply]], dict[str, Any]]:
    """The clients again, beside one thread sending the hostile corpus (at least one whole pass, then
    more until the phase's SECONDS are over, unless --once), and the RSS sampler."""
    replies: list[list[Reply]] = [[] for _ in items]
    first_pass = threading.Event()
    hostile_done = threading.Event()
    rss_before = proc_kb(pid, "VmRSS")
    reset = reset_peak(pid)
    hwm_before = proc_kb(pid, "VmHWM")
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    # the hard cap: the phase, then a whole first pass even if every request ran to its timeout
    cap = deadline + len(items) * (args.timeout + 5) + 30

    def hostile() -> None:
        try:
            for n in range(MAX_PASSES):
                for i, h in enumerate(items):
                    if n and time.perf_counter() > deadline:
                        return
                    replies[i].append(send_early(url + h.path, h.body, h.kind, args.timeout))
                first_pass.set()
                if args.once:
                    return
        finally:
            first_pass.set()
            hostile_done.set()

    with RssSampler(pid, cap - t0 + 60) as sampler:
        running = threading.Event()
        running.set()
        threads, outs = run_clients(url, ids, args, running, args.seed)
        hostile_thread = threading.Thread(target=hostile, name="hostile", daemon=True)
        hostile_thread.start()
        while time.perf_counter() < cap:  # the clients run while the phase lasts and the first pass is not over
            if time.perf_counter() >= deadline and first_pass.is_set():
                break
            time.sleep(0.05)
        running.clear()
        for th in threads:
            th.join(args.timeout + 10)
        wall = time.perf_counter() - t0
        hostile_done.wait(max(0.0, cap - time.perf_counter()) + args.timeout + 10)
    samples = sampler.samples
    peak = sampler.peak_kb()
    peak_at = next((s for s, kb in samples if kb == peak), float("nan"))
    memory = {
        "rss_before_mb": rss_before / 1024, "rss_peak_mb": peak / 1024, "rss_growth_mb": (peak - rss_before) / 1024,
        "rss_peak_at_s": peak_at, "rss_after_mb": proc_kb(pid, "VmRSS") / 1024, "samples": len(samples),
        "hwm_reset": reset, "hwm_before_mb": hwm_before / 1024, "hwm_after_mb": proc_kb(pid, "VmHWM") / 1024,
        "hostile_finished": hostile_done.is_set(), "rss_mb_by_second": by_second(samples),
    }
    return summary(outs, wall), replies, memory


def by_second(samples: list[tuple[float, int]]) -> list[float]:
    """The highest RSS sample (MB) of every second of the phase."""
    peaks: dict[int, int] = {}
    for s, kb in samples:
        peaks[int(s)] = max(peaks.get(int(s), 0), kb)
    return [round(peaks[k] / 1024, 1) for k in sorted(peaks)]


def div(x: float, y: float) -> float:
    return x / y if y > 0 else float("nan")


def judge(replies: list[Reply], limit_s: float) -> bool:
    return bool(replies) and all(400 <= r.status < 500 and r.seconds < limit_s for r in replies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("codes", type=Path, help="the codes file that built the stored graph")
    ap.add_argument("--checkpoint", type=Path, default=None, help="passed to `cxrneo serve` (upload routes)")
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of each phase")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    ap.add_argument("--once", action="store_true", help="send the hostile corpus once instead of repeating it")
    ap.add_argument("--limit", type=float, default=1.0, help="a hostile request passes when 4xx within this many s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--startup", type=float, default=600.0, help="seconds `cxrneo serve` may take to come up")
    ap.add_argument("--corpus-dir", type=Path, default=None, help="where the hostile files are built (default: temp)")
    ap.add_argument("--log", type=Path, default=None,
                    help="the service's output (default: beside --json, else in the temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here as JSON")
    args = ap.parse_args()
    if not (0 < args.seconds <= 3600 and 1 <= args.clients <= 64 and 0 < args.timeout <= 600):
        raise SystemExit("--seconds in (0, 3600], --clients in [1, 64], --timeout in (0, 600]")

    cpu = cpu_model()
    load_avg = os.getloadavg()[0]
    codes = load(args.codes)
    ids = list(codes.ids)
    if not ids:
        raise SystemExit(f"{args.codes} holds no ids")
    with tempfile.TemporaryDirectory(prefix="cxrneo-hostile-") as tmp:
        folder = args.corpus_dir or Path(tmp) / "corpus"
        t = time.perf_counter()
        items = list(corpus(folder, ids[0]))
        built = time.perf_counter() - t
        log_path = args.log or Path(tmp) / "serve.log"
        server, url, up = start_service(args, log_path)
        try:
            health = get_json(url + "/health")
            warm = [send(url + "/query", json.dumps({"id": ids[i], "k": args.k, "method": METHODS[i % 2]}).encode(),
                         "application/json", args.timeout) for i in range(min(20, len(ids)))]
            a, memory_a = phase_a(url, ids, server.pid, args)
            time.sleep(1.0)
            b, replies, memory = phase_b(url, ids, items, server.pid, args)
            # after B, the corpus once more with no clients: each input's latency on an otherwise idle service
            time.sleep(1.0)
            alone = [send_early(url + h.path, h.body, h.kind, args.timeout) for h in items]
            memory["rss_after_alone_mb"] = proc_kb(server.pid, "VmRSS") / 1024
            alive = server.poll() is None
            try:
                after = get_json(url + "/health").get("status", "?")
            except (OSError, ValueError) as e:
                after = f"no answer ({type(e).__name__})"
        finally:
            stop_service(server)
        log_text = log_path.read_text(errors="replace")
        tracebacks = log_text.count("Traceback")
        if args.log is None:  # kept beside the JSON, else in the system's temporary folder
            kept = (args.json.with_suffix(".serve.log") if args.json
                    else Path(tempfile.gettempdir()) / f"cxrneo-hostile-serve-{os.getpid()}.log")
            kept.write_text(log_text)
            log_path = kept

    rows: list[dict[str, Any]] = []
    for h, rs, solo in zip(items, replies, alone, strict=True):
        statuses = sorted({r.status for r in rs})
        worst = max(rs, key=lambda r: r.seconds) if rs else None
        bad = next((r for r in rs if not (400 <= r.status < 500 and r.seconds < args.limit)), None)
        shown = bad or (rs[-1] if rs else None)
        rows.append({
            "name": h.name, "path": h.path, "bytes": len(h.body), "expected": h.status, "statuses": statuses,
            "repeats": len(rs), "max_ms": worst.seconds * 1e3 if worst else None,
            "alone": {"status": solo.status, "ms": solo.seconds * 1e3, "error": solo.error},
            "pass": judge(rs, args.limit), "error": shown.error if shown else "(not sent)",
            "replies": [{"status": r.status, "ms": r.seconds * 1e3, "error": r.error} for r in rs],
        })
    ratio = div(b["p99_ms"], a["p99_ms"])

    print(f"CPU: {cpu} ({os.cpu_count()} CPUs), load average {load_avg:.2f} at the start; {platform.node()}")
    print(f"graph: {health.get('images')} images, {health.get('edges')} edges, T = {health.get('threshold')}, "
          f"scan {health.get('scan')}; codes {args.codes} ({len(ids)} ids)")
    print(f"service: cxrneo serve on {url} ({'checkpoint ' + str(args.checkpoint) if args.checkpoint else 'no checkpoint'}),"
          f" up in {up:.1f} s; warm-up {len(warm)} queries ({sum(r.status == 200 for r in warm)} ok); "
          f"hostile corpus of {len(items)} requests built in {built:.1f} s")
    print(f"phases: {args.seconds:.0f} s each, {args.clients} clients (POST /query stored ids, k={args.k}, "
          f"knn/community alternating); in B one more thread sends the corpus "
          f"{'once' if args.once else 'over and over'}; per-request timeout {args.timeout:.0f} s")
    print(f"\n| hostile input | route | body | expected | status | max ms | repeats | 4xx and < {args.limit:g} s "
          "| alone after B: status, ms | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] >= 1e5 else f"{r['bytes'] / 1e3:.1f} kB"
        status = ",".join(str(s) for s in r["statuses"]) or "-"
        max_ms = f"{r['max_ms']:.0f}" if r["max_ms"] is not None else "-"
        print(f"| {r['name']} | {r['path']} | {size} | {r['expected']} | {status} | {max_ms} | {r['repeats']} | "
              f"{'pass' if r['pass'] else 'FAIL'} | {r['alone']['status']}, {r['alone']['ms']:.0f} | {r['error']} |")
    passed = sum(r["pass"] for r in rows)
    print(f"\nhostile inputs passing: {passed}/{len(rows)}")
    print("\n| clients | phase A (baseline) | phase B (with hostile) | B/A |")
    print("|---|---|---|---|")
    for key, label in (("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms")):
        print(f"| {label} | {a[key]:.1f} | {b[key]:.1f} | {div(b[key], a[key]):.2f} |")
    print(f"| queries/s | {a['qps']:.1f} | {b['qps']:.1f} | {div(b['qps'], a['qps']):.2f} |")
    print(f"| queries | {a['queries']} | {b['queries']} | |")
    print(f"| errors (non-200) | {a['errors']} | {b['errors']} | |")
    print(f"| phase wall s | {a['seconds']:.1f} | {b['seconds']:.1f} | |")
    print(f"\np99 B/A = {ratio:.2f} (aim <= 2.0: {'met' if ratio <= 2.0 else 'MISSED'}); client errors A {a['errors']}"
          f" {a['statuses']}, B {b['errors']} {b['statuses']}")
    m = memory
    print(f"service RSS: {m['rss_before_mb']:.0f} MB right before B, peak {m['rss_peak_mb']:.0f} MB during B at "
          f"{m['rss_peak_at_s']:.1f} s ({m['samples']} samples every {SAMPLE_S * 1e3:.0f} ms): growth "
          f"{m['rss_growth_mb']:+.0f} MB (aim < 300 MB: {'met' if m['rss_growth_mb'] < 300 else 'MISSED'}); "
          f"{m['rss_after_mb']:.0f} MB after B, {m['rss_after_alone_mb']:.0f} MB after the idle pass")
    ma = memory_a
    print(f"service RSS in phase A (no hostile): {ma['rss_before_mb']:.0f} MB at its start, peak "
          f"{ma['rss_peak_mb']:.0f} MB: growth {ma['rss_growth_mb']:+.0f} MB")
    trace = m["rss_mb_by_second"]
    print(f"service RSS during B, every {max(1, len(trace) // 10)} s (MB): "
          f"{' '.join(f'{x:.0f}' for x in trace[:: max(1, len(trace) // 10)])}")
    print(f"service VmHWM: {m['hwm_before_mb']:.0f} MB before B "
          f"({'reset by clear_refs' if m['hwm_reset'] else 'not reset: clear_refs not permitted'}), "
          f"{m['hwm_after_mb']:.0f} MB after B")
    print(f"service after B: {'alive' if alive else 'EXITED'}, /health {after}; log {log_path} "
          f"({tracebacks} tracebacks); hostile thread {'finished' if m['hostile_finished'] else 'STILL RUNNING'}")

    if args.json:
        doc = {
            "cpu": cpu, "cpus": os.cpu_count(), "load_average": load_avg, "host": platform.node(),
            "images": health.get("images"), "health": health, "codes": str(args.codes),
            "checkpoint": str(args.checkpoint) if args.checkpoint else None, "seconds": args.seconds,
            "clients": args.clients, "k": args.k, "once": args.once, "limit_s": args.limit, "startup_s": up,
            "hostile": rows, "hostile_passing": passed, "phase_a": a, "phase_b": b, "p99_ratio": ratio,
            "memory": memory, "memory_a": memory_a, "service_alive": alive, "health_after": after, "tracebacks": tracebacks,
            "log": str(log_path),
        }
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()
