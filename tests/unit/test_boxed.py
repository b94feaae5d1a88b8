"""`cxrneo evaluate --boxes`: the sample's expert boxes read as fractions, and region against whole-image
queries scored on real films with the shipped checkpoint (structure and interval order, not figures)."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.cli.main import app
from cxrneo.errors import InputError
from cxrneo.evaluation.boxed import OVERALL, read_boxes

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "nih-sample"
BOXES = SAMPLE / "BBox_List_2017.csv"
CHECKPOINT = ROOT / "examples" / "checkpoint" / "best.pt"


def test_the_bundled_boxes_are_the_sample_images_findings_as_fractions() -> None:
    boxes = read_boxes(BOXES)
    with open(SAMPLE / "Data_Entry_2017.csv", newline="", encoding="utf-8") as f:
        labels = {r["Image Index"]: r["Finding Labels"].split("|") for r in csv.DictReader(f)}
    assert len(boxes) >= 10
    for b in boxes:
        assert b.finding in labels[b.image_id], b  # "Infiltrate" read as the label table's "Infiltration"
        x0, y0, x1, y1 = b.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_a_damaged_box_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "boxes.csv"
    bad.write_text("Image Index,Finding Label,x,y,w,h\na.png,Mass,10,20,abc,5\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        read_boxes(bad)
    bad.write_text("Image Index,Finding Label,x,y,w,h\na.png,Mass,10,20,0,5\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        read_boxes(bad)


@pytest.mark.slow
def test_evaluate_boxes_compares_region_and_whole_image_queries_on_real_films(tmp_path: Path) -> None:
    boxed = {b.image_id for b in read_boxes(BOXES)}
    with open(SAMPLE / "Data_Entry_2017.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    chosen = [r for r in rows if r[0] in boxed] + [r for r in rows if r[0] not in boxed][:90]
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *chosen])
    run = CliRunner(env={"CXRNEO_DATA_DIR": str(tmp_path)}).invoke
    done = run(app, ["embed", str(CHECKPOINT), "--labels", str(tmp_path / "labels.csv"), "--images",
                     str(SAMPLE / "images"), "--out", str(tmp_path / "codes.npz"), "--workers", "0"])
    assert done.exit_code == 0, done.output
    done = run(app, ["evaluate", str(tmp_path / "codes.npz"), "--boxes", str(BOXES), "--no-neo4j", "--k", "5",
                     "--checkpoint", str(CHECKPOINT), "--image-root", str(SAMPLE / "images"), "--out",
                     str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    result = json.loads((tmp_path / "out" / "boxes.json").read_text(encoding="utf-8"))
    assert result["scored"] == len(boxed) and result["skipped"] == [] and result["k"] == 5
    assert [m["method"] for m in result["methods"]] == ["community", "hybrid", "knn", "diffusion"]
    for method in result["methods"]:
        overall = method["rows"][-1]
        assert overall["finding"] == OVERALL and overall["images"] == len(boxed)
        assert sum(r["images"] for r in method["rows"][:-1]) == len(boxed)
        for row in method["rows"]:
            for key in ("region", "whole", "diff"):
                s = row[key]
                assert s["lo"] <= s["mean"] <= s["hi"], (method["method"], row)
            assert 0 <= row["region"]["mean"] <= 1 and 0 <= row["whole"]["mean"] <= 1
            assert row["region_better"] + row["whole_better"] <= row["images"]
    text = (tmp_path / "out" / "boxes.md").read_text(encoding="utf-8")
    assert "region - whole" in text and "**overall**" in text and "Cardiomegaly" in text
    bare = run(app, ["evaluate", str(tmp_path / "codes.npz"), "--boxes", str(BOXES), "--no-neo4j",
                     "--out", str(tmp_path / "out2")])
    assert bare.exit_code != 0 and "--checkpoint" in bare.output and "Traceback" not in bare.output
