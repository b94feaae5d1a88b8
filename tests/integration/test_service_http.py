"""`cxrneo serve` over real HTTP (uvicorn on a loopback port) against the real Neo4j + GDS."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.api.app import create_app
from cxrneo.archive.codes import CODE_WIDTH, Codes
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.errors import NotFoundError
from cxrneo.records import ImageRecord
from cxrneo.retrieval import Method
from cxrneo.service.client import Client
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.serving import Running as _Running
from tests.serving import free_port as _free_port

pytestmark = pytest.mark.neo4j
T = 0.55
TOKEN = "test-token-" + "x" * 12


def clustered(n: int, seed: int = 5) -> Codes:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, CODE_WIDTH)).astype(np.float32)
    which = rng.integers(0, 4, n)
    x = centres[which] + 0.9 * rng.standard_normal((n, CODE_WIDTH)).astype(np.float32)
    images = tuple(ImageRecord(id=f"s{i:03d}", patient_id=f"p{i // 2}", labels=(f"L{which[i]}",)) for i in range(n))
    return Codes(codes=x, images=images)


@pytest.fixture
def served(clean_db: Database, neo4j_settings: Settings, tmp_path: Path) -> Iterator[tuple[_Running, Searcher, Codes]]:
    codes = clustered(48)
    build(clean_db, codes.subset(list(range(40))), threshold=T, snapshot_dir=tmp_path / "snap")
    detect(clean_db)
    searcher = Searcher.connect(neo4j_settings.model_copy(update={"data_dir": tmp_path}))
    with _Running(create_app(searcher, token=TOKEN, max_upload_bytes=64 * 1024)) as running:
        yield running, searcher, codes
    searcher.close()


def _post(url: str, body: bytes, kind: str = "application/json", token: str | None = TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", kind)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _hits(doc: dict[str, Any]) -> list[tuple[str, int | None, bool]]:
    return [(h["image_id"], h["community"], h["fallback"]) for h in doc["hits"]]


def test_service_answers_equal_in_process_answers(served: tuple[_Running, Searcher, Codes], clean_db: Database) -> None:
    running, _, codes = served
    client = Client(running.url, TOKEN)
    health = client.health()
    assert health["status"] == "ok" and health["neo4j"] and health["generation"] == health["communityGeneration"] >= 1
    local = Searcher.open(clean_db, None)  # a second, independent in-process searcher (reads Neo4j itself)
    rng = np.random.default_rng(1)
    new_code = (codes.codes[3] + 0.5 * rng.standard_normal(CODE_WIDTH)).astype(np.float32)
    for method in Method:
        for strict in (False, True):
            got = client.query("s007", _opts(6, method.value, strict, exclude_patient=True))
            want = local.by_id("s007", QueryOptions(k=6, method=method, strict=strict, exclude_patient=True))
            assert _hits(got) == _hits(want.model_dump()) and got["excluded"] == 2
            assert np.allclose([h["cosine"] for h in got["hits"]], [h.cosine for h in want.hits])
            status, doc = _post(running.url + "/query", json.dumps(
                {"code": new_code.tolist(), "k": 9, "method": method.value, "strict": strict}).encode())
            want = local.by_code(new_code, QueryOptions(k=9, method=method, strict=strict))
            assert status == 200 and _hits(doc) == _hits(want.model_dump())
    assert "s007" not in {h["image_id"] for h in client.query("s007", _opts(10, "knn"))["hits"]}
    rec = json.loads(urllib.request.urlopen(urllib.request.Request(
        running.url + "/images/s004", headers={"Authorization": f"Bearer {TOKEN}"}), timeout=30).read())
    assert rec["id"] == "s004" and rec["labels"] == list(codes.images[4].labels) and rec["patientId"] == "p2"


def test_concurrent_requests_are_safe(served: tuple[_Running, Searcher, Codes]) -> None:
    running, searcher, codes = served
    ids = codes.ids[:40]
    want = {(i, m): _hits(searcher.by_id(i, QueryOptions(k=5, method=m)).model_dump()) for i in ids[:12] for m in Method}
    jobs = [(i, m) for i in ids[:12] for m in Method] * 3
    client = Client(running.url, TOKEN)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda job: (job, _hits(client.query(job[0], _opts(5, job[1].value)))), jobs))
    assert all(hits == want[job] for job, hits in got)


def test_an_ingest_while_serving_is_picked_up(served: tuple[_Running, Searcher, Codes], clean_db: Database,
                                              tmp_path: Path) -> None:
    running, _, codes = served
    client = Client(running.url, TOKEN)
    before = client.query("s001", _opts(5, "knn"))
    build(clean_db, codes, threshold=T, snapshot_dir=tmp_path / "snap")  # 8 more images
    status, doc = _post(running.url + "/query", json.dumps({"id": "s001", "k": 5}).encode())
    assert status == 503 and "communities" in doc["error"]  # stale communities: refused, not answered
    assert client.health()["status"] == "not ready"
    detect(clean_db)
    after = client.query("s001", _opts(47, "knn"))
    assert after["generation"] > before["generation"] and len(after["hits"]) == 47
    assert {f"s{i:03d}" for i in range(40, 48)} <= {h["image_id"] for h in after["hits"]}


def test_bad_requests_get_one_line_json_errors(served: tuple[_Running, Searcher, Codes], tmp_path: Path) -> None:
    running, _, _ = served
    url = running.url + "/query"
    cases: list[tuple[bytes, str, str | None, int, str]] = [
        (b'{"id": "nope"}', "application/json", TOKEN, 404, "nope"),
        (b'{"id": "s001", "k": 0}', "application/json", TOKEN, 400, "k"),
        (b'{"id": "s001", "k": 100000}', "application/json", TOKEN, 400, "k"),
        (b'{"id": "s001", "method": "magic"}', "application/json", TOKEN, 400, "method"),
        (b'{"id": "s001", "code": [1.0]}', "application/json", TOKEN, 400, "exactly one"),
        (b'{"code": [1.0, 2.0]}', "application/json", TOKEN, 400, "values"),
        (b"not json", "application/json", TOKEN, 400, "not JSON"),
        (b'{"id": "s001"}', "application/json", None, 401, "bearer credential"),
        (b'{"id": "s001"}', "application/json", "wrong-token", 401, "bearer credential"),
        (b"x" * (65 * 1024), "application/json", TOKEN, 413, "larger"),
        (b'{"id": "s001", "concepts": {"Effusion": 0.5}}', "application/json", TOKEN, 400,
         "finding sliders need the checkpoint"),
        (b'{"id": "s001", "filter": {"findings": ["Efusion"]}}', "application/json", TOKEN, 400, "unknown finding"),
        (b'{"id": "s001", "filter": {"colour": "red"}}', "application/json", TOKEN, 400, "filter.colour"),
        (b'{"ids": ["s001", "nope"]}', "application/json", TOKEN, 404, "nope"),
    ]
    for body, kind, token, code, words in cases:
        status, doc = _post(url, body, kind, token)
        assert status == code and words in doc["error"], (body[:40], status, doc)
        assert set(doc) == {"error"} and "\n" not in doc["error"] and "Traceback" not in doc["error"]
    req = urllib.request.Request(running.url + "/explain?query=s001&hit=s002",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 400 and "need the checkpoint" in json.loads(refused.value.read())["error"]
    picture = tmp_path / "scan.png"
    picture.write_bytes(b"\x89PNG definitely not an image")
    client = Client(running.url, TOKEN)
    with pytest.raises(Exception, match="checkpoint"):  # this service was started without --checkpoint
        client.query_image(picture, _opts(5, "knn"))
    with pytest.raises(NotFoundError, match="nope"):
        client.query("nope", _opts(5, "knn"))


def test_image_upload_and_cli_through_the_service(clean_db: Database, neo4j_settings: Settings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrneo.cli.main import app
    from tests.integration.test_query_image import EXAMPLES, _checkpoint

    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    ckpt = _checkpoint(tmp_path / "best.pt")
    run = CliRunner().invoke
    labels = EXAMPLES / "Data_Entry_2017.csv"
    assert run(app, ["embed", str(ckpt), "--labels", str(labels), "--images", str(EXAMPLES / "images"),
                     "--out", str(tmp_path / "codes.npz"), "--workers", "0", "--max-images", "24"]).exit_code == 0
    for args in (["ingest", str(tmp_path / "codes.npz"), "--mean-degree", "4"], ["communities"]):
        done = run(app, args)
        assert done.exit_code == 0, done.output
    searcher = Searcher.connect(Settings(), ckpt)
    image = sorted((EXAMPLES / "images").glob("*.png"))[2]
    with _Running(create_app(searcher, token=None, max_upload_bytes=1 << 20)) as running:
        doc = Client(running.url).query_image(image, _opts(3, "knn"))
        assert doc["duplicate_of"] == image.name and image.name not in [h["image_id"] for h in doc["hits"]]
        status, err = _post(running.url + "/query/image", b"--b\r\nContent-Disposition: form-data; "
                            b'name="file"; filename="x.png"\r\n\r\nnot an image\r\n--b--\r\n',
                            "multipart/form-data; boundary=b", None)
        assert status == 400 and "x.png" in err["error"] and "cxrneo-upload" not in err["error"], err
        for method in Method:
            via = run(app, ["query", image.name, "-k", "4", "--method", method.value, "--server", running.url, "--json"])
            here = run(app, ["query", image.name, "-k", "4", "--method", method.value, "--json"])
            assert via.exit_code == here.exit_code == 0, via.output + here.output
            assert _hits(json.loads(via.output)) == _hits(json.loads(here.output)) and len(json.loads(via.output)["hits"]) == 4
        by_file = run(app, ["query", str(image), "-k", "2", "--method", "knn", "--server", running.url, "--json"])
        assert by_file.exit_code == 0 and json.loads(by_file.output)["duplicate_of"] == image.name
    searcher.close()
    dead = run(app, ["query", image.name, "--server", f"http://127.0.0.1:{_free_port()}"])
    assert dead.exit_code == 1 and "cannot reach" in dead.output and "Traceback" not in dead.output


def _opts(k: int, method: str, strict: bool = False, exclude_patient: bool = False) -> QueryOptions:
    return QueryOptions(k=k, method=Method(method), strict=strict, exclude_patient=exclude_patient)
