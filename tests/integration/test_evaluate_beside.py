"""`cxrneo evaluate` beside a served graph: GDS Louvain on an evaluation-only projection, the
stored graph never touched, and the same communities as the served path on the same rows."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.archive import codes as codes_io
from cxrneo.cli.main import app
from cxrneo.db.communities import assignments, detect
from cxrneo.db.connection import Database
from cxrneo.db.evaluation import PREFIX, evaluation_projection, louvain_beside
from cxrneo.db.ingest import ingest
from cxrneo.db.meta import graph_meta
from cxrneo.graph import normalise, similarity_edges
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j
TABLE = Path(__file__).resolve().parents[1] / "data" / "nih_v2020_first3000.csv.gz"


def _synth(folder: Path, n: int) -> Path:
    """A synthetic codes file of the first n rows of the bundled NIH table."""
    out = folder / f"synth{n}.npz"
    made = CliRunner().invoke(app, ["synth", "--labels", str(TABLE), "--n", str(n), "--noise", "2", "--out", str(out)])
    assert made.exit_code == 0, made.output
    return out


def _partition(ids: list[str], community: dict[str, int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for i in ids:
        groups.setdefault(community[i], set()).add(i)
    return {frozenset(g) for g in groups.values()}


def _projections(db: Database) -> list[str]:
    return [str(r["graphName"]) for r in db.read("list_projections")]


def _state(db: Database, ids: list[str]) -> dict[str, object]:
    """What a served graph shows: GraphMeta, counts, assignments and a few answers."""
    answers = []
    for qid in ids:
        for method in ("community", "knn"):
            out = CliRunner().invoke(app, ["query", qid, "-k", "5", "--method", method, "--json"])
            assert out.exit_code == 0, out.output
            answers.append([(h["image_id"], round(h["cosine"], 5)) for h in json.loads(out.output)["hits"]])
    return {"meta": graph_meta(db), "counts": db.read("count_graph"), "communities": db.read("count_communities"),
            "all_nodes": db.read("count_all_nodes"), "assignments": assignments(db), "answers": answers}


def test_evaluate_beside_a_served_graph_leaves_it_alone(clean_db: Database, neo4j_settings: Settings,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", neo4j_settings.neo4j_uri)
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", neo4j_settings.password())
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path))
    run = CliRunner().invoke
    served, scored = tmp_path / "served.npz", tmp_path / "scored.npz"
    for out, n, seed in ((served, "200", "0"), (scored, "500", "1")):  # another "checkpoint": other codes
        made = run(app, ["synth", "--labels", str(TABLE), "--n", n, "--noise", "2", "--seed", seed, "--out", str(out)])
        assert made.exit_code == 0, made.output
    for args in (["ingest", str(served), "--mean-degree", "6"], ["communities"]):
        done = run(app, args)
        assert done.exit_code == 0, done.output
    ids = codes_io.load(served).ids[:3]
    before = _state(clean_db, ids)

    out = tmp_path / "report"
    done = run(app, ["evaluate", str(scored), "--out", str(out), "--queries", "50", "--mean-degree", "20",
                     "--k-max", "10", "--label-set", "nih", "--whiten", "8"])
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    meta = before["meta"]
    assert meta is not None and abs(summary["graph"]["threshold"] - meta.threshold) > 1e-3
    assert summary["graph"]["backend"] == "Neo4j GDS Louvain" and summary["graph"]["communities"] > 1
    assert summary["n_db"] > 200  # more images than the served graph holds: none of it was written
    assert summary["whitening"]["graph"]["communities"] > 1  # a second code space, the graph still untouched

    assert _state(clean_db, ids) == before
    assert not _projections(clean_db)


def test_streamed_louvain_is_the_served_partition(clean_db: Database, tmp_path: Path) -> None:
    """The same rows through ingest + detect (write mode) and through the evaluation's projection:
    one partition, isolated images each alone."""
    codes = codes_io.load(_synth(tmp_path, 300))
    unit = normalise(codes.codes)
    threshold = float(np.quantile(unit @ unit.T, 0.985))  # sparse: some images have no edge
    edges = similarity_edges(unit, threshold)
    isolated = set(range(len(codes))) - set(edges.src.tolist()) - set(edges.dst.tolist())
    assert isolated and len(edges) > 100

    beside = louvain_beside(clean_db, codes.ids, edges)
    assert clean_db.read("count_all_nodes")[0]["nodes"] == 0 and not _projections(clean_db)
    ingest(clean_db, codes, edges, threshold)
    detect(clean_db, concurrency=1)
    served = assignments(clean_db)
    streamed = dict(zip(codes.ids, beside.tolist(), strict=True))
    assert _partition(codes.ids, streamed) == _partition(codes.ids, served)
    assert len(set(beside.tolist())) > len(isolated) + 1
    assert all(sum(1 for c in beside if c == beside[i]) == 1 for i in isolated)


def test_the_projection_is_dropped_on_error(clean_db: Database, tmp_path: Path) -> None:
    codes = codes_io.load(_synth(tmp_path, 40))
    edges = similarity_edges(normalise(codes.codes), 0.5)
    with pytest.raises(RuntimeError), evaluation_projection(clean_db, codes.ids, edges) as name:
        assert name.startswith(PREFIX) and _projections(clean_db) == [name]
        raise RuntimeError("stop")
    assert not _projections(clean_db)
