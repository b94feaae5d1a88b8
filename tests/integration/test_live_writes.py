"""Readers never answer from a mix: a live `cxrneo serve` process, queried from 8 threads while real
`cxrneo ingest` and `cxrneo communities` processes change the graph under it.

Every answer must be a one-line 503 or equal what an independent clean reader answers at the
generation the answer reports: exact kNN over the images of that generation for kNN, and for the
community methods the answer of a fresh Searcher (empty cache) in the quiet state before or after.
"""

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes, save
from cxrneo.db.communities import detect
from cxrneo.db.connection import FAULT_ENV, Database
from cxrneo.db.ingest import ingest
from cxrneo.db.meta import graph_meta
from cxrneo.graph import normalise, similarity_edges, threshold_for_degree
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.serving import free_port
from tests.unit.test_evaluate import make_codes

pytestmark = pytest.mark.neo4j
K = 8
METHODS = ("knn", "community", "hybrid", "diffusion")
CLIENTS = 8


def _env(s: Settings, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "CXRNEO_NEO4J_URI": s.neo4j_uri, "CXRNEO_NEO4J_USER": s.neo4j_user,
           "CXRNEO_NEO4J_PASSWORD": s.password(), "CXRNEO_NEO4J_DATABASE": s.neo4j_database,
           "CXRNEO_DATA_DIR": str(data_dir)}
    for name in (FAULT_ENV, "CXRNEO_DEBUG", "CXRNEO_API_TOKEN"):
        env.pop(name, None)
    return env


def _post(url: str, body: dict[str, object]) -> tuple[int, str]:
    req = urllib.request.Request(url + "/query", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _exact(codes: Codes, query: str, k: int) -> list[str]:
    unit = normalise(codes.codes)
    row = codes.ids.index(query)
    cos = unit @ unit[row]
    cos[row] = -np.inf
    return [codes.ids[i] for i in np.argsort(-cos, kind="stable")[:k]]


def _quiet(s: Settings, cache: Path, queries: list[str]) -> dict[tuple[str, str], list[str]]:
    """What a fresh reader (new process state, empty snapshot cache) answers now."""
    searcher = Searcher.connect(s.model_copy(update={"data_dir": cache}))
    try:
        return {(q, m): [h.image_id for h in searcher.by_id(q, QueryOptions(k=K, method=m)).hits]
                for q in queries for m in METHODS}
    finally:
        searcher.close()


def test_readers_never_answer_from_a_mix_while_ingest_and_communities_run(
    clean_db: Database, neo4j_settings: Settings, tmp_path: Path
) -> None:
    full = make_codes(500, seed=4)
    first = full.subset(np.arange(350))
    t = float(threshold_for_degree(normalise(full.codes), 10))
    ingest(clean_db, first, similarity_edges(normalise(first.codes), t), t)
    detect(clean_db)
    before_meta = graph_meta(clean_db)
    assert before_meta is not None
    queries = [first.ids[i] for i in range(0, 350, 35)]
    before = _quiet(neo4j_settings, tmp_path / "quiet-before", queries)
    save(tmp_path / "full.npz", full)

    env = _env(neo4j_settings, tmp_path / "serve")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "cxrneo.cli.main"]
    service = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    log: list[tuple[str, str, int, str]] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            q, m = rng.choice(queries), rng.choice(METHODS)
            status, body = _post(url, {"id": q, "k": K, "method": m})
            log.append((q, m, status, body))

    try:
        deadline = time.monotonic() + 120
        while _status(url) != 200:
            assert service.poll() is None and time.monotonic() < deadline, service.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.3)
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for th in threads:
            th.start()
        time.sleep(1.5)
        for args in (["ingest", str(tmp_path / "full.npz"), "--threshold", repr(t), "--batch", "200"],
                     ["communities"]):
            r = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr
        time.sleep(2.0)
        stop.set()
        for th in threads:
            th.join(150)
        assert service.poll() is None, "the service died"
    finally:
        stop.set()
        service.terminate()
        service.wait(30)
    after_meta = graph_meta(clean_db)
    assert after_meta is not None and after_meta.generation > before_meta.generation
    after = _quiet(neo4j_settings, tmp_path / "quiet-after", queries)
    clean = {(before_meta.generation, before_meta.communityGeneration): before,
             (after_meta.generation, after_meta.communityGeneration): after}

    wrong, refused, answered = [], 0, set()
    for q, m, status, body in log:
        if status == 503:
            (line,) = body.splitlines()
            assert list(json.loads(line)) == ["error"], body
            refused += 1
            continue
        assert status == 200, (status, body)
        answer = json.loads(body)
        got = [h["image_id"] for h in answer["hits"]]
        state = (answer["generation"], answer["communityGeneration"])
        answered.add(state)
        if m == "knn":  # exact over the images the graph held at that generation
            want = _exact(first if state[0] == before_meta.generation else full, q, K)
        elif state in clean:
            want = clean[state][(q, m)]
        else:
            want = None  # a community method answered at a state no clean reader could: wrong
        if got != want:
            wrong.append((q, m, state, got, want))
    assert not wrong, f"{len(wrong)} wrong answers of {len(log)}, first: {wrong[0]}"
    # the test saw the writes: answers before and after them, and refusals or new-generation kNN between
    assert set(clean) <= answered, (answered, set(clean))
    assert refused > 0 or answered - set(clean), "no answer fell inside the writes"
    assert len(log) > 200


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            return int(json.loads(r.read()).get("status") == "ok") * 200 or 503
    except (OSError, ValueError):
        return 0
