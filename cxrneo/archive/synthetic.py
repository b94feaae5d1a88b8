"""Label-faithful synthetic image codes from a NIH label table (pure numpy, seeded)."""

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
