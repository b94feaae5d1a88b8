"""Seeded, deterministic train/validation splits by patient, saved beside the checkpoint."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cxrneo.errors import ConfigError, InputError
from cxrneo.records import ImageRecord


def by_patient(records: Sequence[ImageRecord], val_fraction: float, seed: int) -> dict[str, str]:
    """Image id -> "train" | "val"; all images of one patient land on the same side.

    Patients are sorted, then shuffled with ``seed``; the first ``val_fraction`` of them
    (at least one, at most all but one) are validation.  Same input, same split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    patients = sorted({r.patient_id or r.id for r in records})
    if len(patients) < 2:
        raise InputError("a train/validation split needs images of at least two patients")
    order = np.random.default_rng(seed).permutation(len(patients))
    n_val = min(max(1, round(val_fraction * len(patients))), len(patients) - 1)
    val = {patients[i] for i in order[:n_val]}
    return {r.id: ("val" if (r.patient_id or r.id) in val else "train") for r in records}


def save(path: Path, split: dict[str, str], seed: int, val_fraction: float) -> None:
    """Write the split as JSON: seed, fraction and the image ids of each side."""
    doc = {
        "seed": seed,
        "val_fraction": val_fraction,
        "train": sorted(i for i, s in split.items() if s == "train"),
        "val": sorted(i for i, s in split.items() if s == "val"),
    }
    Path(path).write_text(json.dumps(doc, indent=1))


def load(path: Path) -> dict[str, str]:
    """Image id -> split from a saved split file."""
    try:
        doc = json.loads(Path(path).read_text())
        return {**{i: "train" for i in doc["train"]}, **{i: "val" for i in doc["val"]}}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: unreadable split file ({e})") from e
