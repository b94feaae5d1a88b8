"""Synthetic codes follow labels and patients, are seeded, and refuse bad label tables."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import CODE_WIDTH, load, save
from cxrneo.archive.synthetic import from_table, read_nih_table, synthesise
from cxrneo.errors import InputError
from cxrneo.labels import get
from cxrneo.records import ImageRecord
from cxrneo.tables.table import read_table

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nih-sample" / "Data_Entry_2017.csv"
HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"


def _table(tmp_path: Path, rows: list[str], header: str = HEADER, gz: bool = False) -> Path:
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    text = header + "".join(r + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _records(n: int) -> list[ImageRecord]:
    labels = [("Effusion",), ("Mass",), (), ("Effusion", "Mass")]
    return [
        ImageRecord(id=f"i{k:04d}", labels=labels[k % 4], patient_id=f"p{k // 3}", view="PA")
        for k in range(n)
    ]


def test_reads_the_real_nih_sample() -> None:
    recs = read_nih_table(SAMPLE)
    assert len(recs) == 621
    assert sum(1 for r in recs if not r.labels) == 100  # No Finding
    assert all(r.patient_id and r.view in {"PA", "AP"} and r.sex in {"M", "F"} for r in recs)


def test_reads_gzip_and_parses_fields(tmp_path: Path) -> None:
    path = _table(tmp_path, ["a.png,Mass|Effusion,0,7,061Y,F,AP", "b.png,No Finding,1,7,62,F,PA"], gz=True)
    a, b = read_nih_table(path)
    assert a.labels == ("Effusion", "Mass") and a.age == 61 and a.patient_id == "7" and a.view == "AP"
    assert b.labels == () and b.age == 62


def test_synth_reads_a_table_as_training_does(tmp_path: Path) -> None:
    path = _table(tmp_path, ["a.png, Mass |Effusion,0,7,6M,F,AP", "b.png,No Finding,1,8,030M,M,PA"])
    a, b = read_nih_table(path)
    table = read_table("nih", path, tmp_path, get("nih"))
    assert [r.age for r in (a, b)] == [r.age for r in table.records] == [0, 2]  # one age rule
    assert a.labels == ("Effusion", "Mass") and b.labels == () and (a.path, b.path) == ("a.png", "b.png")


def test_missing_column_is_refused(tmp_path: Path) -> None:
    header = HEADER.replace("Patient ID,", "")
    path = _table(tmp_path, ["a.png,Mass,0,61,F,AP"], header=header)
    with pytest.raises(InputError, match="Patient ID"):
        read_nih_table(path)


def test_codes_are_unit_seeded_and_valid(tmp_path: Path) -> None:
    recs = _records(60)
    a, b, c = synthesise(recs, seed=1), synthesise(recs, seed=1), synthesise(recs, seed=2)
    assert a.codes.shape == (60, CODE_WIDTH) and a.codes.dtype == np.float32
    assert np.allclose(np.linalg.norm(a.codes, axis=1), 1, atol=1e-5)
    assert np.array_equal(a.codes, b.codes) and not np.array_equal(a.codes, c.codes)
    save(tmp_path / "c.npz", a)
    back = load(tmp_path / "c.npz")
    assert back.images == a.images and np.array_equal(back.codes, a.codes)


def test_geometry_follows_labels_and_patients() -> None:
    recs = _records(400)
    x = synthesise(recs, noise=1.0, seed=0).codes
    sims = x @ x.T
    lab = np.array([r.labels == ("Effusion",) for r in recs])
    mass = np.array([r.labels == ("Mass",) for r in recs])
    pat = np.array([r.patient_id for r in recs])
    same_label = sims[np.ix_(lab, lab)][~np.eye(lab.sum(), dtype=bool)].mean()
    cross_label = sims[np.ix_(lab, mass)].mean()
    assert same_label > cross_label + 0.2
    same_patient = np.mean([sims[i, j] for i in range(0, 300, 3) for j in (i + 1,) if pat[i] == pat[j]])
    assert same_patient > cross_label


def test_noise_knob_blurs_labels() -> None:
    recs = _records(200)
    lab = np.array([r.labels == ("Effusion",) for r in recs])

    def spread(noise: float) -> float:
        x = synthesise(recs, noise=noise, seed=0).codes
        return float((x[lab] @ x[lab].T).mean())

    assert spread(0.3) > spread(3.0)


def test_from_table_keeps_first_n(tmp_path: Path) -> None:
    path = _table(tmp_path, [f"{k}.png,Mass,0,{k // 2},50,M,PA" for k in range(10)])
    codes = from_table(path, n=4, seed=0)
    assert codes.ids == ["0.png", "1.png", "2.png", "3.png"]
