"""One `cxrneo watch` per codes file: a second is refused at once in one line naming the holder,
and a killed holder's lock is gone with it (the kernel drops a flock with its process)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, time
from pathlib import Path
from cxrneo.archive.exclusive import watching
with watching(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def _watch(codes: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXRNEO_")}
    cmd = [sys.executable, "-m", "cxrneo", "watch", "--dicomweb", "http://127.0.0.1:9/",
           "--checkpoint", str(tmp_path / "no-such.pt"), "--codes", str(codes), "--once"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_second_watch_on_one_codes_file_is_refused_until_the_first_is_killed(tmp_path: Path) -> None:
    codes = tmp_path / "codes.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "." / "codes.npz")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = _watch(codes, tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: another cxrneo watch is using {codes} (pid {holder.pid})"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    after = _watch(codes, tmp_path)  # the lock died with its holder: this watch gets past it
    assert after.returncode == 1 and after.stderr.startswith("error: ")
    assert "another cxrneo watch" not in after.stderr, after.stderr
