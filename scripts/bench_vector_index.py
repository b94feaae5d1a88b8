"""What Neo4j spends after a command returns: CPU seconds and the time until it idles.

Runs COMMAND (e.g. `cxrneo ingest codes.npz`) against the local server of $CXRNEO_DATA_DIR, samples
the server's CPU (/proc/PID/stat) every --every seconds during and after it, and stops once the
server has spent less than --idle CPU seconds in each of --quiet consecutive windows. Prints the
CPU during the command, the CPU after it, the seconds until the server idled and the threads that
spent most after it (Lucene's merge threads are named "Lucene Merge Thread #n"). CPU seconds of
the server's own process stay meaningful on a machine shared with other work; wall times do not.

  python scripts/bench_vector_index.py -- cxrneo ingest codes.npz --mean-degree 50
"""

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from cxrneo.cli.jobs import server_config
from cxrneo.db import server
from cxrneo.settings import Settings

TICK = os.sysconf("SC_CLK_TCK")


def cpu(stat: Path) -> float:
    """User + system CPU seconds in a /proc stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def threads(pid: int) -> Counter[str]:
    """CPU seconds per thread name (threads of one name summed)."""
    out: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[name.rstrip("0123456789 #-")] += cpu(task / "stat")
        except OSError:
            continue  # a thread that ended between the listing and the read
    return out


def top(before: Counter[str], after: Counter[str], n: int = 4) -> str:
    """The n thread names that spent most CPU between two readings."""
    spent = sorted(((after[k] - before.get(k, 0.0), k) for k in after), reverse=True)[:n]
    return ", ".join(f"{k} {v:.1f} s" for v, k in spent)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--idle", type=float, default=0.3, help="CPU seconds per window below which the server is idle")
    p.add_argument("--quiet", type=int, default=3, help="idle windows in a row that end the watch")
    p.add_argument("--limit", type=float, default=3600.0, help="give up watching after this many seconds")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --); none: just watch")
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    pid = server.running_pid(server_config(Settings()))
    if pid is None:
        sys.exit("no local server runs for $CXRNEO_DATA_DIR")
    stat = Path(f"/proc/{pid}/stat")
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    print(next((line for line in lscpu if line.startswith("Model name")), "Model name: ?"), "| load",
          os.getloadavg(), flush=True)
    c0, t0, start = cpu(stat), time.monotonic(), threads(pid)
    if command:
        run = subprocess.Popen(command)
        while run.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - t0 > a.limit:
                run.kill()
        if run.returncode != 0:
            sys.exit(f"the command failed ({run.returncode})")
    c1, t1 = cpu(stat), time.monotonic()
    before = threads(pid)
    print(f"command: {t1 - t0:.1f} s wall, server {c1 - c0:.1f} CPU s", flush=True)
    print("  threads: " + top(start, before), flush=True)
    quiet, last, idle_at = 0, c1, None
    while quiet < a.quiet and time.monotonic() - t1 < a.limit:
        time.sleep(a.every)
        now = cpu(stat)
        spent, last = now - last, now
        quiet = quiet + 1 if spent < a.idle else 0
        if quiet == 1:
            idle_at = time.monotonic() - a.every  # the start of the first window of the quiet run
        print(f"  +{time.monotonic() - t1:6.0f} s  {spent:5.1f} CPU s in {a.every:.0f} s", flush=True)
    busy = (idle_at - t1) if idle_at is not None else float("nan")
    print(f"after the command: server {last - c1:.1f} CPU s; idle {max(busy, 0.0):.0f} s after it returned "
          f"(windows of {a.every:.0f} s below {a.idle} CPU s)")
    print("  threads: " + top(before, threads(pid)))


if __name__ == "__main__":
    main()
