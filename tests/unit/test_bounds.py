"""Hostile input is bounded before it is decoded: image bombs refused from their headers (or through a
capped inflater), request lists capped and de-duplicated, heavy work behind a bounded queue with a
deadline, and the routes of a live app answering /health while the heavy workers are busy."""

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cxrneo.api.app import create_app
from cxrneo.embed.images import declared_pixels, read_grey
from cxrneo.errors import BusyError, InputError, TooLargeError
from cxrneo.filters import MAX_FINDINGS, QueryFilter
from cxrneo.pacs.dicomweb import _first_part
from cxrneo.service.request import QueryRequest, from_form, parse
from cxrneo.service.searcher import REQUEST_PIXELS, check_request_pixels
from cxrneo.service.workers import Workers, check_deadline
from tests.hostile import big_png, deflated_dicom_bomb, dicom_short_pixels, huge_jpeg
from tests.serving import Running


@pytest.mark.parametrize("gib", [3, 16])
def test_a_deflated_dicom_bomb_is_refused_while_it_inflates(tmp_path: Path, gib: int) -> None:
    bomb = deflated_dicom_bomb(tmp_path / "bomb.dcm", gib)
    assert bomb.stat().st_size < 20 << 20  # it passes the upload limit
    for read in (read_grey, declared_pixels):
        with pytest.raises(TooLargeError, match="once inflated"):
            read(bomb)


def test_pixel_data_shorter_than_its_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="shorter than"):
        read_grey(dicom_short_pixels(tmp_path / "short.dcm"))


def test_a_legal_deflated_dicom_reads_as_its_uncompressed_twin(tmp_path: Path) -> None:
    import pydicom

    from tests.integration.test_query_image import EXAMPLES, _as_dicom

    png = sorted((EXAMPLES / "images").glob("*.png"))[0]
    plain = _as_dicom(png, tmp_path / "plain.dcm")
    ds = pydicom.dcmread(plain)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "deflated.dcm").file_meta.TransferSyntaxUID.name.startswith("Deflated")
    assert np.array_equal(read_grey(tmp_path / "deflated.dcm"), read_grey(plain))
    assert declared_pixels(tmp_path / "deflated.dcm") == ds.Rows * ds.Columns


@pytest.mark.parametrize("make", [lambda p: big_png(p / "big.png", 10_000, 10_000), lambda p: huge_jpeg(p / "huge.jpg")])
def test_oversized_pngs_and_jpegs_are_refused_from_their_headers(tmp_path: Path, make: Any) -> None:
    path = make(tmp_path)
    with pytest.raises(TooLargeError):
        declared_pixels(path)
    with pytest.raises(TooLargeError):
        read_grey(path)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_only_png_jpeg_and_dicom_are_opened(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("L", (32, 32), 90).save(path, format=fmt)
    with pytest.raises(InputError, match="not a PNG, JPEG or DICOM image"):
        read_grey(path)


def test_the_files_of_one_request_share_a_pixel_budget(tmp_path: Path) -> None:
    one = big_png(tmp_path / "49mp.png", 7_000, 7_000)
    check_request_pixels([one])  # one is allowed
    with pytest.raises(TooLargeError, match="together"):
        check_request_pixels([one, one])
    assert 7_000 * 7_000 * 2 > REQUEST_PIXELS


def test_request_lists_are_capped_and_lose_their_duplicates() -> None:
    with pytest.raises(InputError, match="any_findings"):
        parse(QueryRequest, {"id": "a", "filter": {"any_findings": ["Effusion"] * (MAX_FINDINGS + 1)}})
    with pytest.raises(InputError, match="not_ids"):
        parse(QueryRequest, {"id": "a", "not_ids": [f"x{i}" for i in range(10_000)]})
    with pytest.raises(InputError, match="code"):
        parse(QueryRequest, {"code": [0.5] * 5000})
    with pytest.raises(InputError):
        parse(QueryRequest, {"code": [float("nan")] * 4})
    with pytest.raises(InputError):
        parse(QueryFilter, {"communities": [10**30]})
    req = parse(QueryRequest, {"ids": ["a", "b", "a"], "not_ids": ["c", "c"],
                               "filter": {"views": ["pa", "PA "], "findings": ["Mass", "Mass"]}})
    assert req.ids == ["a", "b"] and req.not_ids == ["c"]
    assert req.filter is not None and req.filter.views == ["PA"] and req.filter.findings == ["Mass"]


def test_multipart_fields_nested_too_deeply_are_one_line_errors() -> None:
    with pytest.raises(InputError, match="filter: not valid JSON"):
        from_form({"filter": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(InputError, match="k"):
        from_form({"k": "9" * 5000})


def test_a_pacs_answer_is_cut_to_its_first_part_on_disk(tmp_path: Path) -> None:
    body = b"\x00DICM-bytes\r\n--x\r\n" * 1000
    answer = tmp_path / "answer"
    answer.write_bytes(b"--bnd\r\nContent-Type: application/dicom\r\n\r\n" + body + b"\r\n--bnd--\r\n")
    _first_part(answer, 'multipart/related; type="application/dicom"; boundary=bnd')
    assert answer.read_bytes() == body
    answer.write_bytes(b"--bnd--\r\n")
    with pytest.raises(Exception, match="empty multipart"):
        _first_part(answer, "multipart/related; boundary=bnd")


# --- the heavy-work queue ---------------------------------------------------------------------------


def _run(workers: Workers, fn: Any) -> Any:
    import asyncio

    return asyncio.run(workers.run(fn))


def test_a_full_queue_refuses_at_once_and_a_late_job_never_starts() -> None:
    gate, started = threading.Event(), []
    workers = Workers(threads=1, waiting=1, deadline=5)
    first = threading.Thread(target=lambda: _run(workers, lambda: started.append(1) or gate.wait(5)))
    first.start()
    while not started:
        time.sleep(0.01)
    queued: list[Any] = []
    second = threading.Thread(target=lambda: queued.append(_swallow(lambda: _run(workers, lambda: started.append(2)))))
    second.start()
    while workers.stats()["admitted"] < 2:
        time.sleep(0.01)
    with pytest.raises(BusyError) as refused:
        _run(workers, lambda: started.append(3))
    assert refused.value.retry_after >= 1 and workers.stats()["refused"] == 1
    gate.set()
    first.join(10)
    second.join(10)
    assert started == [1, 2] and workers.stats()["admitted"] == 0


def test_a_job_past_its_deadline_is_answered_busy_and_abandoned() -> None:
    gate, ran = threading.Event(), []
    workers = Workers(threads=1, waiting=4, deadline=0.3)
    blocker = threading.Thread(target=lambda: _swallow(lambda: _run(workers, lambda: gate.wait(5))))
    blocker.start()
    time.sleep(0.05)
    with pytest.raises(BusyError, match="deadline"):
        _run(workers, lambda: ran.append(1))  # waits behind the blocker past its deadline
    gate.set()
    blocker.join(10)
    time.sleep(0.1)
    assert ran == [] and workers.stats()["abandoned"] >= 1


def test_check_deadline_stops_a_running_job() -> None:
    workers = Workers(threads=1, waiting=0, deadline=0.2)
    seen: list[str] = []

    def job() -> None:
        time.sleep(0.4)
        try:
            check_deadline()
        except BusyError:
            seen.append("stopped")

    with pytest.raises(BusyError):
        _run(workers, job)
    time.sleep(0.4)
    assert seen == ["stopped"]


def _swallow(fn: Any) -> Any:
    try:
        return fn()
    except BusyError as e:
        return e


# --- routes of a live app without Neo4j ---------------------------------------------------------------


class _StubSearcher:
    """Just enough of a Searcher for the routes below; search_images blocks until released."""

    image_queries = True
    pacs = None

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.files = type("Files", (), {"root": None})()
        self.asked: list[Any] = []

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    def findings(self) -> list[str]:
        return ["Effusion", "Mass"]

    def image(self, image_id: str) -> dict[str, Any]:
        self.asked.append(image_id)
        return {"id": image_id}

    def subgraph(self, ids: list[str]) -> dict[str, Any]:
        self.asked.append(ids)
        return {"nodes": [{"id": i} for i in ids], "edges": [], "cypher": ""}

    def patients(self, ids: list[str]) -> list[str]:
        return []

    def search_images(self, files: Any, options: Any) -> Any:
        self.entered.set()
        self.release.wait(10)
        raise InputError("released")


def _post(url: str, body: bytes, kind: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": kind}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_route_health_answers_while_heavy_work_is_busy_and_the_next_upload_gets_503() -> None:
    from tests.hostile import multipart

    searcher = _StubSearcher()
    app = create_app(searcher, workers=Workers(threads=1, waiting=0, deadline=20))  # type: ignore[arg-type]
    body, kind = multipart([("a.png", b"\x89PNG....")])
    with Running(app) as running:
        first: list[Any] = []
        t = threading.Thread(target=lambda: first.append(_post(running.url + "/query/image", body, kind)))
        t.start()
        assert searcher.entered.wait(10)
        with urllib.request.urlopen(running.url + "/health", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read())["status"] == "ok"
        status, headers, answer = _post(running.url + "/query/image", body, kind)
        assert status == 503 and int(headers["retry-after"]) >= 1 and "busy" in json.loads(answer)["error"]
        searcher.release.set()
        t.join(10)
    assert first and first[0][0] == 400 and json.loads(first[0][2]) == {"error": "released"}


@pytest.mark.parametrize(("body", "words"), [
    (b'{"id": "\xff\xfe"}', "UTF-8"),
    (b'{"id": "a", "k": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"{", "not valid JSON"),
])
def test_route_query_answers_undecodable_json_with_a_400(body: bytes, words: str) -> None:
    app = create_app(_StubSearcher())  # type: ignore[arg-type]
    with Running(app) as running:
        status, _, answer = _post(running.url + "/query", body, "application/json")
    assert status == 400 and words in json.loads(answer)["error"]


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_route_config_images_and_subgraph_need_the_token_and_bound_their_input() -> None:
    searcher = _StubSearcher()
    app = create_app(searcher, token="route-token-" + "x" * 12)  # type: ignore[arg-type]
    token = "route-token-" + "x" * 12
    with Running(app) as running:
        for path in ("/config", "/images/a.png"):
            assert _get(running.url + path)[0] == 401
        status, config = _get(running.url + "/config", token)
        assert status == 200 and config["findings"] == ["Effusion", "Mass"] and config["max_k"] == 1000
        assert _get(running.url + "/images/a.png", token) == (200, {"id": "a.png"})
        status, doc = _get(running.url + "/images/" + "a" * 20_000, token)  # never reaches the database
        assert status == 422 and "\n" not in doc["error"]

        def subgraph(body: bytes) -> tuple[int, Any]:
            req = urllib.request.Request(running.url + "/subgraph", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert subgraph(b'{"ids": ["a.png", "b.png"]}')[0] == 200
        for hostile in (b'{"ids": ["' + b"a" * 1_000_000 + b'"]}', json.dumps({"ids": ["x"] * 1002}).encode(),
                        b'{"ids": ["\xff"]}', b"[" * 100_000 + b"]" * 100_000, b'{"ids": [' + b"9" * 5000 + b"]}"):
            status, doc = subgraph(hostile)
            assert 400 <= status < 500 and set(doc) == {"error"}, (hostile[:30], status)
    assert searcher.asked == ["a.png", ["a.png", "b.png"]]  # no refused request reached the searcher
