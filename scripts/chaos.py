"""Chaos rounds: kill -9 `cxrneo ingest` and `cxrneo communities` at random moments, rerun them,
and check after every step that a query either refuses clearly or equals a clean build's answer.

WIPES the database that the CXRNEO_* settings point at (it runs `cxrneo db reset`): use a
private server. Every command is a real `cxrneo` process; kills are SIGKILL at a uniformly random
time within the command's measured clean duration, so they land in every phase (connecting,
computing edges, image batches, edge batches, index build, Louvain, materialisation, ...); half of
the kills instead land right after a random named statement of the command (CXRNEO_FAULT_AFTER).

    nice python scripts/chaos.py --codes synth.npz --rounds 50 --yes
    nice python scripts/chaos.py --codes synth.npz --rounds 50 --live --yes

With --live, one `cxrneo serve` process is started after the clean build and queried without a
pause for the whole run by --clients threads (every method, diffusion included, with and without
exclude_patient; its clean answers recorded by a fresh service on the clean build): every answer
must be a one-line 503 or exactly the clean one, every round must end with it answering, and the
same process must still be serving at the end (it is never restarted).

A round starts from an empty database (70%: reset, ingest killed up to twice, sometimes with a
second concurrent ingest, rerun, then communities killed up to twice, rerun) or from the complete
graph (30%: `communities --no-reseed` killed, rerun). After every kill and every rerun one random
query (stored id x method) runs through `cxrneo query ID --json`: rc 0 must give exactly the clean
build's hits, rc 1 must be one `error:` line; anything else is a crash. At the end of each round
the stored node and edge counts must equal the exact graph's, and two queries must answer (not
refuse) with the clean answers.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("community", "hybrid", "knn")


def _cxrneo() -> list[str]:
    # the same interpreter and flags (-S: run a snapshot of the code from PYTHONPATH)
    return [sys.executable, *(["-S"] if sys.flags.no_site else []), "-m", "cxrneo.cli.main"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CXRNEO_FAULT_AFTER", None)
    env.pop("CXRNEO_DEBUG", None)
    return env


def run(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_cxrneo(), *args], capture_output=True, text=True, timeout=timeout, env=_env())


def must(args: list[str]) -> subprocess.CompletedProcess[str]:
    r = run(args)
    if r.returncode != 0:
        raise SystemExit(f"`cxrneo {' '.join(args)}` failed (rc {r.returncode}): {r.stderr.strip()[-500:]}")
    return r


# Statements after which a writer may be killed (CXRNEO_FAULT_AFTER), with how many times each
# runs at most in one command of this script (2,000 codes, --batch 2000).
FAULTS = {
    "ingest": {"claim_writer_lease": 1, "begin_graph_write": 1, "merge_images": 2, "match_image_element_ids": 1,
               "create_similar_edges": 10, "merge_similar_edges": 3, "create_image_code_index": 1,
               "await_indexes": 2, "count_graph": 1, "merge_graph_meta": 1},
    "communities": {"claim_writer_lease": 1, "list_projections": 1, "begin_graph_write": 1,
                    "project_similarity_graph": 1, "write_louvain": 1, "drop_projection": 1,
                    "count_community_pairs": 1, "drop_communities": 1, "create_communities": 1,
                    "create_linked_edges": 1, "write_palette_labels": 1, "count_communities": 1},
}


def kill_at_random(args: list[str], within: float, rng: random.Random) -> tuple[bool, str, int]:
    """Start `cxrneo args` and kill it with SIGKILL: half the time at a random moment in
    [0, within), half the time right after a random named statement (CXRNEO_FAULT_AFTER);
    returns (killed, where, rc)."""
    env = _env()
    if rng.random() < 0.5:
        name, most = rng.choice(sorted(FAULTS[args[0]].items()))
        nth = rng.randint(1, most)
        env["CXRNEO_FAULT_AFTER"] = f"{name}:{nth}"
        proc = subprocess.Popen([*_cxrneo(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        proc.wait()
        return proc.returncode == -signal.SIGKILL, f"after {name}:{nth}", proc.returncode
    proc = subprocess.Popen([*_cxrneo(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    at = rng.uniform(0, within)
    try:
        proc.wait(timeout=at)
        return False, f"by {at:.1f} s", proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, f"at {at:.1f} s", proc.returncode


def lease_left() -> bool:
    """Whether a killed writer left its lease behind (it was killed while holding it, i.e. in
    its write phase)."""
    from cxrneo.db.connection import Database
    from cxrneo.settings import Settings

    with Database.connect(Settings()) as db:
        return bool(db.read("fetch_writer_lease"))


def query(qid: str, method: str, k: int) -> tuple[str, Any]:
    """('ok', [hit ids]) | ('refused', message) | ('crash', output)."""
    r = run(["query", qid, "--json", "--method", method, "-k", str(k)], timeout=600)
    if r.returncode == 0:
        try:
            doc = json.loads(r.stdout.strip().splitlines()[-1])
            return "ok", [h["image_id"] for h in doc["hits"]]
        except (ValueError, KeyError, IndexError):
            return "crash", r.stdout[-300:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "):
        return "refused", lines[0]
    return "crash", f"rc {r.returncode}: {r.stderr.strip()[-300:]}"


class Tally:
    def __init__(self, clean: dict[tuple[str, str], list[str]], k: int, rng: random.Random) -> None:
        self.clean, self.k, self.rng = clean, k, rng
        self.n: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.refusals: Counter[str] = Counter()

    def check(self, where: str, must_answer: bool = False) -> None:
        qid, method = self.rng.choice(sorted(self.clean))
        kind, got = query(qid, method, self.k)
        if kind == "ok":
            kind = "equal" if got == self.clean[(qid, method)] else "wrong"
        elif kind == "refused":
            self.refusals[got.split(":", 2)[1].strip()[:60] if ":" in got else got] += 1
            if must_answer:
                kind = "refused_at_end"
        self.n[kind] += 1
        if kind not in ("equal", "refused"):
            self.events.append({"where": where, "query": qid, "method": method, "kind": kind, "got": got,
                                "clean": self.clean[(qid, method)]})
            print(f"  !! {where}: {qid} {method}: {kind}: {str(got)[:300]}; clean: "
                  f"{self.clean[(qid, method)]}", flush=True)


class Live:
    """One `cxrneo serve` process queried continuously from threads while the writers are killed."""

    METHODS = ("community", "hybrid", "knn", "diffusion")

    def __init__(self, clients: int, k: int, qids: list[str], rng: random.Random) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.k, self.qids, self.clients = k, qids, clients
        self.seed = rng.randrange(1 << 30)
        self.proc = subprocess.Popen([*_cxrneo(), "serve", "--port", str(self.port)], env=_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.clean: dict[tuple[str, str, bool], list[str]] = {}
        self.n: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def ask(self, qid: str, method: str, exclude: bool) -> tuple[str, Any]:
        """('ok', [hit ids]) | ('refused', line) | ('crash', what)."""
        body = json.dumps({"id": qid, "k": self.k, "method": method, "exclude_patient": exclude}).encode()
        req = urllib.request.Request(self.url + "/query", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return "ok", [h["image_id"] for h in json.loads(r.read())["hits"]]
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            lines = text.splitlines()
            try:
                one = e.code == 503 and len(lines) == 1 and list(json.loads(lines[0])) == ["error"]
            except ValueError:
                one = False
            return ("refused", json.loads(lines[0])["error"]) if one else ("crash", f"{e.code}: {text[:300]}")
        except (OSError, ValueError) as e:
            return "crash", f"{type(e).__name__}: {e}"

    def start(self) -> None:
        """Wait until the service answers, record its clean answers, start the clients."""
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"`cxrneo serve` exited with {self.proc.returncode}")
            kind, _ = self.ask(self.qids[0], "knn", False)
            if kind == "ok":
                break
            if time.monotonic() > deadline:
                raise SystemExit("`cxrneo serve` did not answer within 300 s")
            time.sleep(0.5)
        for qid in self.qids:
            for method in self.METHODS:
                for exclude in (False, True):
                    kind, hits = self.ask(qid, method, exclude)
                    if kind != "ok":
                        raise SystemExit(f"the live service did not answer {qid} {method} on the clean build: {hits}")
                    self.clean[(qid, method, exclude)] = hits
        for i in range(self.clients):
            th = threading.Thread(target=self._client, args=(random.Random(self.seed + i),), daemon=True)
            th.start()
            self.threads.append(th)

    def _client(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            key = rng.choice(sorted(self.clean))
            self.record(key, *self.ask(*key), where="while writers run")

    def record(self, key: tuple[str, str, bool], kind: str, got: Any, where: str) -> str:
        if kind == "ok":
            kind = "equal" if got == self.clean[key] else "wrong"
        with self.lock:
            self.n[kind] += 1
            if kind == "refused":
                self.refusals[str(got)[:60]] += 1
            elif kind != "equal":
                self.events.append({"where": where, "query": list(key), "kind": kind, "got": got,
                                    "clean": self.clean[key]})
                print(f"  !! live {where}: {key}: {kind}: {str(got)[:300]}", flush=True)
        return kind

    def answers_at_round_end(self, where: str, wait_s: float = 120) -> None:
        """Every clean (query, method, exclude) must answer again with its clean hits."""
        deadline = time.monotonic() + wait_s
        for key in sorted(self.clean):
            while True:
                kind, got = self.ask(*key)
                if kind != "refused" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if self.record(key, kind, got, where) != "equal":
                with self.lock:
                    self.n["not_answering_at_end"] += 1

    def close(self) -> dict[str, Any]:
        self.stop.set()
        for th in self.threads:
            th.join(600)
        alive = self.proc.poll() is None
        self.proc.terminate()
        self.proc.wait(30)
        return {"queries": dict(self.n), "refusals": dict(self.refusals), "clients": self.clients,
                "service_alive_at_end": alive, "service_pid": self.proc.pid, "events": self.events}


def counts() -> tuple[int, int, int]:
    from cxrneo.db.connection import Database
    from cxrneo.settings import Settings

    with Database.connect(Settings()) as db:
        c = db.read("count_graph")[0]
        communities = len(db.read("match_communities"))
    return int(c["nodes"]), int(c["edges"]), communities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codes", type=Path, required=True, help="codes file (e.g. from `cxrneo synth --n 2000`)")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=60.0, help="stop starting rounds after this long")
    ap.add_argument("--mean-degree", type=float, default=20.0)
    ap.add_argument("--queries", type=int, default=4, help="stored ids whose clean answers are recorded")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--live", action="store_true", help="also query one running `cxrneo serve` without a pause")
    ap.add_argument("--clients", type=int, default=4, help="--live: querying threads")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "chaos" / "report.json")
    ap.add_argument("--yes", action="store_true", help="really wipe the database the settings point at")
    a = ap.parse_args()
    if not a.yes:
        raise SystemExit("chaos.py wipes the database CXRNEO_NEO4J_URI points at: add --yes")
    rng = random.Random(a.seed)
    t_start = time.monotonic()

    from cxrneo.archive.codes import load
    from cxrneo.graph import normalise, similarity_edges, threshold_for_degree

    codes = load(a.codes)
    unit = normalise(codes.codes)
    t = float(threshold_for_degree(unit, a.mean_degree))
    exact = (len(codes), len(similarity_edges(unit, t)))
    ingest = ["ingest", str(a.codes), "--threshold", repr(t), "--batch", "2000"]
    print(f"{exact[0]} codes, T = {t:.6f}, exact graph {exact[1]} edges", flush=True)

    # the clean build and its answers
    must(["db", "reset", "--yes"])
    t0 = time.monotonic()
    must(ingest)
    ingest_s = time.monotonic() - t0
    t0 = time.monotonic()
    must(["communities"])
    communities_s = time.monotonic() - t0
    clean_counts = counts()
    if clean_counts[:2] != exact:
        raise SystemExit(f"the clean build holds {clean_counts[:2]}, expected {exact}")
    qids = rng.sample(codes.ids, a.queries)
    clean: dict[tuple[str, str], list[str]] = {}
    for qid in qids:
        for method in METHODS:
            kind, hits = query(qid, method, a.k)
            if kind != "ok":
                raise SystemExit(f"the clean build did not answer {qid} {method}: {hits}")
            clean[(qid, method)] = hits
    print(f"clean build: ingest {ingest_s:.1f} s, communities {communities_s:.1f} s, "
          f"{clean_counts[2]} communities; {len(clean)} clean answers", flush=True)

    tally = Tally(clean, a.k, rng)
    live = Live(a.clients, a.k, qids, rng) if a.live else None
    if live is not None:
        live.start()
        print(f"live service on {live.url} (pid {live.proc.pid}): {len(live.clean)} clean answers, "
              f"{a.clients} clients", flush=True)
    kills: Counter[str] = Counter()
    done, bad_counts, round_s = 0, 0, []
    for r in range(a.rounds):
        if time.monotonic() - t_start > a.minutes * 60:
            break
        t_round = time.monotonic()
        steps: list[str] = []
        from_empty = rng.random() < 0.7
        if from_empty:
            must(["db", "reset", "--yes"])
            for _ in range(rng.choice((1, 2))):
                twin = subprocess.Popen([*_cxrneo(), *ingest], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=_env()) if rng.random() < 0.25 else None
                killed, at, _ = kill_at_random(ingest, ingest_s * 1.1, rng)
                kills["ingest killed" if killed else "ingest finished before its kill"] += 1
                both = twin is not None
                if twin is not None:
                    twin.wait()
                    kills["concurrent second ingest"] += 1
                if killed and lease_left():
                    kills["ingest killed holding the lease"] += 1
                steps.append(f"ingest{' + twin' if both else ''} {'killed' if killed else 'done'} {at}")
                tally.check(f"round {r}: after a killed ingest")
            must(ingest)
            tally.check(f"round {r}: after the ingest rerun")
            comm = ["communities"]
        else:
            comm = ["communities", "--no-reseed"]
        for _ in range(rng.choice((1, 2))):
            killed, at, _ = kill_at_random(comm, communities_s * 1.1, rng)
            kills["communities killed" if killed else "communities finished before its kill"] += 1
            if killed and lease_left():
                kills["communities killed holding the lease"] += 1
            steps.append(f"communities {'killed' if killed else 'done'} {at}")
            tally.check(f"round {r}: after a killed community run")
        must(comm)
        got = counts()
        if got != clean_counts:
            bad_counts += 1
            tally.events.append({"where": f"round {r}", "kind": "counts", "got": got, "want": clean_counts})
            print(f"  !! round {r}: counts {got} != clean {clean_counts}", flush=True)
        tally.check(f"round {r}: end", must_answer=True)
        tally.check(f"round {r}: end", must_answer=True)
        if live is not None:
            live.answers_at_round_end(f"round {r}: end")
        done += 1
        round_s.append(time.monotonic() - t_round)
        print(f"round {r}: {'from empty' if from_empty else 'communities only'}, {round_s[-1]:.0f} s "
              f"[{'; '.join(steps)}], so far {dict(tally.n)}"
              f"{f', live {dict(live.n)}' if live is not None else ''}", flush=True)

    report = {
        "codes": len(codes), "edges": exact[1], "threshold": t, "communities": clean_counts[2],
        "rounds": done, "rounds_asked": a.rounds, "counts_wrong": bad_counts,
        "queries": dict(tally.n), "refusals": dict(tally.refusals), "kills": dict(kills),
        "seconds": time.monotonic() - t_start,
        "round_seconds_mean": sum(round_s) / len(round_s) if round_s else None,
        "events": tally.events,
    }
    if live is not None:
        report["live"] = live.close()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=2, default=str)[:4000])
    print(f"report: {a.out}")
    wrong = tally.n["wrong"] + tally.n["crash"] + tally.n["refused_at_end"] + bad_counts
    if live is not None:
        n = report["live"]["queries"]
        wrong += n.get("wrong", 0) + n.get("crash", 0) + n.get("not_answering_at_end", 0)
        wrong += 0 if report["live"]["service_alive_at_end"] else 1
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
