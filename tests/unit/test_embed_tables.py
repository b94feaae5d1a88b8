"""Label sets, the three table formats on real label rows, and patient splits."""

import doctest
from pathlib import Path

import pytest

from cxrneo import labels as lsets
from cxrneo.embed import splits
from cxrneo.errors import ConfigError, InputError
from cxrneo.tables import rows
from cxrneo.tables.chexpert import resolve
from cxrneo.tables.rows import parse_age
from cxrneo.tables.table import read_table

REPO = Path(__file__).resolve().parents[2]
# The first 3,000 rows of NIH's Data_Entry_2017_v2020.csv (NIH publishes it without restrictions).
NIH_ROWS = Path(__file__).resolve().parents[1] / "data" / "nih_v2020_first3000.csv.gz"
# CheXpert's label file may not be redistributed: these rows are made up, in its exact column layout.
CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
    "Fracture,Support Devices"
)
CHEXPERT_ROWS = [
    "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Male,54,Frontal,PA,1.0,,,,,,,,,0.0,,,,",
    "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Female,71,Frontal,AP,,,-1.0,1.0,,-1.0,"
    "-1.0,,-1.0,,,,,1.0",
    "CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Female,71,Lateral,,,,,1.0,,,,,,,,,,1.0",
    "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Female,39,Frontal,AP,,,,,,,,-1.0,,1.0,"
    "1.0,,,",
    "CheXpert-v1.0-small/train/patient00004/study2/view1_frontal.jpg,Male,80,Frontal,AP,,1.0,1.0,,,1.0,,,"
    "-1.0,,1.0,,,1.0",
]
EXAMPLES = REPO / "examples" / "nih-sample"


def test_label_set_sizes_follow_spec() -> None:
    sizes = {name: len(ls.labels) for name, ls in lsets.LABEL_SETS.items()}
    assert sizes == {"nih": 13, "nih-u": 9, "chexpert": 9, "chexpert-u": 5}
    assert "Hernia" not in lsets.get("nih").labels
    with pytest.raises(ConfigError, match="unknown label set"):
        lsets.get("mimic")


def test_merged_labels_and_uncertainty() -> None:
    nih_u = lsets.get("nih-u")
    y, known = nih_u.encode({"Edema": 1, "Mass": 1})
    assert y[nih_u.labels.index("Opacities")] == 1 and y[nih_u.labels.index("Lesion")] == 1
    assert known.all() and y.sum() == 2
    cx = lsets.get("chexpert-u")
    y, known = cx.encode({"Cardiomegaly": -1, "Lung Opacity": -1, "Edema": 1, "Atelectasis": 0})
    heart, opac = cx.labels.index("Enlarged Heart"), cx.labels.index("Opacities")
    assert not known[heart] and y[heart] == 0  # uncertain only: masked
    assert known[opac] and y[opac] == 1  # a positive member wins over an uncertain one
    assert cx.positives({"Cardiomegaly": -1}) == ("Enlarged Heart",)  # uncertain counts for retrieval


def test_nih_loader_on_real_rows() -> None:
    table = read_table("nih", NIH_ROWS, Path("/img"), lsets.get("nih"), 3000)
    assert len(table) == 3000 and table.targets.shape == (3000, 13)
    first = table.records[0]
    assert (first.id, first.patient_id, first.sex, first.age) == ("00000001_000.png", "1", "M", 57)
    assert first.labels == ("Cardiomegaly",) and first.path == "/img/00000001_000.png"
    assert table.known.all()
    assert 0.3 < (table.targets.sum(axis=1) == 0).mean() < 0.8  # No Finding and Hernia-only rows


def test_chexpert_loader_on_its_column_layout(tmp_path: Path) -> None:
    labels_file = tmp_path / "train.csv"
    labels_file.write_text(CHEXPERT_HEADER + "\n" + "\n".join(CHEXPERT_ROWS) + "\n")
    root = Path("/data/CheXpert-v1.0-small")
    table = read_table("chexpert", labels_file, root, lsets.get("chexpert"))
    assert len(table) == 5 and table.targets.shape == (5, 9)
    second = table.records[1]
    assert second.patient_id == "00002" and second.sex == "Female" and second.age == 71
    assert second.path == "/data/CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"
    labels = table.label_set.labels
    # row 2: Cardiomegaly -1, Lung Opacity 1, Edema -1, Consolidation -1, Atelectasis -1 (made up)
    assert not table.known[1, labels.index("Cardiomegaly")]
    assert table.targets[1, labels.index("Lung Opacity")] == 1
    assert "Cardiomegaly" in second.labels  # uncertain is positive for retrieval
    assert (~table.known).any(axis=0).sum() >= 3
    with pytest.raises(InputError, match="reads chexpert findings"):
        read_table("nih", labels_file, root, lsets.get("chexpert"), 10)


def test_chexpert_root_may_be_dataset_folder_or_parent() -> None:
    rel = "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg"
    assert resolve(Path("/d/CheXpert-v1.0-small"), rel) == resolve(Path("/d"), rel)


def test_plain_csv_and_bad_files(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("path,labels,patient_id\na.png,Effusion|Mass,p1\nb.png,No Finding,\n")
    table = read_table("csv", f, tmp_path, lsets.get("nih-u"))
    assert table.records[0].labels == ("Effusion", "Lesion") and table.records[1].labels == ()
    assert table.records[1].patient_id == "b.png"  # no patient: its own patient
    with pytest.raises(InputError, match="missing column"):
        (tmp_path / "x.csv").write_text("file,labels\n")
        read_table("csv", tmp_path / "x.csv", tmp_path, lsets.get("nih"))
    with pytest.raises(InputError, match="no such label table"):
        read_table("nih", tmp_path / "none.csv", tmp_path, lsets.get("nih"))
    with pytest.raises(InputError, match="duplicate image id"):
        f.write_text("path,labels\na.png,\na.png,\n")
        read_table("csv", f, tmp_path, lsets.get("nih"))


def test_example_table_matches_its_images() -> None:
    table = read_table("nih", EXAMPLES / "Data_Entry_2017.csv", EXAMPLES / "images", lsets.get("nih"))
    assert len(table) == 621 and all(Path(r.path).is_file() for r in table.records)


def test_ages() -> None:
    assert [parse_age(a) for a in ("58", "058Y", "18M", "", "3D")] == [58, 58, 1, None, 0]
    result = doctest.testmod(rows)
    assert result.attempted > 0 and result.failed == 0  # the documented age rule holds


def test_split_is_by_patient_seeded_and_deterministic(tmp_path: Path) -> None:
    table = read_table("nih", EXAMPLES / "Data_Entry_2017.csv", EXAMPLES / "images", lsets.get("nih"), 24)
    recs = [r.model_copy(update={"patient_id": str(i // 3)}) for i, r in enumerate(table.records)]
    a = splits.by_patient(recs, 0.25, seed=7)
    assert a == splits.by_patient(list(reversed(recs)), 0.25, seed=7)
    assert a != splits.by_patient(recs, 0.25, seed=8) or len(recs) < 6
    side: dict[str, set[str]] = {}
    for r in recs:
        side.setdefault(r.patient_id, set()).add(a[r.id])
    assert all(len(s) == 1 for s in side.values())
    assert sum(v == "val" for v in a.values()) == 6  # 2 of 8 patients, 3 images each
    splits.save(tmp_path / "s.json", a, 7, 0.25)
    assert splits.load(tmp_path / "s.json") == a
    with pytest.raises(ConfigError):
        splits.by_patient(recs, 1.5, 0)
