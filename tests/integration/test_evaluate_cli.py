"""`cxrneo evaluate` end to end through the CLI, with communities from the real Neo4j GDS Louvain."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.cli.main import app
from cxrneo.db.communities import assignments
from cxrneo.db.connection import Database
from cxrneo.retrieval import Method
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
TABLE = Path(__file__).resolve().parents[1] / "data" / "nih_v2020_first3000.csv.gz"


def test_evaluate_writes_both_forms_with_gds_communities(clean_db: Database, neo4j_settings: Settings,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    run = CliRunner().invoke
    codes = tmp_path / "codes.npz"
    made = run(app, ["synth", "--labels", str(TABLE), "--n", "600", "--noise", "2", "--out", str(codes)])
    assert made.exit_code == 0, made.output
    out = tmp_path / "report"
    done = run(app, ["evaluate", str(codes), "--out", str(out), "--queries", "60", "--mean-degree", "20",
                     "--k-max", "20", "--label-set", "nih"])
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "report.html").is_file() and (out / "summary.md").is_file()

    # GDS, not networkx, found the communities, on a projection of its own: the database was not
    # written (it holds no image, no GraphMeta) and no projection is left in the catalog.
    assert summary["graph"]["backend"] == "Neo4j GDS Louvain"
    assert summary["graph"]["communities"] > 1 and summary["n_db"] + summary["n_queries"] <= 600
    assert clean_db.read("count_all_nodes")[0]["nodes"] == 0 and not assignments(clean_db)
    assert not clean_db.read("list_projections")

    forms = {(r["label_set"], r["form"]) for r in summary["results"]}
    assert forms == {("nih", "positive"), ("nih", "no-finding")}
    expected = {m.value for m in Method} | {"random"}
    for res in summary["results"]:
        assert {m["method"] for m in res["methods"]} == expected
        for m in res["methods"]:
            for metric in ("precision", "acg", "acg_plain", "ndcg"):
                s = m[metric]
                assert s["lo"] <= s["mean"] <= s["hi"], (m["method"], metric, s)
            assert len(m["precision_curve"]) == 20
        for c in res["comparisons"]:
            assert c["b"] in ("knn", "random") and c["lo"] <= c["diff"] <= c["hi"]
            assert c["b"] == "knn" or c["metric"] == "precision"
        by = {m["method"]: m["precision"]["mean"] for m in res["methods"]}
        assert by["knn"] > by["random"] + 0.2  # noise 2 codes carry their labels: kNN beats chance
    assert np.isclose(summary["graph"]["mean_degree"], 2 * summary["graph"]["edges"] / summary["graph"]["nodes"])
