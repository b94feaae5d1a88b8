"""Every route of `cxrneo serve` against a running app over an in-memory archive (no Neo4j): the
searcher, the settings and the caller arrive through the dependencies of cxrneo/api/deps.py, so a
test gives the app an archive of its own (and may override any of them). `-k route` selects these."""

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cxrneo.api import deps
from cxrneo.api.app import create_app
from cxrneo.filters import describe
from cxrneo.records import ImageRecord
from cxrneo.service.searcher import Searcher
from tests.hostile import multipart
from tests.memory_archive import MemoryArchive
from tests.serving import Running

TOKEN = "route-test-token-" + "y" * 12
FINDINGS = ("Effusion", "Mass", "Nodule")


def _archive(n: int, seed: int, folder: Path | None = None) -> MemoryArchive:
    """n images in 4 clusters of 16-d codes, with findings, sex, age, view and patient; a PNG each in ``folder``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 16))
    codes = centres[np.arange(n) % 4] + 0.35 * rng.standard_normal((n, 16))
    records = [ImageRecord(id=f"im{i:03d}.png", path=f"im{i:03d}.png", labels=FINDINGS[: i % 4],
                           patient_id=f"p{i // 3}", view=("PA", "AP")[i % 2], sex=("F", "M")[(i // 2) % 2],
                           age=20 + i % 60, split="train") for i in range(n)]
    if folder is not None:
        for i, r in enumerate(records):
            Image.fromarray(np.full((40, 32), 4 * i % 256, np.uint8)).save(folder / r.path)
    return MemoryArchive(records, codes, threshold=0.6, community=[i % 4 for i in range(n)])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, MemoryArchive]]:
    folder = tmp_path_factory.mktemp("images")
    archive = _archive(60, 0, folder)
    app = create_app(Searcher(archive, images=folder), token=TOKEN)  # type: ignore[arg-type]
    with Running(app) as running:
        yield running, archive


def _call(url: str, body: bytes | None = None, kind: str = "application/json", token: str | None = TOKEN,
          method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = kind
    req = urllib.request.Request(url, data=body, headers=headers, method=method or ("POST" if body else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _json(url: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    status, _, raw = _call(url, None if body is None else json.dumps(body).encode(), token=token)
    return status, json.loads(raw)


def _knn(archive: MemoryArchive, code: np.ndarray, k: int, leave: set[str]) -> list[str]:
    """Exact cosine ranking by brute force (ties to the smaller id)."""
    q = code / np.linalg.norm(code)
    scores = sorted(((-float(u @ q), i) for i, u in archive.unit.items() if i not in leave))
    return [i for _, i in scores[:k]]


def test_route_page_and_its_modules_are_served(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    status, headers, page = _call(running.url + "/", token=None)
    assert status == 200 and b'type="module"' in page and headers["cache-control"] == "no-store"
    status, headers, _ = _call(running.url + "/static/main.js", token=None)
    assert status == 200 and "javascript" in headers["content-type"]


def test_route_config_describes_the_filters_of_the_table(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    assert _json(running.url + "/config", token=None)[0] == 401
    status, config = _json(running.url + "/config")
    assert status == 200 and config["filters"] == describe()
    assert config["findings"] == ["No Finding", *FINDINGS] and config["image_queries"] is False
    assert config["pixels"] is True and "maps" not in config["features"]


def test_route_health_tells_only_the_token_holder_more(served: tuple[Running, MemoryArchive]) -> None:
    running, archive = served
    assert _json(running.url + "/health", token=None) == (200, {"status": "ok"})
    status, doc = _json(running.url + "/health")
    assert status == 200 and doc["images"] == 60 and doc["edges"] == len(archive.pairs) and doc["scan"] == "float32"


def test_route_query_by_id_is_the_exact_cosine_ranking(served: tuple[Running, MemoryArchive]) -> None:
    running, archive = served
    status, answer = _json(running.url + "/query", {"id": "im007.png", "k": 8, "method": "knn"})
    assert status == 200 and answer["excluded"] == 1
    assert [h["image_id"] for h in answer["hits"]] == _knn(archive, archive.unit["im007.png"], 8, {"im007.png"})
    status, answer = _json(running.url + "/query", {"id": "im007.png", "k": 8, "exclude_patient": True})
    assert status == 200 and answer["excluded"] == 3 and answer["method"] == "community"
    assert not {h["image_id"] for h in answer["hits"]} & {"im006.png", "im007.png", "im008.png"}


def test_route_query_by_code_and_by_examples(served: tuple[Running, MemoryArchive]) -> None:
    running, archive = served
    code = archive.unit["im010.png"] + 0.5 * archive.unit["im014.png"]  # no tie to break by rounding
    status, answer = _json(running.url + "/query", {"code": code.tolist(), "k": 5, "method": "knn"})
    assert status == 200 and [h["image_id"] for h in answer["hits"]] == _knn(archive, code, 5, set())
    status, answer = _json(running.url + "/query", {"ids": ["im010.png", "im014.png"], "not_ids": ["im011.png"],
                                                    "k": 5, "method": "hybrid"})
    assert status == 200 and answer["query"] == "2 examples, 1 unlike" and answer["excluded"] == 3
    assert len(answer["hits"]) == 5 and not {h["image_id"] for h in answer["hits"]} & {"im010.png", "im011.png"}


def test_route_query_filter_returns_only_passing_images(served: tuple[Running, MemoryArchive]) -> None:
    running, archive = served
    where = {"findings": ["Mass"], "sex": "F", "age_min": 30, "views": ["pa"]}
    status, answer = _json(running.url + "/query", {"id": "im001.png", "k": 50, "filter": where, "method": "knn"})
    passing = {r.id for r in archive.by_id.values()
               if "Mass" in r.labels and r.sex == "F" and (r.age or 0) >= 30 and r.view == "PA"}
    assert status == 200 and answer["passing"] == len(passing)
    assert {h["image_id"] for h in answer["hits"]} == passing - {"im001.png"}


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"id": "nope.png"}, 404, "no image 'nope.png'"),
    ({"id": "im001.png", "k": 0}, 400, "k: Input should be greater than or equal to 1"),
    ({"id": "im001.png", "filter": {"findings": ["Efusion"]}}, 400, "unknown finding 'Efusion'"),
    ({"id": "im001.png", "filter": {"age_min": 70, "age_max": 20}}, 400, "age_min 70 is above age_max 20"),
    ({"code": [1.0, 2.0]}, 400, "query code has 2 values, the database codes 16"),
    ({"id": "im001.png", "code": [1.0]}, 400, "exactly one of id, ids and code"),
])
def test_route_query_refuses_bad_requests_in_one_line(served: tuple[Running, MemoryArchive], body: dict[str, Any],
                                                      status: int, words: str) -> None:
    running, _ = served
    got, doc = _json(running.url + "/query", body)
    assert got == status and words in doc["error"] and "\n" not in doc["error"]


def test_route_query_image_needs_a_checkpoint(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    body, kind = multipart([("chest.png", b"\x89PNG not read")])
    for path in ("/query", "/query/image"):
        status, _, raw = _call(running.url + path, body, kind)
        assert status == 400 and "image queries need a checkpoint" in json.loads(raw)["error"]


def test_route_image_record_and_pixels(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    status, record = _json(running.url + "/images/im005.png")
    assert status == 200 and record["labels"] == ["Effusion"] and record["patientId"] == "p1"
    assert _json(running.url + "/images/missing.png")[0] == 404
    status, headers, png = _call(running.url + "/images/im005.png/pixels?size=64")
    assert status == 200 and headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png)).size == (51, 64)  # the longest side 64, the aspect kept
    assert _call(running.url + "/images/im005.png/pixels?size=5")[0] == 422


def test_route_render_returns_an_upload_as_the_model_reads_it(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    buffer = io.BytesIO()
    Image.fromarray(np.full((100, 50), 200, np.uint8)).save(buffer, "PNG")
    body, kind = multipart([("mine.png", buffer.getvalue())])
    status, _, png = _call(running.url + "/images/render?size=64", body, kind)
    assert status == 200 and Image.open(io.BytesIO(png)).size == (32, 64)
    body, kind = multipart([("mine.png", b"not an image")])
    status, _, raw = _call(running.url + "/images/render", body, kind)
    assert status == 422 and "mine.png" in json.loads(raw)["error"]


def test_route_explain_needs_the_checkpoint(served: tuple[Running, MemoryArchive]) -> None:
    running, _ = served
    status, doc = _json(running.url + "/explain?query=im001.png&hit=im002.png")
    assert status == 400 and "similarity maps need the checkpoint" in doc["error"]
    assert _json(running.url + "/explain?query=im001.png&hit=im002.png&format=gif")[0] == 422


def test_route_subgraph_holds_the_graphs_edges_among_the_ids(served: tuple[Running, MemoryArchive]) -> None:
    running, archive = served
    ids = [f"im{i:03d}.png" for i in range(0, 40, 4)] + ["missing.png"]
    status, doc = _json(running.url + "/subgraph", {"ids": ids})
    assert status == 200 and [n["id"] for n in doc["nodes"]] == ids[:-1]
    assert {(e["source"], e["target"]) for e in doc["edges"]} == {p for p in archive.pairs if set(p) <= set(ids)}
    assert doc["edges"] and '"im000.png"' in doc["cypher"]


def test_route_dependencies_are_the_one_seam(tmp_path: Path) -> None:
    """The searcher and the caller come from dependencies: overriding them changes what every route sees."""
    app = create_app(Searcher(_archive(60, 0)), token=None)  # type: ignore[arg-type]
    other = _archive(24, 7)
    app.dependency_overrides[deps.searcher] = lambda: Searcher(other)  # type: ignore[arg-type]
    with Running(app) as running:
        status, answer = _json(running.url + "/query", {"id": "im003.png", "k": 4, "method": "knn"})
        assert status == 200 and [h["image_id"] for h in answer["hits"]] == \
            _knn(other, other.unit["im003.png"], 4, {"im003.png"})
        assert _json(running.url + "/health")[1]["images"] == 24
        app.dependency_overrides[deps.settings] = lambda: deps.ApiSettings(browser_url="http://b/browser/")
        assert _json(running.url + "/config")[1]["browser"] == "http://b/browser/"
        app.dependency_overrides[deps.identity] = lambda: None  # a caller without the right to read the archive
        for path, body in (("/config", None), ("/images/im001.png", None), ("/images/im001.png/pixels", None),
                           ("/explain?query=im001.png&hit=im002.png", None), ("/query", {"id": "im001.png"}),
                           ("/subgraph", {"ids": ["im001.png"]})):
            assert _json(running.url + path, body)[0] == 401, path
        body, kind = multipart([("a.png", b"x")])
        assert all(_call(running.url + p, body, kind)[0] == 401 for p in ("/query/image", "/images/render"))
        assert _json(running.url + "/health") == (200, {"status": "ok"})
