"""GET /metrics and the JSON request log over real HTTP (an app over an in-memory archive, no Neo4j): who
may read the metrics, what they count, that no label and no log line carries an image, patient, user
or path. `-k monitoring` selects these; the scrape by a real Prometheus is in
tests/integration/test_monitoring_service.py."""

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cxrneo.access.authenticate import Authenticator
from cxrneo.access.identity import Role
from cxrneo.access.users import UserStore
from cxrneo.api.app import create_app
from cxrneo.api.logs import REQUEST_FIELDS, LogSink
from cxrneo.service.searcher import Searcher
from tests.hostile import multipart
from tests.serving import Running
from tests.unit.test_routes import _archive

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _call(url: str, body: Any = None, key: str | None = None,
          raw: tuple[bytes, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data, kind = raw if raw else ((json.dumps(body).encode(), "application/json") if body is not None else (None, ""))
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if kind:
        req.add_header("Content-Type", kind)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture()
def archive_dir(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    return images


@pytest.fixture()
def open_service(archive_dir: Path) -> Iterator[tuple[Running, io.StringIO]]:
    """No authentication configured, on loopback (the local operator's service), with a JSON log."""
    stream = io.StringIO()
    app = create_app(Searcher(_archive(60, 0, archive_dir), images=archive_dir),  # type: ignore[arg-type]
                     log=LogSink(stream))
    with Running(app) as running:
        yield running, stream


def test_monitoring_counts_requests_by_route_template_and_queries_by_method(
        open_service: tuple[Running, io.StringIO]) -> None:
    running, _ = open_service
    url = running.url
    sent = [("im003.png", "knn"), ("im010.png", "community"), ("im011.png", "diffusion"), ("im012.png", "knn")]
    for image_id, method in sent:
        assert _call(url + "/query", {"id": image_id, "k": 4, "method": method})[0] == 200
    assert _call(url + "/query", {"id": "im004.png", "k": 3, "filter": {"findings": ["Effusion"]}})[0] == 200
    assert _call(url + "/query", {"id": "nobody.png"})[0] == 404
    assert _call(url + "/images/im005.png")[0] == 200
    assert _call(url + "/images/im006.png/pixels?size=64")[0] == 200
    assert _call(url + "/images/im006.png/pixels?size=64")[0] == 200  # the PNG cache's hit
    assert _call(url + "/no/such/path/im007.png")[0] == 404
    status, headers, body = _call(url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    got = _samples(text)
    assert _value(got, "cxrneo_http_requests_total", route="/query", method="POST", status="200") == 5
    assert _value(got, "cxrneo_http_requests_total", route="/query", method="POST", status="404") == 1
    assert _value(got, "cxrneo_http_requests_total", route="/images/{image_id}", method="GET", status="200") == 1
    assert _value(got, "cxrneo_http_requests_total", route="/images/{image_id}/pixels", method="GET",
                  status="200") == 2
    assert _value(got, "cxrneo_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert _value(got, "cxrneo_query_duration_seconds_count", retrieval="knn") == 2
    assert _value(got, "cxrneo_query_duration_seconds_count", retrieval="community") == 2  # the filtered one too
    assert _value(got, "cxrneo_query_duration_seconds_count", retrieval="diffusion") == 1
    assert _value(got, "cxrneo_query_exact_rechecks_count") == 5
    assert _value(got, "cxrneo_scan_kernel_info", kernel="float32") == 1
    assert _value(got, "cxrneo_graph_generation") == 1 and _value(got, "cxrneo_graph_images") == 60
    assert _value(got, "cxrneo_cache_hits_total", cache="image_png") == 1
    assert _value(got, "cxrneo_cache_misses_total", cache="image_png") == 1
    assert _value(got, "cxrneo_cache_entries", cache="filter_subgraphs") <= 1
    assert _value(got, "cxrneo_heavy_capacity") == 10 and _value(got, "cxrneo_heavy_refused_total") == 0
    for secret in ("im003", "im005", "im006", "im007", "nobody", "p1", "Effusion", "local"):
        assert secret not in text, secret  # no image, patient, filter value or user in any label


def test_monitoring_log_has_one_json_line_per_request_and_no_identifier(
        open_service: tuple[Running, io.StringIO]) -> None:
    running, stream = open_service
    url = running.url
    calls = [(url + "/query", {"id": "im021.png", "k": 3}), (url + "/images/im022.png", None),
             (url + "/subgraph", {"ids": ["im023.png", "im024.png"]}), (url + "/explain?query=im025.png&hit=im026.png", None),
             (url + "/query", {"id": "im027.png", "filter": {"sex": "F"}}), (url + "/metrics", None)]
    for target, body in calls:
        _call(target, body)
    upload = multipart([("Doe-Jane-im028.png", b"not an image at all")])
    assert _call(url + "/images/render", raw=upload)[0] in (400, 422)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(calls) + 1
    docs = [json.loads(line) for line in lines]
    assert all(tuple(d) == REQUEST_FIELDS for d in docs)
    assert [d["route"] for d in docs] == ["/query", "/images/{image_id}", "/subgraph", "/explain", "/query",
                                          "/metrics", "/images/render"]
    assert docs[0]["retrieval"] == "community" and docs[0]["status"] == 200 and docs[0]["user"] == "local"
    assert all(len(d["request"]) == 16 and d["ms"] >= 0 and d["time"].endswith("Z") for d in docs)
    text = stream.getvalue()
    for secret in [f"im0{n}" for n in range(21, 29)] + ["Doe", "Jane", "p7", "p8", "sex", "query="]:
        assert secret not in text, secret


@pytest.fixture()
def guarded(archive_dir: Path, tmp_path: Path) -> Iterator[tuple[Running, dict[str, str], UserStore]]:
    """Users configured, as a service bound beyond loopback."""
    users = UserStore(tmp_path / "users.json")
    keys = {name: users.add(name, role) for name, role in (("prom", Role.MONITOR), ("vera", Role.VIEWER))}
    app = create_app(Searcher(_archive(24, 1, archive_dir), images=archive_dir),  # type: ignore[arg-type]
                     access=Authenticator(users=users, loopback=False))
    with Running(app) as running:
        yield running, keys, users


def test_monitoring_needs_the_monitor_role_beyond_loopback(
        guarded: tuple[Running, dict[str, str], UserStore]) -> None:
    running, keys, users = guarded
    url = running.url + "/metrics"
    assert _call(url)[0] == 401
    assert _call(url, key="cxrneo_nokey_" + "z" * 30)[0] == 401
    assert _call(url, key="not-a-key")[0] == 401
    assert _call(url, key=keys["prom"])[0] == 200
    assert _call(url, key=keys["vera"])[0] == 200  # a viewer may too: metrics hold no patient data
    status, _, body = _call(running.url + "/query", {"id": "im003.png"}, key=keys["prom"])
    assert status == 403 and "monitor" in json.loads(body)["error"]  # the monitor role reads no patient data
    assert _call(running.url + "/images/im003.png", key=keys["prom"])[0] == 403
    assert _call(running.url + "/images/im004.png/pixels")[0] == 401
    assert _call(running.url + "/static/app.css")[0] == 200
    users.revoke("prom")
    assert _call(url, key=keys["prom"])[0] == 401
    got = _samples(_call(url, key=keys["vera"])[2].decode())  # refusals by the gate: counted by route template
    assert _value(got, "cxrneo_http_requests_total", route="/metrics", method="GET", status="401") == 4
    assert _value(got, "cxrneo_http_requests_total", route="/query", method="POST", status="403") == 1
    assert _value(got, "cxrneo_http_requests_total", route="/images/{image_id}/pixels", method="GET",
                  status="401") == 1
    assert _value(got, "cxrneo_http_requests_total", route="/static", method="GET", status="200") == 1


def test_monitoring_unconfigured_service_beyond_loopback_refuses_metrics(archive_dir: Path) -> None:
    app = create_app(Searcher(_archive(12, 2, archive_dir), images=archive_dir),  # type: ignore[arg-type]
                     access=Authenticator(loopback=False))
    with Running(app) as running:
        assert _call(running.url + "/metrics")[0] == 401


def test_monitoring_each_app_has_its_own_registry(archive_dir: Path) -> None:
    apps = [create_app(Searcher(_archive(12, s, archive_dir), images=archive_dir))  # type: ignore[arg-type]
            for s in (3, 4)]
    with Running(apps[0]) as first, Running(apps[1]) as second:
        for _ in range(3):
            assert _call(first.url + "/query", {"id": "im001.png", "k": 2})[0] == 200
        one = _samples(_call(first.url + "/metrics")[2].decode())
        other = _samples(_call(second.url + "/metrics")[2].decode())
    assert _value(one, "cxrneo_http_requests_total", route="/query", method="POST", status="200") == 3
    assert _value(other, "cxrneo_http_requests_total", route="/query", method="POST", status="200") == 0


def test_monitoring_role_parses_and_ranks_lowest() -> None:
    assert Role.parse("monitor") is Role.MONITOR and Role.MONITOR < Role.VIEWER
    with pytest.raises(ValueError, match="monitor, viewer"):
        Role.parse("watcher")
