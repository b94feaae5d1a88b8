"""A running service answers whether an upload is like the archive, recognises an archived film uploaded
again, and says where each hit stands; over a graph of 120 sample films embedded by the shipped checkpoint."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cxrneo.api.app import create_app
from cxrneo.cli.main import app
from cxrneo.db.connection import Database
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_query_image import EXAMPLES
from tests.serving import Running

pytestmark = pytest.mark.neo4j
TOKEN = "familiar-token-" + "z" * 12
CHECKPOINT = EXAMPLES.parent / "checkpoint" / "best.pt"
IMAGES = EXAMPLES / "images"
ARCHIVED = 120


class Service:
    def __init__(self, url: str, ids: list[str], env: dict[str, str]) -> None:
        self.url, self.ids, self.env = url, ids, env

    def upload(self, path: Path, **fields: str) -> tuple[int, Any]:
        parts = [f'--b0\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode() for n, v in fields.items()]
        parts.append(f'--b0\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n\r\n'.encode()
                     + path.read_bytes() + b"\r\n--b0--\r\n")
        return self._call("/query/image", b"".join(parts), "multipart/form-data; boundary=b0")

    def query(self, doc: dict[str, Any]) -> tuple[int, Any]:
        return self._call("/query", json.dumps(doc).encode(), "application/json")

    def _call(self, path: str, body: bytes, kind: str) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers={"Content-Type": kind, "Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@contextmanager
def shipped_service(neo4j_db: Database, neo4j_settings: Settings, tmp: Path) -> Iterator[tuple[Service, Settings]]:
    """A running service over the first ARCHIVED sample films embedded by the shipped checkpoint (built
    through the CLI into the database behind ``neo4j_settings``), and its settings."""
    neo4j_db.auto("delete_everything")
    env = {"CXRNEO_NEO4J_URI": neo4j_settings.neo4j_uri, "CXRNEO_NEO4J_PASSWORD": neo4j_settings.password(),
           "CXRNEO_DATA_DIR": str(tmp)}
    run = CliRunner(env=env).invoke
    done = run(app, ["embed", str(CHECKPOINT), "--labels", str(EXAMPLES / "Data_Entry_2017.csv"), "--images",
                     str(IMAGES), "--out", str(tmp / "codes.npz"), "--workers", "0", "--max-images", str(ARCHIVED)])
    assert done.exit_code == 0, done.output
    for args in (["ingest", str(tmp / "codes.npz"), "--mean-degree", "8"], ["communities"]):
        done = run(app, args)
        assert done.exit_code == 0, done.output
    ids = sorted(p.name for p in IMAGES.glob("*.png"))[:ARCHIVED]
    settings = neo4j_settings.model_copy(update={"data_dir": tmp})
    searcher = Searcher.connect(settings, CHECKPOINT, images=IMAGES)
    try:
        with Running(create_app(searcher, token=TOKEN, max_upload_bytes=4 << 20)) as running:
            yield Service(running.url, ids, env), settings
    finally:
        searcher.close()


@pytest.fixture(scope="module")
def service(neo4j_db: Database, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with shipped_service(neo4j_db, neo4j_settings, tmp_path_factory.mktemp("familiar")) as (running, _):
        yield running


def test_an_archived_film_uploaded_again_is_answered_as_that_image(service: Service) -> None:
    film = service.ids[5]
    status, answer = service.upload(IMAGES / film, k="5", method="knn")
    assert status == 200 and answer["duplicate_of"] == film and answer["familiar"] is True, answer
    assert film not in [h["image_id"] for h in answer["hits"]] and answer["excluded"] == 1
    status, by_id = service.query({"id": film, "k": 5, "method": "knn"})
    assert status == 200 and by_id["duplicate_of"] is None
    assert [h["image_id"] for h in answer["hits"]] == [h["image_id"] for h in by_id["hits"]]


def test_films_outside_the_archive_are_familiar_and_pictures_are_not(service: Service, tmp_path: Path) -> None:
    unseen = sorted(IMAGES.glob("*.png"))[ARCHIVED:ARCHIVED + 10]
    flagged = []
    for film in unseen:
        status, answer = service.upload(film, k="5")
        assert status == 200 and answer["duplicate_of"] is None, answer
        if not answer["familiar"]:
            flagged.append((film.name, answer["unfamiliar"]))
    assert len(flagged) <= 2, flagged  # the threshold lets through 99% of held-out archived films
    yy, xx = np.mgrid[0:300, 0:400]
    photo = np.stack([xx * 255 // 400, yy * 255 // 300, (xx + yy) % 256], axis=2).astype(np.uint8)
    rng = np.random.default_rng(1)
    pictures = {"grey.png": np.full((256, 256), 128, np.uint8), "photo.png": photo,
                "noise.png": rng.integers(0, 256, (300, 300), dtype=np.uint8)}
    for name, pixels in pictures.items():
        Image.fromarray(pixels).save(tmp_path / name)
        status, answer = service.upload(tmp_path / name, k="5", method="community")
        assert status == 200 and answer["familiar"] is False, (name, answer)
        assert answer["unfamiliar"] and "\n" not in answer["unfamiliar"] and len(answer["hits"]) == 5


def test_an_image_too_small_to_be_a_radiograph_is_refused_in_one_line(service: Service, tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "tiny.png")
    status, answer = service.upload(tmp_path / "tiny.png", k="5")
    assert status == 400 and set(answer) == {"error"} and "too small to be a radiograph" in answer["error"]


@pytest.mark.parametrize("method", ["knn", "community", "hybrid", "diffusion"])
def test_every_hit_says_where_it_stands_among_the_archive(service: Service, method: str) -> None:
    status, answer = service.query({"id": service.ids[3], "k": 8, "method": method})
    assert status == 200 and answer["familiar"] is True
    hits = answer["hits"]
    assert all(0.0 <= h["closer_than"] <= 1.0 for h in hits)
    slack = 2 / (ARCHIVED - 1)  # first-pass values: a row or two either way
    for a in hits:
        for b in hits:
            if a["cosine"] > b["cosine"]:
                assert a["closer_than"] >= b["closer_than"] - slack, (a, b)
    best = max(hits, key=lambda h: h["cosine"])
    if method == "knn":
        assert best["closer_than"] >= 1 - slack - 1 / (ARCHIVED - 1)  # nothing but itself is closer


def test_the_cli_says_an_upload_is_unlike_the_archive(service: Service, tmp_path: Path) -> None:
    Image.fromarray(np.full((256, 256), 40, np.uint8)).save(tmp_path / "dark.png")
    done = CliRunner(env=service.env).invoke(app, ["query", str(tmp_path / "dark.png"), "--checkpoint",
                                                   str(CHECKPOINT), "-k", "3"])
    assert done.exit_code == 0, done.output
    assert "warning: the image is nearly uniform" in done.output and "closer than" in done.output
