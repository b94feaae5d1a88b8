"""The viewer on a real service: its HTTP routes, and the page in a real headless Chromium (Selenium).

One graph of 24 real NIH sample images (codes of a small untrained checkpoint) serves every test.
Screenshots of the page land in test-artifacts/ (wide and narrow).
"""

import base64
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cxrneo.api.app import create_app
from cxrneo.db.connection import Database
from cxrneo.graph import settle
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_query_image import EXAMPLES, _as_dicom, sample_graph
from tests.serving import Running as _Running

pytestmark = pytest.mark.neo4j
TOKEN = "viewer-token-" + "y" * 12
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
IMAGES = EXAMPLES / "images"


class Viewer:
    """A running service with the viewer, over a graph of 24 sample images."""

    def __init__(self, running: _Running, searcher: Searcher, ckpt: Path, ids: list[str]) -> None:
        self.running, self.searcher, self.ckpt, self.ids = running, searcher, ckpt, ids
        self.url = running.url

    def call(self, path: str, body: bytes | None = None, kind: str = "application/json",
             token: str | None = TOKEN) -> tuple[int, bytes, str]:
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        if body is not None:
            req.add_header("Content-Type", kind)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("content-type", "")

    def json(self, path: str, doc: Any = None) -> Any:
        status, body, _ = self.call(path, None if doc is None else json.dumps(doc).encode())
        assert status == 200, body
        return json.loads(body)


def _multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    parts = [f'--b0\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode() for n, v in fields.items()]
    parts.append(f'--b0\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n\r\n'.encode()
                 + path.read_bytes() + b"\r\n--b0--\r\n")
    return b"".join(parts), "multipart/form-data; boundary=b0"


@pytest.fixture(scope="module")
def viewer(neo4j_db: Database, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    tmp = tmp_path_factory.mktemp("viewer")
    ckpt, ids = sample_graph(neo4j_db, neo4j_settings, tmp)
    searcher = Searcher.connect(neo4j_settings.model_copy(update={"data_dir": tmp}), ckpt, images=IMAGES)
    app_ = create_app(searcher, token=TOKEN, max_upload_bytes=4 << 20, browser_url="http://127.0.0.1:7474/browser/")
    with _Running(app_) as running:
        yield Viewer(running, searcher, ckpt, ids)
    searcher.close()


# --- the routes -----------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_without_a_token(viewer: Viewer) -> None:
    status, body, kind = viewer.call("/", token=None)
    assert status == 200 and kind.startswith("text/html") and b'<script type="module" src="static/main.js">' in body
    for path in ("/static/app.css", "/static/vendor/cytoscape.min.js"):
        status, body, _ = viewer.call(path, token=None)
        assert status == 200 and len(body) > 1000, path
    web = ROOT / "cxrneo" / "web"
    modules = sorted(web.glob("*.js"))
    assert {m.name for m in modules} >= {"main.js", "api.js", "state.js", "filters.js", "results.js", "detail.js",
                                         "neighbourhood.js"}
    for module in modules:  # ES modules: served as JavaScript (a browser refuses a module of another type)
        status, body, kind = viewer.call(f"/static/{module.name}", token=None)
        assert status == 200 and body == module.read_bytes(), module.name
        assert kind.split(";")[0] in ("text/javascript", "application/javascript"), (module.name, kind)
        for imported in re.findall(r'^import .* from "\./([\w.]+)";$', module.read_text(), re.M):
            assert (web / imported).is_file(), (module.name, imported)  # every import is a file of the page
    for page in (web / "index.html", *modules):
        text = page.read_text()
        assert "http://" not in text and "https://" not in text, page.name  # nothing from the network


def test_pixels_are_the_rendered_file_and_need_the_token(viewer: Viewer) -> None:
    from cxrneo.service.pixels import render

    image = viewer.ids[0]
    status, png, kind = viewer.call(f"/images/{image}/pixels?size=128")
    assert status == 200 and kind == "image/png" and png == render(IMAGES / image, 128)
    assert viewer.call(f"/images/{image}/pixels?size=128", token=None)[0] == 401
    assert viewer.call(f"/images/{image}/pixels?size=128", token="wrong")[0] == 401
    for path, code, words in [
        (f"/images/{image}/pixels?size=32", 422, "size"),
        (f"/images/{image}/pixels?size=5000", 422, "size"),
        ("/images/nope.png/pixels", 404, "nope.png"),
        ("/images/..%2F..%2Fetc%2Fpasswd/pixels", 404, "Not Found"),  # no route matches: the router's 404, as JSON
    ]:
        status, body, _ = viewer.call(path)
        doc = json.loads(body)
        assert status == code and words in doc["error"] and set(doc) == {"error"}, (path, status, doc)


def test_an_upload_renders_as_the_model_reads_it(viewer: Viewer, tmp_path: Path) -> None:
    from cxrneo.service.pixels import render

    png = IMAGES / viewer.ids[1]
    dicom = _as_dicom(png, tmp_path / "film.dcm")
    for path in (png, dicom):
        body, kind = _multipart(path, {})
        status, got, _ = viewer.call("/images/render?size=224", body, kind)
        assert status == 200 and got == render(path, 224)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not an image")
    status, body, _ = viewer.call("/images/render", *_multipart(broken, {}))
    assert status == 422 and "broken.png" in json.loads(body)["error"]


def test_subgraph_equals_the_stored_edges_and_gives_browser_cypher(viewer: Viewer, neo4j_db: Database) -> None:
    answer = viewer.json("/query", {"id": viewer.ids[0], "k": 8, "method": "knn"})
    ids = [viewer.ids[0], *[h["image_id"] for h in answer["hits"]]]
    sub = viewer.json("/subgraph", {"ids": ids})
    assert {n["id"] for n in sub["nodes"]} == set(ids)
    generation = viewer.searcher.graph.current()
    meta, retriever = generation.meta, generation.retriever
    rows = [retriever.row_of(i) for i in ids]
    src, dst = np.triu_indices(len(ids), k=1)  # every pair, decided by the graph's own rule (exact, not BLAS)
    kept = settle(np.ascontiguousarray(retriever.codes[rows]), src.astype(np.int64), dst.astype(np.int64),
                  meta.threshold)
    want = {tuple(sorted((ids[a], ids[b]))) for a, b in zip(kept.src.tolist(), kept.dst.tolist(), strict=True)}
    assert {(e["source"], e["target"]) for e in sub["edges"]} == want
    assert all(e["source"] < e["target"] for e in sub["edges"])
    assert f'"{viewer.ids[0]}"' in sub["cypher"] and "$ids" not in sub["cypher"]
    cfg = viewer.json("/config")
    assert cfg["image_queries"] and cfg["pixels"] and cfg["browser"].endswith("/browser/")
    assert viewer.call("/subgraph", b'{"ids": []}')[0] == 422


# --- the page in a real browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "headless Chromium and chromedriver are missing: run scripts/setup.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 90) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _console_errors(driver: Any, allowed: tuple[str, ...] = ()) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def _open_with_token(driver: Any, viewer: Viewer) -> None:
    driver.get(viewer.url + "/")
    driver.execute_script("sessionStorage.setItem('cxrneo-token', arguments[0])", TOKEN)
    driver.get(viewer.url + "/")
    _wait(driver, lambda d: "archived images" in d.find_element("id", "status").text)


def _cards(driver: Any, k: int) -> list[Any]:
    """The result cards once all k thumbnails have loaded."""
    def ready(d: Any) -> list[Any] | bool:
        cards = d.find_elements("css selector", "#grid .card")
        loaded = d.execute_script(
            "return [...document.querySelectorAll('#grid .card img')].filter(i => i.complete && i.naturalWidth > 0).length")
        return cards if len(cards) == k and loaded == k else False
    return list(_wait(driver, ready))


def _blob_bytes(driver: Any, img: Any) -> bytes:
    b64 = driver.execute_async_script("""
        const [img, done] = arguments;
        fetch(img.src).then(r => r.arrayBuffer()).then(buf => {
          let s = ""; new Uint8Array(buf).forEach(b => s += String.fromCharCode(b)); done(btoa(s));
        });""", img)
    return base64.b64decode(b64)


def _screenshot(driver: Any, name: str, width: int, height: int) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.set_window_size(width, height)
    driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")  # laid out again
    path = ARTIFACTS / f"{name}-{width}x{height}.png"
    driver.save_screenshot(str(path))
    return path


def test_a_stored_id_query_shows_the_answer_and_opens_by_keyboard(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_with_token(browser, viewer)
    browser.get_log("browser")  # start the console check from here
    query = viewer.ids[5]
    want = viewer.json("/query", {"id": query, "k": 6, "method": "community", "exclude_patient": True})
    field = browser.find_element(By.ID, "image-id")
    field.send_keys(query)
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("6")
    field.send_keys(Keys.ENTER)
    cards = _cards(browser, 6)
    assert [c.get_attribute("data-id") for c in cards] == [h["image_id"] for h in want["hits"]]
    assert [int(c.get_attribute("data-rank")) for c in cards] == [h["rank"] for h in want["hits"]]
    first = cards[0].find_element(By.TAG_NAME, "img")
    status, png, _ = viewer.call(f"/images/{want['hits'][0]['image_id']}/pixels?size=256")
    assert status == 200 and _blob_bytes(browser, first) == png  # the thumbnail is the API's PNG, byte for byte
    assert want["hits"][0]["image_id"] in first.get_attribute("alt")
    _wait(browser, lambda d: d.find_element(By.ID, "neighbourhood").is_displayed())
    _wait(browser, lambda d: d.execute_script("return document.querySelectorAll('#graph canvas').length") > 0)
    link = browser.find_element(By.ID, "browser-link").get_attribute("href")
    assert link.startswith("http://127.0.0.1:7474/browser/?cmd=edit&arg=") and "SIMILAR" in urllib.parse.unquote(link)
    _screenshot(browser, "viewer-results", 1440, 1000)
    browser.set_window_size(1280, 800)

    cards[0].send_keys(Keys.ENTER)  # keyboard: open the first result
    dialog = browser.find_element(By.ID, "detail")
    _wait(browser, lambda d: dialog.get_attribute("open") is not None)
    _wait(browser, lambda d: d.find_element(By.ID, "detail-title").text.startswith("Result 1 of 6"))
    _wait(browser, lambda d: d.execute_script("return document.getElementById('detail-hit').naturalWidth") > 0)
    assert "patient" in browser.find_element(By.ID, "detail-record").text
    _screenshot(browser, "viewer-detail", 1280, 800)
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    _wait(browser, lambda d: d.find_element(By.ID, "detail-title").text.startswith("Result 2 of 6"))
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    _wait(browser, lambda d: dialog.get_attribute("open") is None)
    _wait(browser, lambda d: d.switch_to.active_element.get_attribute("data-rank") == "2")  # focus on the card last shown
    _screenshot(browser, "viewer-results-narrow", 420, 900)
    browser.set_window_size(1280, 800)
    assert _console_errors(browser) == []


def test_an_image_upload_shows_the_answer_of_post_query(browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    image = sorted(IMAGES.glob("*.png"))[len(viewer.ids) + 6]  # a film outside the archive
    dicom = _as_dicom(image, tmp_path / "scan.dcm")
    body, kind = _multipart(dicom, {"k": "5", "method": "knn"})
    status, raw, _ = viewer.call("/query", body, kind)
    want = json.loads(raw)
    assert status == 200 and want["duplicate_of"] is None and len(want["hits"]) == 5, want
    Select(browser.find_element(By.ID, "method")).select_by_value("knn")
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("5")
    browser.find_element(By.ID, "file").send_keys(str(dicom))  # choosing a file starts the query
    cards = _cards(browser, 5)
    assert [c.get_attribute("data-id") for c in cards] == [h["image_id"] for h in want["hits"]]
    _wait(browser, lambda d: d.execute_script("return document.getElementById('query-img').naturalWidth") > 0)
    assert browser.find_element(By.ID, "query-name").text == "scan.dcm"
    _screenshot(browser, "viewer-upload", 1280, 800)
    assert _console_errors(browser) == []


def test_a_wrong_token_is_asked_again_with_one_line(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(viewer.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(viewer.url + "/")
    dialog = browser.find_element(By.ID, "token-dialog")
    _wait(browser, lambda d: dialog.get_attribute("open") is not None)
    browser.find_element(By.ID, "token").send_keys("not-the-token" + Keys.ENTER)
    error = browser.find_element(By.ID, "token-error")
    _wait(browser, lambda d: error.is_displayed() and "not accepted" in error.text)
    assert "\n" not in error.text and "401" in error.text
    browser.find_element(By.ID, "token").send_keys(TOKEN + Keys.ENTER)
    _wait(browser, lambda d: "archived images" in d.find_element(By.ID, "status").text)
    assert dialog.get_attribute("open") is None
    # the only console errors are the refused requests themselves
    assert _console_errors(browser, allowed=("401",)) == []


def test_an_api_error_is_one_line_on_the_page(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_with_token(browser, viewer)
    browser.find_element(By.ID, "image-id").send_keys("no-such-image.png" + Keys.ENTER)
    error = browser.find_element(By.ID, "error")
    _wait(browser, lambda d: error.is_displayed())
    line = browser.find_element(By.ID, "error-text").text
    assert line == "no-such-image.png is not in the archive." and "HTTP" not in line  # plain words first
    more = browser.find_element(By.ID, "error-more")
    assert more.is_displayed() and not browser.find_element(By.ID, "error-detail").is_displayed()
    more.find_element(By.TAG_NAME, "summary").click()  # the service's own line, on demand
    detail = browser.find_element(By.ID, "error-detail").text
    assert "no-such-image.png" in detail and "(HTTP 404)" in detail and "\n" not in detail


def test_the_door_refuses_from_the_headers_on_the_real_service(viewer: Viewer) -> None:
    """An unauthenticated 1 GB upload is answered 401 before any of it is sent; /health tells a caller
    without the token only its status; OpenAPI needs the token too; unknown routes answer JSON."""
    import socket

    from tests.unit.test_gate import _answer

    host, port = "127.0.0.1", viewer.running.port
    for auth, code in (("", 401), (f"Authorization: Bearer {TOKEN}\r\n", 413)):
        with socket.create_connection((host, port)) as sock:
            sock.sendall(f"POST /query/image HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: multipart/form-data; "
                         f"boundary=b\r\nContent-Length: {1 << 30}\r\n\r\n".encode())
            status, doc = _answer(sock)
        assert status == code and set(doc) == {"error"}
    status, body, _ = viewer.call("/health", token=None)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body, _ = viewer.call("/health")
    assert json.loads(body)["images"] == 24
    for path in ("/docs", "/openapi.json", "/config"):
        assert viewer.call(path, token=None)[0] == 401, path
    assert viewer.call("/docs")[0] == 200
    status, body, _ = viewer.call("/no/such/route")
    assert status == 404 and json.loads(body) == {"error": "Not Found"}
    status, body, _ = viewer.call("/query", b"[" * 50_000 + b"]" * 50_000)  # 100 KB of nesting
    assert status == 400 and json.loads(body) == {"error": "the request body is nested too deeply"}


def test_the_filters_and_more_like_these_show_the_apis_answers(browser: Any, viewer: Viewer) -> None:
    """Each narrowing control changes the shown results to the API's answer for the same request."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    config = viewer.json("/config")
    assert {"filters", "examples"} <= set(config["features"]) and "No Finding" in config["findings"]
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[3]
    browser.find_element(By.ID, "image-id").send_keys(query)
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("5")
    toggle = browser.find_element(By.CSS_SELECTOR, '#finding-toggles .toggle[data-finding="No Finding"]')
    for _ in range(3):  # the chip steps through /config's findings fields: all of, any of, none of
        toggle.click()
    assert toggle.get_attribute("data-state") == "without" and "shows none of" in toggle.get_attribute("aria-label")
    browser.find_element(By.ID, "f-views").send_keys("PA")
    browser.find_element(By.ID, "f-age-min").send_keys("20")
    Select(browser.find_element(By.ID, "method")).select_by_value("hybrid")
    browser.find_element(By.ID, "search").click()
    want = viewer.json("/query", {"id": query, "k": 5, "method": "hybrid", "exclude_patient": True,
                                  "filter": {"without": ["No Finding"], "views": ["PA"], "age_min": 20}})
    cards = _cards(browser, len(want["hits"]))
    assert [c.get_attribute("data-id") for c in cards] == [h["image_id"] for h in want["hits"]]
    assert want["passing"] is not None and f"{want['passing']} archived X-rays pass the filter" in \
        browser.find_element(By.ID, "summary").text
    _screenshot(browser, "viewer-narrowed", 1280, 900)
    _screenshot(browser, "viewer-narrowed-narrow", 560, 1100)
    browser.find_element(By.CSS_SELECTOR, "#more-filters summary").click()  # the rarely used fields, unfolded
    _screenshot(browser, "viewer-filters", 1400, 1000)
    _screenshot(browser, "viewer-filters-narrow", 400, 1600)
    browser.find_element(By.CSS_SELECTOR, "#more-filters summary").click()
    browser.set_window_size(1280, 900)

    picks = browser.find_elements(By.CSS_SELECTOR, "#grid .pick input")
    picks[0].click()
    picks[2].click()
    more = browser.find_element(By.ID, "more-like")
    assert more.is_enabled() and more.text == "Search with the query + 2 examples"  # the query is said, not added silently
    chosen = [picks[0].get_attribute("data-id"), picks[2].get_attribute("data-id")]
    more.click()
    want = viewer.json("/query", {"ids": [query, *chosen], "k": 5, "method": "hybrid", "exclude_patient": True,
                                  "filter": {"without": ["No Finding"], "views": ["PA"], "age_min": 20}})
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    assert browser.find_element(By.ID, "examples-title").text == "Query + 2 examples"
    cards = _cards(browser, len(want["hits"]))
    assert not {c.get_attribute("data-id") for c in cards} & {query, *chosen}

    assert browser.find_element(By.ID, "narrow-state").text == "(3 conditions set)"  # seen when folded
    browser.find_element(By.ID, "clear-filter").click()
    assert toggle.get_attribute("data-state") == "" and browser.find_element(By.ID, "f-age-min").get_attribute("value") == ""
    assert _console_errors(browser) == []
    browser.set_window_size(560, 900)  # a phone: the filters start folded, the results come first
    _open_with_token(browser, viewer)
    assert browser.find_element(By.ID, "narrow").get_attribute("open") is None
    browser.set_window_size(1280, 800)


def test_the_filter_controls_are_built_from_config(browser: Any, viewer: Viewer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field of /config's "filters" is a labelled control (in the service's order, the rest under "More
    filters"); a field the service adds, drops or relabels changes the page with no edit to it, and what is
    set is sent as the request's filter, narrowing the results to the API's answer."""
    from collections import Counter

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    import cxrneo.api.routes.info
    from cxrneo.filters import describe

    fields = [f for f in describe() if f["name"] != "sex"]  # the service drops one field ...
    communities = next(f for f in fields if f["name"] == "communities")
    fields.remove(communities)
    fields.insert(0, {**communities, "label": "Louvain group"})  # ... and moves one up, relabelled
    monkeypatch.setattr(cxrneo.api.routes.info, "describe", lambda: fields)
    assert viewer.json("/config")["filters"] == fields
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    assert not browser.find_elements(By.ID, "f-sex")
    others = [f for f in fields if f["kind"] != "findings"]
    for place, chosen in (("filter-fields", others[:4]), ("more-fields", others[4:])):
        controls = browser.find_elements(By.CSS_SELECTOR, f"#{place} [data-field]")
        assert [c.get_attribute("data-field") for c in controls] == [f["name"] for f in chosen]
        for control, field in zip(controls, chosen, strict=True):
            label = browser.find_element(By.CSS_SELECTOR, f'label[for="{control.get_attribute("id")}"]')
            assert label.get_attribute("textContent") == field["label"]
            assert control.get_attribute("title") == field["help"]
    assert browser.find_element(By.ID, "f-age-min").get_attribute("max") == "150"
    hint = browser.find_element(By.ID, "findings-hint").text
    assert [f["label"].lower() in hint for f in fields if f["kind"] == "findings"] == [True] * 3

    query = viewer.ids[3]
    everyone = viewer.json("/query", {"id": query, "k": 23, "method": "knn"})["hits"]
    group, _ = Counter(h["community"] for h in everyone).most_common(1)[0]
    members = [h for h in everyone if h["community"] == group]
    browser.execute_script("""
        window.sent = []; const real = window.fetch;
        window.fetch = (path, options) => {
          if (String(path) === "query") window.sent.push(JSON.parse(options.body));
          return real(path, options);
        };""")
    browser.find_element(By.ID, "image-id").send_keys(query)
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("5")
    Select(browser.find_element(By.ID, "method")).select_by_value("knn")
    browser.find_element(By.ID, "f-communities").send_keys("x")  # refused on the page, in one line
    browser.find_element(By.ID, "search").click()
    _wait(browser, lambda d: "Louvain group: whole numbers" in d.find_element(By.ID, "error").text)
    browser.find_element(By.ID, "f-communities").clear()
    browser.find_element(By.ID, "f-communities").send_keys(f" {group} ,")
    browser.find_element(By.CSS_SELECTOR, "#more-filters summary").click()
    browser.find_element(By.ID, "f-not-patients").send_keys(f"{members[0]['patient_id']}, nobody")
    assert browser.find_element(By.ID, "more-state").text == "(1 set)"
    browser.find_element(By.ID, "search").click()
    body = {"id": query, "k": 5, "method": "knn", "exclude_patient": True,
            "filter": {"communities": [group], "not_patients": [members[0]["patient_id"], "nobody"]}}
    want = viewer.json("/query", body)
    assert want["hits"] and {h["community"] for h in want["hits"]} == {group}
    cards = _cards(browser, len(want["hits"]))
    assert [c.get_attribute("data-id") for c in cards] == [h["image_id"] for h in want["hits"]]
    assert browser.execute_script("return window.sent") == [body]
    assert browser.find_element(By.ID, "narrow-state").text == "(2 conditions set)"
    assert not browser.find_element(By.ID, "error").is_displayed()
    browser.find_element(By.ID, "clear-filter").click()
    assert browser.find_element(By.ID, "f-communities").get_attribute("value") == ""
    assert browser.find_element(By.ID, "narrow-state").text == ""
    assert _console_errors(browser) == []


def test_finding_sliders_move_the_query_and_refuse_bad_steps(viewer: Viewer) -> None:
    query = viewer.ids[2]
    plain = viewer.json("/query", {"id": query, "k": 8, "method": "knn"})
    moved = viewer.json("/query", {"id": query, "k": 8, "method": "knn", "concepts": {"Effusion": 1.0}})
    assert len(moved["hits"]) == 8 and query not in {h["image_id"] for h in moved["hits"]}
    assert [h["image_id"] for h in moved["hits"]] != [h["image_id"] for h in plain["hits"]]  # the query moved
    for concepts, words in (({"Efusion": 0.5}, "unknown finding 'Efusion' for a slider"),
                            ({"Effusion": 3}, "a slider moves by -1 to 1")):
        status, body, _ = viewer.call("/query", json.dumps({"id": query, "concepts": concepts}).encode())
        assert status == 400 and words in json.loads(body)["error"], body


def test_the_finding_slider_and_several_uploads_show_the_apis_answers(
    browser: Any, viewer: Viewer, tmp_path: Path
) -> None:
    """The page's finding slider sends the API's concepts; several uploaded files are one query."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert "sliders" in viewer.json("/config")["features"]  # the service holds the graph's checkpoint
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[7]
    browser.find_element(By.ID, "image-id").send_keys(query)
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("6")
    Select(browser.find_element(By.ID, "method")).select_by_value("knn")
    Select(browser.find_element(By.ID, "concept")).select_by_value("Effusion")
    step = browser.find_element(By.ID, "concept-step")
    browser.execute_script("arguments[0].value = '0.75'; arguments[0].dispatchEvent(new Event('input'))", step)
    assert browser.find_element(By.ID, "concept-value").text == "+0.75"
    browser.find_element(By.ID, "search").click()
    want = viewer.json("/query", {"id": query, "k": 6, "method": "knn", "exclude_patient": True,
                                  "concepts": {"Effusion": 0.75}})
    _wait(browser, lambda d: d.find_element(By.ID, "steer-step").text == "Steered: More Effusion, +0.75")
    cards = _cards(browser, 6)
    assert [c.get_attribute("data-id") for c in cards] == [h["image_id"] for h in want["hits"]]
    plain = viewer.json("/query", {"id": query, "k": 6, "method": "knn", "exclude_patient": True})
    steered, unsteered = (sum("Effusion" in h["labels"] for h in a["hits"]) for a in (want, plain))
    _wait(browser, lambda d: d.find_element(By.ID, "steer-count").text
          == f"Effusion in {steered} of 6 results ({unsteered} of 6 without the step)")
    _screenshot(browser, "viewer-slider", 1280, 900)
    browser.set_window_size(1280, 800)
    assert _console_errors(browser) == []

    two = [IMAGES / viewer.ids[0], IMAGES / viewer.ids[1]]
    parts = [b'--b0\r\nContent-Disposition: form-data; name="k"\r\n\r\n5\r\n',
             b'--b0\r\nContent-Disposition: form-data; name="method"\r\n\r\nknn\r\n',
             b'--b0\r\nContent-Disposition: form-data; name="not_ids"\r\n\r\n["' + viewer.ids[2].encode() + b'"]\r\n']
    for path in two:
        parts.append(f'--b0\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n\r\n'.encode()
                     + path.read_bytes() + b"\r\n")
    status, body, _ = viewer.call("/query", b"".join(parts) + b"--b0--\r\n", "multipart/form-data; boundary=b0")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["query"] == "2 examples, 1 unlike" and len(answer["hits"]) == 5
    assert viewer.ids[2] not in {h["image_id"] for h in answer["hits"]}


def test_explain_returns_the_maps_as_png_and_json(viewer: Viewer) -> None:
    a, b = viewer.ids[0], viewer.ids[4]
    status, png, kind = viewer.call(f"/explain?query={a}&hit={b}")
    assert status == 200 and kind == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    doc = viewer.json(f"/explain?query={a}&hit={b}&format=json")
    assert doc["grid"] == [2, 2] and len(doc["query_map"]) == 2  # the test checkpoint reads 64 px: a 2 x 2 grid
    assert sum(map(sum, doc["query_map"])) == pytest.approx(doc["cosine"], abs=1e-5)
    assert sum(map(sum, doc["hit_map"])) == pytest.approx(doc["cosine"], abs=1e-5)
    for side in ("query", "hit"):
        status, png, kind = viewer.call(f"/explain?query={a}&hit={b}&side={side}&size=256")
        assert status == 200 and kind == "image/png"
    for path, code, words in ((f"/explain?query={a}&hit=nope.png", 404, "nope.png"),
                              (f"/explain?query={a}&hit={b}&side=left", 422, "side")):
        status, body, _ = viewer.call(path)
        assert status == code and words in json.loads(body)["error"], body
    assert viewer.call(f"/explain?query={a}&hit={b}", token=None)[0] == 401


def test_the_large_view_overlays_where_query_and_hit_are_alike(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    assert "maps" in viewer.json("/config")["features"]
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[6]
    field = browser.find_element(By.ID, "image-id")
    field.send_keys(query)
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("4")
    field.send_keys(Keys.ENTER)
    cards = _cards(browser, 4)
    cards[1].click()
    dialog = browser.find_element(By.ID, "detail")
    _wait(browser, lambda d: dialog.get_attribute("open") is not None)
    toggle = browser.find_element(By.ID, "show-maps")
    _wait(browser, lambda d: d.find_element(By.ID, "maps-toggle").is_displayed())
    plain = browser.find_element(By.ID, "detail-hit").get_attribute("src")
    toggle.click()
    _wait(browser, lambda d: "Coloured where the two films are alike" in d.find_element(By.ID, "maps-words").text)
    for name in ("detail-query", "detail-hit"):
        _wait(browser, lambda d, n=name: d.execute_script(f"return document.getElementById('{n}').naturalWidth") > 0)
    hit = cards[1].get_attribute("data-id")
    status, png, _ = viewer.call(f"/explain?query={query}&hit={hit}&side=hit&size=1024")
    assert browser.find_element(By.ID, "detail-hit").get_attribute("src") != plain
    assert status == 200 and _blob_bytes(browser, browser.find_element(By.ID, "detail-hit")) == png  # the API's overlay
    key = browser.find_element(By.CSS_SELECTOR, "#maps-key .key-bar")
    assert key.is_displayed() and key.text.startswith("less alike") and key.text.endswith("more alike")
    _screenshot(browser, "viewer-maps", 1280, 800)
    overlaid = _box(browser, "detail-hit")  # measured at the screenshot's window size, as the plain film below
    toggle.click()
    _wait(browser, lambda d: not d.find_element(By.ID, "maps-key").is_displayed())
    _wait(browser, lambda d: d.find_element(By.ID, "detail-hit").get_attribute("src") not in ("", None)
          and d.execute_script("return document.getElementById('detail-hit').complete"))
    assert _box(browser, "detail-hit") == overlaid  # the film keeps its size with and without the map
    framed = _box(browser, "detail-hit")
    browser.find_element(By.ID, "detail-hit").click()  # full size: the film's own pixels, scrolled in its frame
    natural = browser.execute_script("return document.getElementById('detail-hit').naturalWidth")
    assert _box(browser, "detail-hit")[0] == natural > framed[0]
    browser.find_element(By.ID, "detail-hit").click()
    assert _box(browser, "detail-hit") == framed
    browser.set_window_size(1280, 800)
    assert _console_errors(browser) == []


def _box(driver: Any, element_id: str) -> tuple[int, int]:
    """An element's laid-out width and height in whole CSS pixels."""
    w, h = driver.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect(); return [r.width, r.height]", element_id)
    return round(w), round(h)


def _ask(driver: Any, image: str, k: int, method: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    field = driver.find_element(By.ID, "image-id")
    field.clear()
    field.send_keys(image)
    driver.find_element(By.ID, "k").clear()
    driver.find_element(By.ID, "k").send_keys(str(k))
    Select(driver.find_element(By.ID, "method")).select_by_value(method)
    driver.find_element(By.ID, "search").click()


def _shown(driver: Any) -> list[str]:
    ids: list[str] = driver.execute_script("return [...document.querySelectorAll('#grid .card')].map(c => c.dataset.id)")
    return ids


def test_cards_say_how_alike_and_sort_by_similarity_without_asking_again(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[9]
    want = viewer.json("/query", {"id": query, "k": 12, "method": "community", "exclude_patient": True})
    _ask(browser, query, 12, "community")
    cards = _cards(browser, 12)
    assert _shown(browser) == [h["image_id"] for h in want["hits"]]
    assert browser.find_element(By.ID, "order-text").text.startswith("In the order the community search grew them")
    _wait(browser, lambda d: d.execute_script("return document.querySelectorAll('#graph canvas').length") > 0)
    _screenshot(browser, "viewer-readme", 1440, 1000)  # docs/viewer.png is a copy of this one
    browser.set_window_size(1280, 800)
    for card, hit in zip(cards, want["hits"], strict=True):
        words = card.find_element(By.CSS_SELECTOR, ".alike").text
        if hit.get("closer_than") is None:
            assert words.startswith("similarity 0.") or words.startswith("similarity 1.")
        else:  # "closer than 99.8% of the archive": the share, cut to one decimal
            share = float(re.fullmatch(r"closer than (\d+\.\d)% of the archive", words).group(1))
            assert 0 <= 100 * hit["closer_than"] - share < 0.1 + 1e-9
        marks = card.find_elements(By.CSS_SELECTOR, ".fallback")
        assert len(marks) == int(hit["fallback"])
        if marks:
            assert marks[0].text == "added by similarity alone" and "alike by itself" in marks[0].get_attribute("title")
            assert marks[0].size["height"] < 2 * card.find_element(By.CSS_SELECTOR, ".alike").size["height"]  # one line
    browser.execute_script("""
        window.asked = 0; const real = window.fetch;
        window.fetch = (path, options) => {
          if (String(path).startsWith("query")) window.asked++;
          return real(path, options);
        };""")
    toggle = browser.find_element(By.ID, "sort-toggle")
    toggle.click()
    by_cosine = sorted(want["hits"], key=lambda h: (-h["cosine"], h["rank"]))
    assert _shown(browser) == [h["image_id"] for h in by_cosine]
    assert toggle.get_attribute("aria-pressed") == "true" and "Most alike first" in browser.find_element(By.ID, "order-text").text
    first = browser.find_elements(By.CSS_SELECTOR, "#grid .card")[0]
    first.click()  # the closer look steps through the shown order
    _wait(browser, lambda d: d.find_element(By.ID, "detail-title").text == f"Result {by_cosine[0]['rank']} of 12")
    browser.switch_to.active_element.send_keys("\ue014")  # arrow right
    _wait(browser, lambda d: d.find_element(By.ID, "detail-title").text == f"Result {by_cosine[1]['rank']} of 12")
    browser.find_element(By.ID, "close").click()
    toggle.click()
    assert _shown(browser) == [h["image_id"] for h in want["hits"]]
    assert browser.execute_script("return window.asked") == 0  # sorted here, not asked again
    knn = viewer.json("/query", {"id": query, "k": 5, "method": "knn", "exclude_patient": True})
    _ask(browser, query, 5, "knn")
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in knn["hits"]])
    assert browser.find_element(By.ID, "order-text").text == "Most alike first."
    assert not browser.find_element(By.ID, "sort-toggle").is_displayed()  # kNN is already in that order
    assert _console_errors(browser) == []


def test_a_changed_setting_marks_the_results_out_of_date(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    stale = browser.find_element(By.ID, "stale")
    assert not stale.is_displayed()
    browser.find_element(By.ID, "k").send_keys("1")  # nothing on show yet: nothing to mark
    assert not stale.is_displayed()
    changes = [
        lambda: browser.find_element(By.ID, "k").send_keys("\ue003"),  # backspace: K changes
        lambda: Select(browser.find_element(By.ID, "method")).select_by_value("hybrid"),
        lambda: browser.find_element(By.ID, "exclude-patient").click(),
        lambda: browser.find_element(By.CSS_SELECTOR, "#finding-toggles .toggle").click(),
        lambda: browser.find_element(By.ID, "f-age-min").send_keys("30"),
        lambda: Select(browser.find_element(By.ID, "concept")).select_by_value("Effusion"),
    ]
    for change in changes:
        browser.find_element(By.ID, "clear-filter").click()
        _ask(browser, viewer.ids[4], 4, "knn")
        _wait(browser, lambda d: not d.find_element(By.ID, "stale").is_displayed() and len(_shown(d)) == 4)
        assert "is-stale" not in browser.find_element(By.ID, "results").get_attribute("class")
        change()
        assert stale.text == "Settings changed - press Search to update" and stale.get_attribute("aria-live") == "polite"
        assert "is-stale" in browser.find_element(By.ID, "results").get_attribute("class")
        opacity = browser.execute_script("return getComputedStyle(document.getElementById('grid')).opacity")
        assert float(opacity) < 1  # dimmed
    browser.find_element(By.ID, "clear-filter").click()
    assert _console_errors(browser) == []


def test_the_address_holds_the_search_and_back_returns_to_the_one_before(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    first, second = viewer.ids[2], viewer.ids[11]
    body = {"id": first, "k": 5, "method": "hybrid", "exclude_patient": True, "filter": {"age_min": 10},
            "concepts": {"Effusion": 0.5}}
    want = viewer.json("/query", body)
    browser.find_element(By.ID, "f-age-min").send_keys("10")
    from selenium.webdriver.support.select import Select
    Select(browser.find_element(By.ID, "concept")).select_by_value("Effusion")
    browser.execute_script("const s = document.getElementById('concept-step'); s.value = '0.5';"
                           "s.dispatchEvent(new Event('input'))")
    _ask(browser, first, 5, "hybrid")
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    address = browser.current_url
    assert f"id={first}" in address and "method=hybrid" in address and "k=5" in address

    browser.execute_script("window.open(arguments[0], '_blank')", address)  # a fresh page, the same tab's key
    browser.switch_to.window(browser.window_handles[-1])
    _cards(browser, len(want["hits"]))
    assert _shown(browser) == [h["image_id"] for h in want["hits"]]
    assert browser.find_element(By.ID, "f-age-min").get_attribute("value") == "10"
    assert browser.find_element(By.ID, "steer-step").text == "Steered: More Effusion, +0.5"
    assert browser.current_url == address  # opening a search does not add another entry
    browser.close()
    browser.switch_to.window(browser.window_handles[0])

    other = viewer.json("/query", {"id": second, "k": 3, "method": "knn", "exclude_patient": True,
                                   "filter": {"age_min": 10}, "concepts": {"Effusion": 0.5}})
    _ask(browser, second, 3, "knn")
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in other["hits"]])
    assert browser.current_url != address
    browser.back()
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    assert browser.current_url == address
    assert browser.find_element(By.ID, "image-id").get_attribute("value") == first
    assert browser.find_element(By.ID, "method").get_attribute("value") == "hybrid"
    browser.forward()
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in other["hits"]])
    assert _console_errors(browser) == []


def test_examples_stay_on_show_and_can_be_removed(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[8]
    _ask(browser, query, 5, "knn")
    _cards(browser, 5)
    picks = browser.find_elements(By.CSS_SELECTOR, "#grid .pick input")
    chosen = [picks[1].get_attribute("data-id"), picks[3].get_attribute("data-id")]
    picks[1].click()
    picks[3].click()
    browser.find_element(By.ID, "more-like").click()
    _wait(browser, lambda d: d.find_element(By.ID, "examples-title").text == "Query + 2 examples")
    want = viewer.json("/query", {"ids": [query, *chosen], "k": 5, "method": "knn", "exclude_patient": True})
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    shown = browser.find_elements(By.CSS_SELECTOR, "#example-list .example")
    assert [e.find_element(By.CSS_SELECTOR, ".example-id").text for e in shown] == chosen
    _wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#example-list img')].every(i => i.complete && i.naturalWidth > 0)"))
    assert "example=" in browser.current_url
    _screenshot(browser, "viewer-examples", 1440, 1000)
    browser.set_window_size(1280, 800)

    browser.find_element(By.CSS_SELECTOR, f'#example-list .remove[data-id="{chosen[0]}"]').click()  # the undo
    assert browser.find_element(By.ID, "examples-title").text == "Query + 1 example"
    assert browser.find_element(By.ID, "stale").text == "Examples changed - press Search to update"
    browser.find_element(By.ID, "search").click()  # a plain Search keeps the example still shown
    fewer = viewer.json("/query", {"ids": [query, chosen[1]], "k": 5, "method": "knn", "exclude_patient": True})
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in fewer["hits"]]
          and not d.find_element(By.ID, "stale").is_displayed())
    browser.find_element(By.CSS_SELECTOR, "#example-list .remove").click()
    assert not browser.find_element(By.ID, "examples").is_displayed()
    assert _console_errors(browser) == []


def test_plain_page_skip_link_legend_and_phone_layout(browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    """The skip link comes first; graph internals wait under Advanced; the "shared" mark has its legend; an
    unreadable upload marks the results on show as old; a phone shows a small query and the films side by side."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to results" and skip.get_attribute("href").endswith("#results")
    status = browser.find_element(By.ID, "status").text
    assert status == "24 archived images" and "generation" not in status
    assert not browser.find_element(By.ID, "status-advanced").is_displayed()
    query = next(i for i in viewer.ids if viewer.json(f"/images/{i}")["labels"])  # one with findings to share
    _ask(browser, query, 6, "knn")
    _cards(browser, 6)
    legend = browser.find_element(By.ID, "mark-legend")
    assert legend.is_displayed() and "a finding the query has too" in legend.text
    assert not browser.find_element(By.ID, "browser-link").is_displayed()  # Neo4j Browser under Advanced
    mark = browser.execute_script("return getComputedStyle(document.querySelector('#mark-legend .chip'), '::before').content")
    tick = browser.find_element(By.CSS_SELECTOR, "#findings-hint .key").text
    assert "◉" in mark and "◉" not in tick  # unlike the filter's "must show" tick

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not an image")
    browser.find_element(By.ID, "file").send_keys(str(broken))
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed())
    line = browser.find_element(By.ID, "error-text").text
    assert line.startswith("This file was not accepted: broken.png") and "HTTP" not in line
    assert browser.find_element(By.ID, "stale").text.startswith("The last search failed")

    _ask(browser, query, 6, "knn")
    _wait(browser, lambda d: not d.find_element(By.ID, "stale").is_displayed())
    _cards(browser, 6)
    browser.set_window_size(420, 900)  # a phone opens the same search from its address
    browser.get(browser.current_url)
    cards = _cards(browser, 6)
    _wait(browser, lambda d: d.execute_script("return document.getElementById('query-img').naturalWidth") > 0)
    assert _box(browser, "query-img")[1] <= 160  # a small query, the results on the first screen
    _screenshot(browser, "viewer-phone", 420, 900)
    browser.execute_script("arguments[0].click()", cards[0])
    _wait(browser, lambda d: d.execute_script("return document.getElementById('detail-hit').naturalWidth") > 0)
    rects = browser.execute_script("return ['detail-query', 'detail-hit'].map(i => "
                                   "document.getElementById(i).parentElement.getBoundingClientRect().toJSON())")
    assert round(rects[0]["top"]) == round(rects[1]["top"]) and rects[0]["right"] <= rects[1]["left"]  # side by side
    _screenshot(browser, "viewer-phone-detail", 420, 900)
    browser.find_element(By.ID, "close").click()
    browser.set_window_size(1280, 800)
    assert _console_errors(browser, allowed=("400",)) == []


def _upload_answer(viewer: Viewer, path: Path, fields: dict[str, str]) -> Any:
    status, raw, _ = viewer.call("/query/image", *_multipart(path, fields))
    assert status == 200, raw
    answer = json.loads(raw)
    assert {"familiar", "unfamiliar", "duplicate_of"} <= set(answer)
    return answer


def test_an_unfamiliar_upload_is_warned_about_above_the_results(browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    squares = tmp_path / "blank.png"  # a uniform grey picture: nothing like a chest film
    Image.fromarray(np.full((256, 256), 128, np.uint8)).save(squares)
    want = _upload_answer(viewer, squares, {"k": "4", "method": "knn"})
    assert want["familiar"] is False and want["unfamiliar"]
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    Select(browser.find_element(By.ID, "method")).select_by_value("knn")
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("4")
    browser.find_element(By.ID, "file").send_keys(str(squares))
    _cards(browser, len(want["hits"]))
    warning = browser.find_element(By.ID, "unfamiliar")
    assert warning.is_displayed() and warning.get_attribute("role") == "alert"
    assert "does not look like the chest X-rays in the archive" in warning.text and want["unfamiliar"][1:] in warning.text
    above = browser.execute_script("return arguments[0].compareDocumentPosition(document.getElementById('grid'))", warning)
    assert above & 4  # the grid follows the warning
    _screenshot(browser, "viewer-unfamiliar", 1440, 1000)
    browser.set_window_size(1280, 800)
    film = IMAGES / viewer.ids[3]
    assert _upload_answer(viewer, film, {"k": "4", "method": "knn"})["familiar"] is True
    browser.find_element(By.ID, "file").send_keys(str(film))
    _wait(browser, lambda d: not d.find_element(By.ID, "unfamiliar").is_displayed())
    assert _console_errors(browser) == []


def test_an_upload_of_an_archived_film_shows_that_film(browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    film = viewer.ids[10]
    copy = tmp_path / "from-the-ward.png"
    shutil.copyfile(IMAGES / film, copy)
    want = _upload_answer(viewer, copy, {"k": "5", "method": "knn"})
    assert want["duplicate_of"] == film
    record = viewer.json(f"/images/{film}")
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    Select(browser.find_element(By.ID, "method")).select_by_value("knn")
    browser.find_element(By.ID, "k").clear()
    browser.find_element(By.ID, "k").send_keys("5")
    browser.find_element(By.ID, "file").send_keys(str(copy))
    _cards(browser, len(want["hits"]))
    assert _shown(browser) == [h["image_id"] for h in want["hits"]]
    assert browser.find_element(By.ID, "query-name").text == film
    twin = browser.find_element(By.ID, "query-twin").text
    assert "from-the-ward.png" in twin and f"is this archived film: {film}" in twin
    chips = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#query-chips .chip")]
    assert chips == ([label.replace("_", " ") for label in record["labels"]] or ["No Finding"])
    assert _console_errors(browser) == []


def test_a_film_too_small_is_refused_in_one_plain_line(browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((40, 200), 128, np.uint8)).save(tiny)
    status, raw, _ = viewer.call("/query/image", *_multipart(tiny, {}))
    refusal = json.loads(raw)["error"]
    assert status == 400 and "\n" not in refusal
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    _ask(browser, viewer.ids[1], 3, "knn")
    _cards(browser, 3)
    browser.find_element(By.ID, "file").send_keys(str(tiny))
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert browser.find_element(By.ID, "error-text").text == f"This file was not accepted: {refusal}"
    assert browser.find_element(By.ID, "stale").text.startswith("The last search failed")
    assert _console_errors(browser, allowed=("400",)) == []


# --- refine by region: the box on the query film ---------------------------------------------------------


def _region_in_address(driver: Any) -> list[float] | None:
    """The region the page's address holds (what the page sent with its last search)."""
    values = urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query).get("region")
    return [float(v) for v in values[0].split(",")] if values else None


def _drag(driver: Any, element_id: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag over an element between two points given as fractions of its width and height."""
    from selenium.webdriver.common.action_chains import ActionChains

    element = driver.find_element("id", element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)  # all of it in view:
    # WebDriver's offsets count from the centre of the part in view
    w, h = element.size["width"], element.size["height"]
    at = [(round((x - 0.5) * w), round((y - 0.5) * h)) for x, y in (start, end)]  # offsets from the centre
    (ActionChains(driver).move_to_element_with_offset(element, *at[0]).click_and_hold()
     .move_to_element_with_offset(element, (at[0][0] + at[1][0]) // 2, (at[0][1] + at[1][1]) // 2)
     .move_to_element_with_offset(element, *at[1]).release().perform())


def test_explain_maps_a_region_of_the_query_against_a_hit(viewer: Viewer) -> None:
    a = viewer.ids[0]
    box = [0.0, 0.0, 0.5, 0.5]  # the test checkpoint's 2 x 2 grid: exactly the top left cell
    answer = viewer.json("/query", {"id": a, "k": 5, "method": "knn", "exclude_patient": False, "region": box})
    hit = answer["hits"][0]
    doc = viewer.json(f"/explain?query={a}&hit={hit['image_id']}&format=json&region={','.join(map(str, box))}")
    assert doc["region"] == box and doc["grid"] == [2, 2]
    assert doc["query_map"][0][1] == doc["query_map"][1][0] == doc["query_map"][1][1] == 0  # only the box counts
    assert doc["query_map"][0][0] > 0
    assert doc["cosine"] == pytest.approx(hit["cosine"], abs=1e-4)  # the region query's own likeness
    assert sum(map(sum, doc["hit_map"])) == pytest.approx(doc["cosine"], abs=1e-5)
    plain = viewer.json(f"/explain?query={a}&hit={hit['image_id']}&format=json")
    assert plain["region"] is None and plain["query_map"] != doc["query_map"]
    for bad in ("0.5,0.2,0.1,0.7", "0.1,0.2", "a,b,c,d"):
        status, body, _ = viewer.call(f"/explain?query={a}&hit={hit['image_id']}&region={bad}")
        assert status == 400 and "region" in json.loads(body)["error"], body


def test_a_box_drawn_with_the_mouse_searches_that_region(browser: Any, viewer: Viewer) -> None:
    """Drag a box on the query film, Search: the cards are the API's answer for the region the page sent;
    the closer look outlines the box and maps that region against the result."""
    from selenium.webdriver.common.by import By

    assert "regions" in viewer.json("/config")["features"]
    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[3]
    _ask(browser, query, 6, "knn")
    _cards(browser, 6)
    _wait(browser, lambda d: d.execute_script("return document.getElementById('query-img').naturalWidth") > 0)
    assert not browser.find_element(By.ID, "region-box").is_displayed()
    assert _region_in_address(browser) is None
    _drag(browser, "query-img", (0.3, 0.3), (0.7, 0.6))
    box = browser.find_element(By.ID, "region-box")
    assert box.is_displayed() and browser.find_element(By.ID, "stale").text == "Region changed - press Search to update"
    film, drawn = browser.find_element(By.ID, "query-img").rect, box.rect
    assert drawn["x"] > film["x"] and drawn["y"] > film["y"]  # over the film, where it was dragged
    assert abs(drawn["width"] - 0.4 * film["width"]) < 0.05 * film["width"]
    assert abs(drawn["height"] - 0.3 * film["height"]) < 0.05 * film["height"]
    browser.find_element(By.ID, "search").click()
    _wait(browser, lambda d: _region_in_address(d) is not None and not d.find_element(By.ID, "stale").is_displayed())
    region = _region_in_address(browser)
    assert region is not None
    assert all(abs(got - want) < 0.05 for got, want in zip(region, (0.3, 0.3, 0.7, 0.6), strict=True))
    want = viewer.json("/query", {"id": query, "k": 6, "method": "knn", "exclude_patient": True, "region": region})
    assert want["region"] == region
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    whole = viewer.json("/query", {"id": query, "k": 6, "method": "knn", "exclude_patient": True})
    assert [h["cosine"] for h in want["hits"]] != [h["cosine"] for h in whole["hits"]]  # a query of its own
    assert "Region query: the marked part of the film" in browser.find_element(By.ID, "summary").text
    assert browser.find_element(By.ID, "region-query").is_displayed()
    assert browser.find_element(By.ID, "region-words").text.startswith("Marked: ")
    cards = _cards(browser, 6)
    browser.execute_script("window.scrollTo(0, 0)")
    _screenshot(browser, "viewer-region", 1440, 1000)
    browser.set_window_size(420, 900)  # a phone: the query panel with its box, scrolled to
    browser.execute_script("document.getElementById('query-title').scrollIntoView()")
    _screenshot(browser, "viewer-region-narrow", 420, 900)
    browser.set_window_size(1280, 800)

    cards[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "detail-region-words").is_displayed())
    _wait(browser, lambda d: d.find_element(By.ID, "detail-region").is_displayed())
    toggle = browser.find_element(By.ID, "show-maps")
    _wait(browser, lambda d: d.find_element(By.ID, "maps-toggle").is_displayed())
    toggle.click()
    _wait(browser, lambda d: "marked region" in d.find_element(By.ID, "maps-words").text)
    hit = want["hits"][0]["image_id"]
    for side, element in (("hit", "detail-hit"), ("query", "detail-query")):
        status, png, _ = viewer.call(f"/explain?query={query}&hit={hit}&side={side}&size=1024"
                                     f"&region={','.join(map(str, region))}")
        assert status == 200
        _wait(browser, lambda d, e=element, p=png: _blob_bytes(d, d.find_element(By.ID, e)) == p)  # the API's region maps
    assert browser.find_element(By.ID, "detail-region").is_displayed()
    _screenshot(browser, "viewer-region-maps", 1280, 800)
    toggle.click()
    browser.find_element(By.ID, "close").click()
    browser.set_window_size(1280, 800)
    assert _console_errors(browser) == []


def test_the_keyboard_marks_moves_resizes_and_clears_a_region(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query = viewer.ids[7]
    _ask(browser, query, 5, "community")
    _cards(browser, 5)
    mark = browser.find_element(By.ID, "mark-region")
    mark.send_keys(Keys.ENTER)  # a keyboard press of the button: a centred box, focused
    _wait(browser, lambda d: d.switch_to.active_element.get_attribute("id") == "region-box")
    box = browser.switch_to.active_element
    centred = box.rect
    box.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)  # moves right: the same size
    moved = box.rect
    assert moved["x"] > centred["x"] and moved["width"] == pytest.approx(centred["width"], abs=1)
    box.send_keys(Keys.SHIFT + Keys.ARROW_DOWN)  # taller
    assert box.rect["height"] > moved["height"] and box.rect["y"] == pytest.approx(moved["y"], abs=1)
    assert browser.find_element(By.ID, "stale").text == "Region changed - press Search to update"
    assert _region_in_address(browser) is None  # not searched yet
    box.send_keys(Keys.ENTER)  # Enter searches
    _wait(browser, lambda d: _region_in_address(d) is not None)
    region = _region_in_address(browser)
    assert region is not None
    steps = (0.3 + 0.04, 0.3, 0.7 + 0.04, 0.7 + 0.02)  # the centred box, two steps right, one step taller
    assert all(abs(got - want) < 1e-9 for got, want in zip(region, steps, strict=True))
    want = viewer.json("/query", {"id": query, "k": 5, "method": "community", "exclude_patient": True, "region": region})
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    assert browser.find_element(By.ID, "region-query").is_displayed()

    browser.find_element(By.ID, "region-box").send_keys(Keys.ESCAPE)  # Esc clears
    assert not browser.find_element(By.ID, "region-box").is_displayed()
    assert browser.find_element(By.ID, "stale").text == "Region cleared - press Search to update"
    assert browser.switch_to.active_element.get_attribute("id") == "mark-region"  # focus kept on the panel
    browser.find_element(By.ID, "search").click()
    whole = viewer.json("/query", {"id": query, "k": 5, "method": "community", "exclude_patient": True})
    _wait(browser, lambda d: _region_in_address(d) is None and _shown(d) == [h["image_id"] for h in whole["hits"]])
    assert not browser.find_element(By.ID, "region-query").is_displayed()
    assert "Region query" not in browser.find_element(By.ID, "summary").text

    mark.click()  # "Clear region" by mouse too
    browser.find_element(By.ID, "clear-region").click()
    assert not browser.find_element(By.ID, "region-box").is_displayed()
    assert not browser.find_element(By.ID, "clear-region").is_displayed()
    assert _console_errors(browser) == []


def test_the_address_holds_the_region_and_a_link_reproduces_the_region_search(browser: Any, viewer: Viewer) -> None:
    from selenium.webdriver.common.by import By

    _open_with_token(browser, viewer)
    browser.get_log("browser")
    query, region = viewer.ids[10], [0.1, 0.2, 0.6, 0.7]
    want = viewer.json("/query", {"id": query, "k": 4, "method": "hybrid", "exclude_patient": True, "region": region})
    address = (f"{viewer.url}/?id={query}&method=hybrid&k=4&exclude_patient=1"
               f"&region={urllib.parse.quote(','.join(map(str, region)))}")
    browser.get(address)
    _cards(browser, len(want["hits"]))
    assert _shown(browser) == [h["image_id"] for h in want["hits"]]
    assert _region_in_address(browser) == region and browser.current_url == address  # no new entry
    _wait(browser, lambda d: d.find_element(By.ID, "region-box").is_displayed())
    film, drawn = browser.find_element(By.ID, "query-img").rect, browser.find_element(By.ID, "region-box").rect
    assert drawn["x"] == pytest.approx(film["x"] + region[0] * film["width"], abs=2)  # the box the link holds
    assert drawn["width"] == pytest.approx((region[2] - region[0]) * film["width"], abs=2)
    assert browser.find_element(By.ID, "region-query").is_displayed()

    other = viewer.json("/query", {"id": viewer.ids[12], "k": 4, "method": "hybrid", "exclude_patient": True})
    _ask(browser, viewer.ids[12], 4, "hybrid")  # another film: the box marked on the first is not carried over
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in other["hits"]])
    assert _region_in_address(browser) is None and not browser.find_element(By.ID, "region-box").is_displayed()
    browser.back()  # Back returns to the region search, box and all
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in want["hits"]])
    _wait(browser, lambda d: d.find_element(By.ID, "region-box").is_displayed())

    browser.get(f"{viewer.url}/?id={query}&method=hybrid&k=4&exclude_patient=1&region=0.6,0.2,0.1,0.7")
    whole = viewer.json("/query", {"id": query, "k": 4, "method": "hybrid", "exclude_patient": True})
    _wait(browser, lambda d: _shown(d) == [h["image_id"] for h in whole["hits"]])  # a box turned inside out: ignored
    assert not browser.find_element(By.ID, "region-box").is_displayed()
    assert _console_errors(browser) == []
