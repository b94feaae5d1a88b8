"""Refine by region against a running service and through the CLI: a box of a stored film or of an upload
is answered by every method, within a filter, with counter-examples; over a graph of 120 sample films
embedded by the shipped checkpoint."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cxrneo.cli.main import app
from cxrneo.db.connection import Database
from cxrneo.errors import ConfigError
from cxrneo.service.request import QueryRequest
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_familiar_service import CHECKPOINT, IMAGES, TOKEN, Service, shipped_service

pytestmark = pytest.mark.neo4j
BOX = [0.55, 0.3, 0.95, 0.75]  # the left lung field (the image's right half)


@pytest.fixture(scope="module")
def served(neo4j_db: Database, neo4j_settings: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Settings]]:
    with shipped_service(neo4j_db, neo4j_settings, tmp_path_factory.mktemp("region")) as running:
        yield running


def _ids(answer: dict[str, Any]) -> list[str]:
    return [h["image_id"] for h in answer["hits"]]


@pytest.mark.parametrize("method", ["knn", "community", "hybrid", "diffusion"])
def test_a_region_of_a_stored_film_is_answered_by_every_method_within_a_filter(
        served: tuple[Service, Settings], method: str) -> None:
    service, _ = served
    film = service.ids[7]
    status, whole = service.query({"id": film, "k": 6, "method": method, "filter": {"sex": "F"}})
    assert status == 200 and whole["region"] is None
    status, answer = service.query({"id": film, "k": 6, "method": method, "region": BOX, "filter": {"sex": "F"}})
    assert status == 200, answer
    assert answer["region"] == BOX and answer["method"] == method and film in answer["query"]
    assert len(answer["hits"]) == 6 and film not in _ids(answer)
    assert all(h["sex"] == "F" for h in answer["hits"]) and answer["passing"] == whole["passing"]
    assert answer["duplicate_of"] is None and all(0.0 <= h["closer_than"] <= 1.0 for h in answer["hits"])
    status, upload = service.upload(IMAGES / film, k="6", method=method, region=json.dumps(BOX),
                                    filter=json.dumps({"sex": "F"}))
    assert status == 200 and upload["region"] == BOX
    assert upload["duplicate_of"] is None  # a region is not the whole film: no "this is archived image X"
    assert set(_ids(upload)) - {film} == set(_ids(answer)) - {film}  # the same cells, the same code


def test_the_whole_film_as_a_region_is_the_whole_image_query(served: tuple[Service, Settings]) -> None:
    service, _ = served
    film = service.ids[11]
    status, whole = service.query({"id": film, "k": 8, "method": "knn"})
    status2, boxed = service.query({"id": film, "k": 8, "method": "knn", "region": [0, 0, 1, 1]})
    assert status == status2 == 200 and boxed["region"] == [0, 0, 1, 1]
    assert _ids(boxed) == _ids(whole)


def test_a_region_takes_counter_examples_and_sliders_and_bad_boxes_are_one_line(
        served: tuple[Service, Settings]) -> None:
    service, _ = served
    film, unlike = service.ids[2], service.ids[40]
    status, answer = service.query({"id": film, "k": 5, "method": "community", "region": BOX, "not_ids": [unlike],
                                    "concepts": {"Effusion": 0.5}})
    assert status == 200 and answer["region"] == BOX and unlike not in _ids(answer) and "1 unlike" in answer["query"]
    for bad in ([0.6, 0.3, 0.4, 0.7], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 1.5]):
        status, doc = service.query({"id": film, "region": bad})
        assert status == 400 and set(doc) == {"error"} and "region" in doc["error"] and "\n" not in doc["error"]
    status, doc = service.query({"ids": [film, unlike], "region": BOX})
    assert status == 400 and "one image" in doc["error"]


def test_without_a_checkpoint_a_stored_region_is_a_clear_error(served: tuple[Service, Settings]) -> None:
    service, settings = served
    bare = Searcher.connect(settings, None, images=IMAGES)
    try:
        with pytest.raises(ConfigError, match="checkpoint"):
            bare.search(QueryRequest(id=service.ids[0], region=BOX))
    finally:
        bare.close()


def test_the_cli_asks_about_a_region_in_process_and_through_the_service(served: tuple[Service, Settings]) -> None:
    service, _ = served
    film = service.ids[7]
    run = CliRunner(env=service.env).invoke
    box = ",".join(str(v) for v in BOX)
    here = run(app, ["query", film, "--region", box, "-k", "4", "--method", "hybrid", "--json",
                     "--checkpoint", str(CHECKPOINT), "--images", str(IMAGES)])
    assert here.exit_code == 0, here.output
    there = run(app, ["query", film, "--region", box, "-k", "4", "--method", "hybrid", "--json",
                      "--server", service.url], env={**service.env, "CXRNEO_API_TOKEN": TOKEN})
    assert there.exit_code == 0, there.output
    a, b = json.loads(here.output), json.loads(there.output)
    assert a["region"] == b["region"] == BOX and _ids(a) == _ids(b) and len(_ids(a)) == 4
    table = run(app, ["query", str(IMAGES / film), "--region", box, "-k", "3", "--checkpoint", str(CHECKPOINT)])
    assert table.exit_code == 0 and "region query" in table.output, table.output
    bad = run(app, ["query", film, "--region", "0.5,0.5,0.2,0.9", "--checkpoint", str(CHECKPOINT)])
    assert bad.exit_code != 0 and "--region" in bad.output and "Traceback" not in bad.output
