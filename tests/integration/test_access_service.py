"""Who saw which patient, on a real `cxrneo serve` process over a real Neo4j: users made with the CLI,
the audit trail of a service killed with kill -9 while 8 clients query (it verifies and holds every
answer that left), and HTTPS with a certificate the test makes."""

import http.client
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cxrneo.db.connection import Database
from cxrneo.settings import Settings
from tests.certs import self_signed
from tests.integration.test_hostile import IMAGES
from tests.integration.test_query_image import sample_graph
from tests.serving import free_port

pytestmark = pytest.mark.neo4j
CLI = str(Path(sys.executable).with_name("cxrneo"))
CLIENTS = 8


def _env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CXRNEO_API_TOKEN"}
    return {**env, "CXRNEO_NEO4J_URI": settings.neo4j_uri, "CXRNEO_NEO4J_PASSWORD": settings.password(),
            "CXRNEO_DATA_DIR": str(data_dir)}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def _call(url: str, key: str | None, body: Any = None, context: ssl.SSLContext | None = None,
          timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _serve(env: dict[str, str], ckpt: Path, port: int, *flags: str,
           context: ssl.SSLContext | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([CLI, "serve", "--port", str(port), "--checkpoint", str(ckpt), "--images", str(IMAGES),
                                *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scheme = "https" if context else "http"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cxrneo serve exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if _call(f"{scheme}://127.0.0.1:{port}/health", None, context=context, timeout=5)[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("cxrneo serve did not answer")


@pytest.fixture(scope="module")
def built(neo4j_db: Database, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("access")
    return sample_graph(neo4j_db, neo4j_settings, tmp)


def test_a_killed_service_keeps_a_verified_entry_for_every_answer_it_gave(
        built: tuple[Path, list[str]], neo4j_settings: Settings, tmp_path: Path) -> None:
    ckpt, ids = built
    env = _env(neo4j_settings, tmp_path)
    keys = {}
    for n in range(CLIENTS):
        made = _cli(env, "users", "add", f"client{n}", "--role", "viewer")
        assert made.returncode == 0, made.stderr
        keys[f"client{n}"] = made.stdout.strip().splitlines()[-1]
    port = free_port()
    service = _serve(env, ckpt, port)
    got: dict[str, list[int]] = {name: [] for name in keys}
    stop = threading.Event()

    def client(name: str) -> None:
        n = 0
        while not stop.is_set():
            try:
                status, headers, _ = _call(f"http://127.0.0.1:{port}/query", keys[name],
                                           {"id": ids[n % len(ids)], "k": 5}, timeout=10)
            except OSError:
                return  # the service is gone
            assert status == 200
            got[name].append(int(headers["x-audit-entry"]))
            n += 1

    threads = [threading.Thread(target=client, args=(name,)) for name in keys]
    for t in threads:
        t.start()
    time.sleep(6)
    service.kill()  # SIGKILL, mid-stream
    service.wait(30)
    stop.set()
    for t in threads:
        t.join(30)
    trail = tmp_path / "audit" / "audit.jsonl"
    verified = _cli(env, "audit", "verify", str(trail))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = trail.read_bytes().split(b"\n")
    entries = [json.loads(line) for line in lines if line.strip() and line.endswith(b"}")]
    answered = sum(len(v) for v in got.values())
    assert answered > CLIENTS
    for name, seqs in got.items():
        mine = {e["seq"]: e for e in entries if e.get("user") == name}
        assert set(seqs) <= set(mine), name  # every answer that left has its entry
        assert all(mine[s]["status"] == 200 and mine[s]["route"] == "/query" and mine[s]["ids"] for s in seqs)
        assert 0 <= len(mine) - len(seqs) <= 1, name  # at most the one request in flight when killed
    print(f"\n[audit] {answered} answers received by {CLIENTS} clients, "
          f"{sum(1 for e in entries if str(e.get('user', '')).startswith('client'))} entries for them")


def test_serve_speaks_https_with_the_given_certificate(built: tuple[Path, list[str]], neo4j_settings: Settings,
                                                       tmp_path: Path) -> None:
    ckpt, ids = built
    env = _env(neo4j_settings, tmp_path)
    key = _cli(env, "users", "add", "reader", "--role", "viewer").stdout.strip().splitlines()[-1]
    cert, private = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    service = _serve(env, ckpt, port, "--tls-cert", str(cert), "--tls-key", str(private), context=context)
    try:
        status, headers, body = _call(f"https://127.0.0.1:{port}/images/{ids[0]}", key, context=context)
        assert status == 200 and json.loads(body)["patientId"]
        assert {k.lower(): v for k, v in headers.items()}["cache-control"] == "no-store"
        with pytest.raises((OSError, http.client.HTTPException)):
            _call(f"http://127.0.0.1:{port}/health", None, timeout=5)  # no plain HTTP on that port
        with pytest.raises(urllib.error.URLError):  # a client that does not trust the certificate refuses it
            _call(f"https://127.0.0.1:{port}/health", None, context=ssl.create_default_context(), timeout=5)
    finally:
        service.kill()
        service.wait(30)
