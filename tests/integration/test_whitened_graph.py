"""A whitened graph (`cxrneo ingest --whiten`): codes, edges, T and queries in one space, the transform
stored in Neo4j, frozen for later ingests, applied to every new code, refused clearly when missing."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.db import transform
from cxrneo.db.communities import detect
from cxrneo.db.connection import Database
from cxrneo.db.ingest import build
from cxrneo.db.meta import graph_meta
from cxrneo.errors import ConfigError, NotReadyError
from cxrneo.retrieval import Method
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.settings import Settings
from cxrneo.whiten import Spectrum
from tests.unit.test_evaluate import make_codes

pytestmark = pytest.mark.neo4j


def _collinear(codes: Codes) -> Codes:
    """The same label structure under a large shared component, as a weakly trained network gives."""
    common = np.random.default_rng(7).standard_normal(codes.codes.shape[1]).astype(np.float32)
    return codes.with_codes(codes.codes + 30 * np.linalg.norm(codes.codes, axis=1).mean() / 32 * common)


def test_a_whitened_graph_stores_transformed_codes_and_answers_in_their_space(
    clean_db: Database, tmp_path: Path,
) -> None:
    codes = _collinear(make_codes(240, seed=4))
    first = codes.subset(np.arange(200))
    stats, rep = build(clean_db, first, mean_degree=8, snapshot_dir=tmp_path / "snap", whiten="16")
    detect(clean_db)
    meta = graph_meta(clean_db)
    assert meta is not None and meta.transformSha256 and "16 dimensions" in rep.codes_transform
    w = transform.load(clean_db, meta.transformSha256)
    assert w.sha256 == Spectrum.of(first.codes).whitening(16, 0.0).sha256  # fitted on the ingested codes only
    assert meta.threshold < 0.9  # the whitened cosines spread out (raw ones sit near 1)
    white = w.apply(first.codes)
    page = clean_db.read("read_snapshot_page", after="", limit=500, columns=[])
    stored = {r["id"]: np.frombuffer(r["codeBytes"], "<f4") for r in page}
    assert all(np.array_equal(stored[i], white[k]) for k, i in enumerate(first.ids))  # bit for bit

    here = Searcher.open(clean_db, tmp_path / "snap")
    elsewhere = Searcher.open(clean_db, tmp_path / "other-host")  # no snapshot: reads Neo4j, the transform too
    low = Searcher.open(clean_db, tmp_path / "snap", scan="lowrank")  # the first pass in the whitened rank
    for method in Method:
        by_code = here.by_code(first.codes[5], QueryOptions(k=6, method=method))  # a raw code enters the graph's space first
        itself = [h for h in by_code.hits if h.image_id == first.ids[5]]
        assert itself and itself[0].cosine == pytest.approx(1.0, abs=1e-5)
        if method is Method.KNN:
            assert by_code.hits[0].image_id == first.ids[5]
            by_id = here.by_id(first.ids[5], QueryOptions(k=5, method=method))  # the stored code: its neighbours after it
            assert [h.image_id for h in by_code.hits[1:]] == [h.image_id for h in by_id.hits]
        other = elsewhere.by_code(first.codes[5], QueryOptions(k=6, method=method))
        assert [h.image_id for h in other.hits] == [h.image_id for h in by_code.hits]
        assert low.by_code(first.codes[5], QueryOptions(k=6, method=method)).hits == by_code.hits
        assert low.by_id(first.ids[7], QueryOptions(k=6, method=method)).hits == \
            here.by_id(first.ids[7], QueryOptions(k=6, method=method)).hits
    assert low.health()["scan"] == "lowrank-16" and here.health()["scan"] == "float32"  # the graph's own rank

    # a later ingest of more images reuses the frozen transform, whatever it is asked
    _, rep2 = build(clean_db, codes, snapshot_dir=tmp_path / "snap", whiten="auto")
    assert "reused" in rep2.codes_transform and graph_meta(clean_db).transformSha256 == w.sha256
    page = clean_db.read("read_snapshot_page", after="", limit=500, columns=[])
    stored = {r["id"]: np.frombuffer(r["codeBytes"], "<f4") for r in page}
    assert np.array_equal(stored[codes.ids[230]], w.apply(codes.codes)[230])
    with pytest.raises(ConfigError, match="whitened"):
        build(clean_db, codes, whiten="none")


def test_refusals_are_one_line(clean_db: Database, tmp_path: Path) -> None:
    codes = _collinear(make_codes(120, seed=5))
    build(clean_db, codes, mean_degree=6)  # raw codes
    with pytest.raises(ConfigError, match="raw codes"):
        build(clean_db, codes, whiten="8")
    clean_db.auto("delete_everything")
    build(clean_db, codes, mean_degree=6, whiten="8")
    detect(clean_db)
    searcher = Searcher.open(clean_db, tmp_path / "snap")
    assert searcher.by_code(codes.codes[0], QueryOptions(k=3, method='knn')).hits[0].image_id == codes.ids[0]
    with pytest.raises(Exception, match="values"):
        searcher.by_code(codes.codes[0][:100], QueryOptions(k=3, method='knn'))
    clean_db.write("merge_code_transform", sha256=graph_meta(clean_db).transformSha256, dim=8, width=1024,
                   shrink=0.5, mean=b"", basis=b"", scale=b"")  # damaged in place
    with pytest.raises(NotReadyError, match="code transform"):
        Searcher.open(clean_db, tmp_path / "fresh").by_code(codes.codes[0], QueryOptions(k=3, method='knn'))


def test_the_cli_and_the_service_answer_alike_on_a_whitened_graph(
    clean_db: Database, neo4j_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from typer.testing import CliRunner

    from cxrneo.api.app import create_app
    from cxrneo.cli.main import app
    from tests.integration.test_query_image import EXAMPLES, _checkpoint
    from tests.serving import Running as _Running

    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    ckpt = _checkpoint(tmp_path / "best.pt")
    run = CliRunner().invoke
    done = run(app, ["embed", str(ckpt), "--labels", str(EXAMPLES / "Data_Entry_2017.csv"), "--images",
                     str(EXAMPLES / "images"), "--out", str(tmp_path / "codes.npz"), "--workers", "0",
                     "--max-images", "40"])
    assert done.exit_code == 0, done.output
    done = run(app, ["ingest", str(tmp_path / "codes.npz"), "--mean-degree", "4", "--whiten", "8"])
    assert done.exit_code == 0 and "whitened to 8 dimensions" in done.output, done.output
    assert run(app, ["communities"]).exit_code == 0
    image = sorted((EXAMPLES / "images").glob("*.png"))[6]
    searcher = Searcher.connect(neo4j_settings.model_copy(update={"data_dir": tmp_path}), ckpt)
    with _Running(create_app(searcher)) as running:
        for method in ("knn", "community"):
            here = run(app, ["query", str(image), "-k", "4", "--method", method, "--checkpoint", str(ckpt), "--json"])
            via = run(app, ["query", str(image), "-k", "4", "--method", method, "--server", running.url, "--json"])
            assert here.exit_code == via.exit_code == 0, here.output + via.output
            a, b = json.loads(here.output.splitlines()[-1]), json.loads(via.output.splitlines()[-1])
            assert [h["image_id"] for h in a["hits"]] == [h["image_id"] for h in b["hits"]]
            # the file's code, whitened, is the stored whitened code of the same image: that archived film
            assert a["duplicate_of"] == b["duplicate_of"] == image.name
    searcher.close()
    again = run(app, ["ingest", str(tmp_path / "codes.npz"), "--whiten", "none"])
    assert again.exit_code == 1 and again.output.strip().startswith("error: this graph's codes are whitened")
