"""Label-faithful synthetic image codes from a NIH label table (pure numpy, seeded): nearly isotropic
ones (`synthesise`), or ones drawn like a real codes file, with its mean, label shifts and covariance
(`fit_lookalike`, `synthesise_like`; docs/scale.md, "Benchmark codes with a real spectrum")."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrneo.archive.codes import CODE_WIDTH, Codes
from cxrneo.errors import ConfigError, InputError
from cxrneo.labels import NO_FINDING
from cxrneo.records import ImageRecord
from cxrneo.tables import nih


def read_nih_table(path: Path) -> list[ImageRecord]:
    """ImageRecords from a NIH `Data_Entry_2017` table (.csv or .csv.gz); bad files -> InputError.

    Read by the one NIH reader (:func:`cxrneo.tables.nih.read`, all its columns required):
    labels are the sorted findings, paths the bare Image Index, ages as
    :func:`cxrneo.tables.rows.parse_age` reads them.
    """
    rows = nih.read(Path(path), Path(), None, required=nih.ALL_COLUMNS)
    return [r.record.model_copy(update={"labels": tuple(sorted(r.findings))}) for r in rows]


def synthesise(
    records: list[ImageRecord],
    noise: float = 1.0,
    patient_weight: float = 0.5,
    view_weight: float = 0.3,
    seed: int = 0,
    width: int = CODE_WIDTH,
) -> Codes:
    """Codes = sum of per-label directions (or a 'normal' one) + per-patient offset + view
    direction + Gaussian noise of norm ~`noise`, then normalised; row i follows records[i]."""
    if noise < 0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    if not records:
        raise InputError("no images to synthesise codes for")
    rng = np.random.default_rng(seed)
    labels = sorted({lab for r in records for lab in r.labels})
    vocab = {lab: i for i, lab in enumerate([NO_FINDING, *labels])}
    patients = {p: i for i, p in enumerate(sorted({r.patient_id for r in records}))}
    views = {v: i for i, v in enumerate(sorted({r.view for r in records}))}
    label_dir = _unit(rng.standard_normal((len(vocab), width), dtype=np.float32))
    patient_dir = _unit(rng.standard_normal((len(patients), width), dtype=np.float32))
    view_dir = _unit(rng.standard_normal((len(views), width), dtype=np.float32))
    out = np.empty((len(records), width), dtype=np.float32)
    for start in range(0, len(records), 8192):
        chunk = records[start : start + 8192]
        block = rng.standard_normal((len(chunk), width), dtype=np.float32)
        block *= np.float32(noise / np.sqrt(width))
        for i, r in enumerate(chunk):
            names = r.labels or (NO_FINDING,)
            idx = [vocab[n] for n in names]
            block[i] += label_dir[idx].sum(axis=0) / np.float32(np.sqrt(len(idx)))
            block[i] += np.float32(patient_weight) * patient_dir[patients[r.patient_id]]
            block[i] += np.float32(view_weight) * view_dir[views[r.view]]
        out[start : start + len(chunk)] = _unit(block)
    return Codes(
        codes=out,
        images=tuple(records),
        checkpoint_sha256=f"synthetic:seed={seed}:noise={noise}",
        label_set="nih",
        labels=tuple(labels),
        extra={"synthetic": {"seed": seed, "noise": noise, "patient_weight": patient_weight}},
    )


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def from_table(path: Path, n: int | None = None, noise: float = 1.0, seed: int = 0) -> Codes:
    """Read a NIH label table, keep the first `n` rows (all when None), synthesise their codes."""
    records = read_nih_table(path)
    if n is not None:
        if n < 1:
            raise ConfigError(f"--n must be positive, got {n}")
        records = records[:n]
    return synthesise(records, noise=noise, seed=seed)


# --- codes with the spectrum of a real codes file (`cxrneo synth --like`) -----------------------------

MIN_LABEL_ROWS = 5  # a finding or view shifts the mean only when the source holds it this often
RIDGE = 1.0  # shrinkage of the shifts towards 0 (in rows: a finding seen 5 times moves 5/6 of its mean)


@dataclass(frozen=True)
class Lookalike:
    """What `synth --like` keeps of a codes file: the mean unit code, a mean shift per finding and per
    view (least squares on the file's own labels), and the residuals R, whose covariance R^T R / dof
    is the file's within-label covariance: noise drawn as g R / sqrt(dof), g ~ N(0, I), has exactly it."""

    mean: np.ndarray  # (width,)
    shifts: dict[str, np.ndarray]  # "finding:Effusion" / "view:AP" -> (width,)
    residuals: np.ndarray  # (n, width) float32
    dof: int

    def factor(self) -> np.ndarray:
        """F with F^T F the residual covariance."""
        out: np.ndarray = (self.residuals / np.float32(np.sqrt(self.dof))).astype(np.float32)
        return out


def fit_lookalike(source: Codes, table: list[ImageRecord] | None = None) -> Lookalike:
    """Fit a :class:`Lookalike` to a codes file's unit codes. Findings and views come from the file's
    own records; when none of them carries a finding, from the rows of `table` with the same ids (none
    found: the mean alone)."""
    x = source.codes.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    records = list(source.images)
    if not any(r.labels for r in records) and table:
        by_id = {r.id: r for r in table}
        records = [by_id.get(r.id, r) for r in records]
    names = [f"finding:{lab}" for r in records for lab in r.labels] + [f"view:{r.view}" for r in records if r.view]
    counts = {k: names.count(k) for k in sorted(set(names))}
    views = sorted(k for k in counts if k.startswith("view:"))
    common_view = max(views, key=lambda k: counts[k]) if views else ""
    keys = [k for k, c in counts.items() if c >= MIN_LABEL_ROWS and k != common_view]
    n, p = len(records), len(keys) + 1
    if n < max(2 * p, 16):
        raise ConfigError(f"--like needs at least {max(2 * p, 16)} codes to estimate their covariance, got {n}")
    design = np.zeros((n, p))
    design[:, 0] = 1.0
    col = {k: j + 1 for j, k in enumerate(keys)}
    for i, r in enumerate(records):
        for k in [f"finding:{lab}" for lab in r.labels] + [f"view:{r.view}"]:
            if k in col:
                design[i, col[k]] = 1.0
    ridge = RIDGE * np.eye(p)
    ridge[0, 0] = 0.0  # the mean itself is not shrunk
    coef = np.linalg.solve(design.T @ design + ridge, design.T @ x)
    residuals = (x - design @ coef).astype(np.float32)
    return Lookalike(mean=coef[0].astype(np.float32), shifts={k: coef[col[k]].astype(np.float32) for k in keys},
                     residuals=residuals, dof=n - p)


def synthesise_like(records: list[ImageRecord], model: Lookalike, patient_share: float = 0.3,
                    seed: int = 0, source: str = "") -> Codes:
    """Codes for `records` (row i follows records[i]): the model's mean, plus the shift of each of the
    record's findings and of its view, plus noise with the model's residual covariance, of which a
    share `patient_share` is common to the patient's images (so a patient's films stay alike while
    each code's covariance is unchanged); then normalised. `source`: the fitted file's checkpoint
    digest, kept in the codes' metadata."""
    if not 0.0 <= patient_share < 1.0:
        raise ConfigError(f"--patient-share must be in [0, 1), got {patient_share}")
    if not records:
        raise InputError("no images to synthesise codes for")
    rng = np.random.default_rng(seed)
    factor = model.factor()
    n_res, width = factor.shape
    patients = {p: i for i, p in enumerate(sorted({r.patient_id for r in records}))}
    common = np.float32(np.sqrt(patient_share)) * (
        rng.standard_normal((len(patients), n_res), dtype=np.float32) @ factor)
    own = np.float32(np.sqrt(1.0 - patient_share))
    out = np.empty((len(records), width), dtype=np.float32)
    for start in range(0, len(records), 8192):
        chunk = records[start : start + 8192]
        block = own * (rng.standard_normal((len(chunk), n_res), dtype=np.float32) @ factor)
        block += model.mean
        for i, r in enumerate(chunk):
            for k in [f"finding:{lab}" for lab in r.labels] + [f"view:{r.view}"]:
                shift = model.shifts.get(k)
                if shift is not None:
                    block[i] += shift
            block[i] += common[patients[r.patient_id]]
        out[start : start + len(chunk)] = _unit(block)
    labels = sorted({lab for r in records for lab in r.labels})
    return Codes(
        codes=out,
        images=tuple(records),
        checkpoint_sha256=f"synthetic-like:seed={seed}",
        label_set="nih",
        labels=tuple(labels),
        extra={"synthetic": {"seed": seed, "like": True, "patient_share": patient_share,
                             "shifts": sorted(model.shifts), "residual_rows": n_res,
                             "like_checkpoint_sha256": source}},
    )


def like_table(path: Path, like: Codes, n: int | None = None, patient_share: float = 0.3,
               seed: int = 0) -> Codes:
    """Read a NIH label table, keep the first `n` rows (all when None), draw their codes like those of
    `like` (its findings read from the table when its own records carry none)."""
    if n is not None and n < 1:
        raise ConfigError(f"--n must be positive, got {n}")
    records = read_nih_table(path)
    model = fit_lookalike(like, records)
    return synthesise_like(records[:n], model, patient_share=patient_share, seed=seed,
                           source=like.checkpoint_sha256)
