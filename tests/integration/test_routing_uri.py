"""A routing URI (`neo4j://`) works for writes, GDS and reads against the single local server."""

from pathlib import Path

import pytest

from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from tests.integration.test_service_http import T, clustered

pytestmark = pytest.mark.neo4j


def test_every_layer_works_through_neo4j_scheme(clean_db: Database, neo4j_settings: Settings, tmp_path: Path) -> None:
    uri = neo4j_settings.neo4j_uri
    if not uri.startswith("bolt://"):
        pytest.skip(f"the test server's URI {uri} is not a bolt:// address to rewrite")
    routed = neo4j_settings.model_copy(update={"neo4j_uri": "neo4j://" + uri[len("bolt://"):], "data_dir": tmp_path})
    with Database.connect(routed) as db:
        build(db, clustered(30), threshold=T, snapshot_dir=routed.snapshot_dir)
        report = detect(db)
    assert report.communities >= 1
    searcher = Searcher.connect(routed)
    try:
        answer = searcher.by_id("s003", QueryOptions(k=5, method='community'))
    finally:
        searcher.close()
    assert len(answer.hits) == 5 and "s003" not in {h.image_id for h in answer.hits}
