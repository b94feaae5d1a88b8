"""Synthetic codes follow labels and patients, are seeded, and refuse bad label tables; `--like` codes
follow a codes file's spectrum, label shifts and patients."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import CODE_WIDTH, Codes, load, save
from cxrneo.archive.synthetic import (
    fit_lookalike,
    from_table,
    like_table,
    read_nih_table,
    synthesise,
    synthesise_like,
)
from cxrneo.errors import ConfigError, InputError
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


# --- synth --like ---------------------------------------------------------------------------------

LIKE_LABELS = [("Effusion",), ("Mass",), (), ("Effusion", "Mass"), ("Nodule",), ()]


def _like_records(n: int, prefix: str, per_patient: int = 2) -> list[ImageRecord]:
    return [ImageRecord(id=f"{prefix}{k:05d}", labels=LIKE_LABELS[k % 6], patient_id=f"{prefix}p{k // per_patient}",
                        view="AP" if k % 5 == 0 else "PA") for k in range(n)]


def _basis(seed: int) -> np.ndarray:
    """An orthonormal basis of the code space (the axes, shuffled: the fit is rotation-equivariant)."""
    out: np.ndarray = np.eye(CODE_WIDTH)[:, np.random.default_rng(seed + 1000).permutation(CODE_WIDTH)]
    return out


def _anisotropic_source(n: int = 600, seed: int = 0, labels: bool = True) -> tuple[Codes, np.ndarray]:
    """Codes like a trained network's: a large common direction, variance decaying as k^-1.5 over a
    random basis, and a shift for Effusion and for Mass. Returns the codes and the basis."""
    rng = np.random.default_rng(seed)
    basis = _basis(seed)
    lam = np.arange(1, CODE_WIDTH + 1, dtype=np.float64) ** -1.5
    x = (rng.standard_normal((n, CODE_WIDTH)) * np.sqrt(lam) * 0.15) @ basis.T + 0.95 * basis[:, 5]
    recs = _like_records(n, "s", per_patient=1)
    for i, r in enumerate(recs):
        x[i] += 0.05 * basis[:, 7] * ("Effusion" in r.labels) + 0.04 * basis[:, 3] * ("Mass" in r.labels)
    if not labels:
        recs = [r.model_copy(update={"labels": ()}) for r in recs]
    return Codes(codes=x.astype(np.float32), images=tuple(recs)), basis


def _top_shares(codes: np.ndarray, ks: tuple[int, ...] = (16, 64)) -> np.ndarray:
    """The share of the unit codes' variance in their top k principal directions, for each k."""
    x = codes.astype(np.float64) / np.linalg.norm(codes, axis=1, keepdims=True)
    x -= x.mean(axis=0)
    gram = x @ x.T if len(x) < x.shape[1] else x.T @ x  # the same nonzero eigenvalues
    values = np.linalg.eigvalsh(gram)[::-1]
    return np.array([values[:k].sum() / values.sum() for k in ks])


def test_like_codes_follow_the_source_spectrum() -> None:
    source, _ = _anisotropic_source()
    drawn = synthesise_like(_like_records(4000, "d"), fit_lookalike(source), seed=1)
    assert drawn.codes.shape == (4000, CODE_WIDTH) and drawn.codes.dtype == np.float32
    assert np.allclose(np.linalg.norm(drawn.codes, axis=1), 1, atol=1e-5)
    plain = synthesise(_like_records(4000, "d"), noise=4.0, seed=1).codes
    want = _top_shares(source.codes)  # top 16 and top 64 directions
    assert np.all(np.abs(_top_shares(drawn.codes) - want) < 0.03)
    assert np.all(np.abs(_top_shares(plain) - want) > 0.3)  # the nearly isotropic codes: the measure tells them apart
    # the mean code too: cosines sit as near 1 as the source's
    unit = source.codes / np.linalg.norm(source.codes, axis=1, keepdims=True)
    assert abs(float((drawn.codes[:600] @ drawn.codes[:50].T).mean()) - float((unit @ unit[:50].T).mean())) < 0.01


def test_like_codes_keep_the_label_shifts() -> None:
    source, basis = _anisotropic_source()
    recs = _like_records(4000, "d")
    x = synthesise_like(recs, fit_lookalike(source), seed=2).codes.astype(np.float64)
    for label, axis in (("Effusion", 7), ("Mass", 3)):
        has = np.array([label in r.labels for r in recs])
        shift = x[has].mean(axis=0) - x[~has].mean(axis=0)
        assert float(shift @ basis[:, axis]) / float(np.linalg.norm(shift)) > 0.8, label


def test_like_reads_findings_from_the_table_when_the_file_has_none() -> None:
    source, _ = _anisotropic_source(labels=False)
    assert sorted(fit_lookalike(source).shifts) == ["view:AP"]  # only its views
    table, _ = _anisotropic_source()
    assert sorted(fit_lookalike(source, list(table.images)).shifts) == [
        "finding:Effusion", "finding:Mass", "finding:Nodule", "view:AP"]


def test_like_keeps_a_patient_alike_and_refuses_bad_shares() -> None:
    source, _ = _anisotropic_source()
    model = fit_lookalike(source)
    recs = _like_records(1000, "d", per_patient=2)
    x = synthesise_like(recs, model, patient_share=0.6, seed=3).codes.astype(np.float64)
    x = x - x.mean(axis=0)  # the common mean would hide the patient part
    same = np.mean([x[i] @ x[i + 1] for i in range(0, 1000, 2)])
    other = np.mean([x[i] @ x[i + 3] for i in range(0, 996, 2)])
    assert same > 0.3 * float(np.mean(np.sum(x * x, axis=1))) and same > 5 * abs(other)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="patient-share"):
            synthesise_like(recs, model, patient_share=bad)


def test_like_refuses_too_few_codes() -> None:
    source, _ = _anisotropic_source(n=12)
    with pytest.raises(ConfigError, match="at least 16 codes"):
        fit_lookalike(source)


def test_like_table_keeps_the_records_of_the_plain_synth(tmp_path: Path) -> None:
    source, _ = _anisotropic_source()
    path = _table(tmp_path, [f"{k}.png,{'Mass' if k % 3 else 'No Finding'},0,{k // 2},50,M,PA" for k in range(40)])
    a = like_table(path, source, n=30, seed=4)
    assert a.images == from_table(path, n=30, seed=4).images and a.labels == ("Mass",)
    assert np.array_equal(a.codes, like_table(path, source, n=30, seed=4).codes)
    assert not np.array_equal(a.codes, like_table(path, source, n=30, seed=5).codes)
    save(tmp_path / "c.npz", a)
    assert load(tmp_path / "c.npz").images == a.images
    with pytest.raises(ConfigError, match="--n must be positive"):
        like_table(path, source, n=0)


SAMPLE_CODES = SAMPLE.parent / "codes.npz"


@pytest.mark.skipif(not SAMPLE_CODES.is_file(), reason="the sample's codes are not shipped in this checkout")
def test_like_codes_follow_the_shipped_checkpoints_codes() -> None:
    """On the real codes of the sample (examples/README.md): the drawn codes' spectrum is theirs."""
    source = load(SAMPLE_CODES)
    recs = [r.model_copy(update={"id": f"{r.id}-{copy}", "patient_id": f"{r.patient_id}-{copy}"})
            for copy in range(4) for r in source.images]  # the sample's mix of findings and views, 4 times
    drawn = synthesise_like(recs, fit_lookalike(source), seed=0)
    assert np.all(np.abs(_top_shares(drawn.codes) - _top_shares(source.codes)) < 0.03)
