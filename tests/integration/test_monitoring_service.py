"""How a hospital's IT watches `cxrneo serve`: a real Prometheus (Debian's package, installed by
scripts/setup.sh) started by the test on loopback scrapes a real service process over a real Neo4j
with a monitor key, and its HTTP API answers what the service did; the service's JSON log of the same
run names no patient, image or file."""

import csv
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cxrneo.api.logs import REQUEST_FIELDS
from cxrneo.db.connection import Database
from cxrneo.db.meta import graph_meta
from cxrneo.settings import Settings
from tests.hostile import multipart
from tests.integration.test_access_service import _call, _cli, _env, _serve
from tests.integration.test_hostile import IMAGES
from tests.integration.test_query_image import EXAMPLES, sample_graph
from tests.serving import free_port

pytestmark = pytest.mark.neo4j
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@pytest.fixture(scope="module")
def built(neo4j_db: Database, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    return sample_graph(neo4j_db, neo4j_settings, tmp_path_factory.mktemp("monitoring"))


def _scrape_config(port: int, key_file: Path, wrong_file: Path) -> str:
    """Two jobs on the same service: the monitor's key, and a wrong key (whose target must be down)."""
    jobs = []
    for name, credentials in (("cxrneo", key_file), ("cxrneo-wrong-key", wrong_file)):
        jobs.append(f"""  - job_name: {name}
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {credentials}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
    return "global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(jobs)


@contextmanager
def prometheus(folder: Path, service_port: int, key: str) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping the service every second; its URL."""
    assert Path(PROMETHEUS).is_file(), "Prometheus is missing: run scripts/setup.sh (Debian's prometheus package)"
    folder.mkdir()
    key_file, wrong_file = folder / "cxrneo.key", folder / "wrong.key"
    key_file.write_text(key)
    wrong_file.write_text("cxrneo_nobody_" + "w" * 32)
    for f in (key_file, wrong_file):
        f.chmod(0o600)
    (folder / "prometheus.yml").write_text(_scrape_config(service_port, key_file, wrong_file))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=(folder / "prometheus.log").open("wb"))
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _promql(url: str, query: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def _eventually(url: str, query: str, want: float, seconds: float = 90) -> list[dict[str, Any]]:
    """The query's result once its (single) value is ``want``: Prometheus scrapes every second."""
    deadline = time.monotonic() + seconds
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = _promql(url, query)
        if len(result) == 1 and float(result[0]["value"][1]) == want:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{query}: {result}, wanted {want}")


def _queries(url: str, key: str, ids: list[str], patients: list[str]) -> tuple[int, list[str]]:
    """A run of the page's requests: stored ids, uploads (one under a person's name), filters (one naming
    patients), records, pixels, maps and the neighbourhood; the number of POST /query answered 200, and
    the upload names."""
    ok = 0
    for n, image_id in enumerate(ids[:6]):
        body = {"id": image_id, "k": 4, "method": ("community", "knn", "hybrid", "diffusion")[n % 4]}
        ok += _call(url + "/query", key, body)[0] == 200
    ok += _call(url + "/query", key, {"ids": ids[6:8], "not_ids": ids[8:9], "k": 3})[0] == 200
    ok += _call(url + "/query", key, {"id": ids[9], "filter": {"views": ["PA"], "not_patients": patients[:2]}})[0] == 200
    names = ["Doe-Jane-1957-03-02.png", ids[10]]  # a file named after a person; an archived film under its name
    for name, source in zip(names, ids[10:12], strict=True):
        form, kind = multipart([(name, (IMAGES / source).read_bytes())])
        ok += _upload(url + "/query", key, form, kind) == 200
    for path in (f"/images/{ids[12]}", f"/images/{ids[13]}/pixels?size=64", f"/explain?query={ids[14]}&hit={ids[15]}"
                 "&format=json"):
        assert _call(url + path, key)[0] == 200, path
    assert _call(url + "/subgraph", key, {"ids": ids[16:19]})[0] == 200
    assert _call(url + "/query", key, {"id": "no-such-image.png"})[0] == 404
    return ok, names


def _upload(url: str, key: str, body: bytes, kind: str) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": kind,
                                                                         "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return int(r.status)


def _patients(ids: list[str]) -> set[str]:
    with open(EXAMPLES / "Data_Entry_2017.csv", newline="") as f:
        return {row["Patient ID"].strip() for row in csv.DictReader(f) if row["Image Index"] in ids}


def test_prometheus_scrapes_the_service_and_its_log_names_no_patient(
        built: tuple[Path, list[str]], neo4j_settings: Settings, neo4j_db: Database, tmp_path: Path) -> None:
    ckpt, ids = built
    env = _env(neo4j_settings, tmp_path)
    keys = {}
    for name, role in (("prometheus", "monitor"), ("vera", "viewer")):
        made = _cli(env, "users", "add", name, "--role", role)
        assert made.returncode == 0, made.stderr
        keys[name] = made.stdout.strip().splitlines()[-1]
    log = tmp_path / "log" / "cxrneo.jsonl"
    port = free_port()
    service = _serve(env, ckpt, port, "--log-format", "json", "--log-file", str(log))
    url = f"http://127.0.0.1:{port}"
    try:
        assert _call(url + "/metrics", None)[0] == 401  # a credential is configured: none is refused
        assert _call(url + "/query", keys["prometheus"], {"id": ids[0]})[0] == 403  # the monitor sees no patient
        with prometheus(tmp_path / "prometheus", port, keys["prometheus"]) as prom:
            sent, uploads = _queries(url, keys["vera"], ids, sorted(_patients(ids)))
            assert sent == 10
            _eventually(prom, 'sum(cxrneo_http_requests_total{job="cxrneo",route="/query",method="POST",status="200"})',
                        sent)
            _eventually(prom, 'sum(cxrneo_query_duration_seconds_count{job="cxrneo"})', sent)
            _eventually(prom, 'cxrneo_http_requests_total{job="cxrneo",route="/query",status="404"}', 1)
            _eventually(prom, 'up{job="cxrneo-wrong-key"}', 0)  # its scrapes are answered 401
            health = json.loads(_call(url + "/health", keys["vera"])[2])
            kernel = _promql(prom, 'cxrneo_scan_kernel_info{job="cxrneo"}')
            assert [k["metric"]["kernel"] for k in kernel] == [health["scan"]]
            meta = graph_meta(neo4j_db)
            assert meta is not None
            for name, value in (("cxrneo_graph_generation", meta.generation), ("cxrneo_graph_images", meta.nodes),
                                ("cxrneo_graph_edges", meta.edges)):
                _eventually(prom, f'{name}{{job="cxrneo"}}', value, seconds=10)
            _eventually(prom, 'cxrneo_cache_misses_total{job="cxrneo",cache="image_png"}', 1, seconds=10)
            labels = {v for s in _promql(prom, '{job="cxrneo"}') for v in s["metric"].values()}
    finally:
        service.terminate()
        service.wait(30)
    patients = _patients(ids)
    text = log.read_text()
    for secret in {*ids, *(i.removesuffix(".png") for i in ids), *uploads, "Doe", "no-such-image"}:
        assert secret not in text, secret
        assert secret not in labels, secret
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [d for d in lines if "route" in d]
    assert len(requests) >= sent + 8 and all(tuple(d) == REQUEST_FIELDS for d in requests)
    assert all(set(d) == {"time", "level", "logger", "message"} or "error" in d for d in lines if "route" not in d)
    assert {d["route"] for d in requests} >= {"/query", "/images/{image_id}", "/images/{image_id}/pixels",
                                              "/explain", "/subgraph", "/metrics"}
    assert {d["retrieval"] for d in requests if d["route"] == "/query" and d["status"] == 200} == \
           {"community", "knn", "hybrid", "diffusion"}
    assert {d["user"] for d in requests if d["route"] == "/metrics" and d["status"] == 200} == {"prometheus"}
    for d in lines:  # patient ids are short numbers here: no string of any line holds one as a word
        words = {w for k, v in d.items() if k != "time" and isinstance(v, str) for w in re.findall(r"\w+", v)}
        assert not words & patients, (d, words & patients)
