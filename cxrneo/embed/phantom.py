"""Synthetic "phantom" chest images whose structure depends on their labels, for fast tests.

A lung-field-like base (body, two dark lungs, mediastinum, heart) plus one shape per
finding: Cardiomegaly enlarges the heart, Effusion brightens the lung bases with a
meniscus, Nodule adds small bright discs, Pneumothorax empties the apex of one lung.
"""

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cxrneo.labels import NO_FINDING

FINDINGS = ("Cardiomegaly", "Effusion", "Nodule", "Pneumothorax")


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def image(findings: Sequence[str], size: int, rng: np.random.Generator) -> np.ndarray:
    """One size x size uint8 phantom showing the given findings."""
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    def jitter(s: float) -> float:
        return float(rng.normal(0.0, s))

    img = np.full((size, size), 0.55, dtype=np.float64)
    lungs = []
    for cx in (0.31, 0.69):
        lung = _ellipse(yy, xx, 0.5 + jitter(0.02), cx + jitter(0.015), 0.3, 0.15)
        img[lung] = 0.2
        lungs.append(lung)
    img[np.abs(xx - 0.5) < 0.05] = 0.7
    big = "Cardiomegaly" in findings
    ry, rx = (0.15, 0.22) if big else (0.09, 0.11)
    img[_ellipse(yy, xx, 0.66 + jitter(0.01), 0.55 + jitter(0.01), ry, rx)] = 0.75
    if "Effusion" in findings:
        level = 0.66 + jitter(0.03)
        sides = lungs if rng.random() < 0.5 else [lungs[int(rng.integers(2))]]
        for lung in sides:
            fluid = lung & (yy > level - 0.05 * np.abs(xx - 0.5))
            img[fluid] = 0.65 + 0.2 * (yy[fluid] - level)
    if "Nodule" in findings:
        for _ in range(int(rng.integers(2, 5))):
            lung = lungs[int(rng.integers(2))]
            ys, xs = np.nonzero(lung)
            k = int(rng.integers(ys.size))
            img[_ellipse(yy, xx, ys[k] / size, xs[k] / size, 0.04, 0.04)] = 0.8
    if "Pneumothorax" in findings:
        side = int(rng.integers(2))
        edge = 0.31 + (0.07 if side == 0 else -0.07) + 0.38 * side
        outer = (xx < edge) if side == 0 else (xx > edge)
        img[lungs[side] & outer & (yy < 0.55)] = 0.02
    img += rng.normal(0.0, 0.04, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def write_dataset(folder: Path, n: int, size: int = 64, seed: int = 0, p: float = 0.4) -> Path:
    """Write ``n`` phantom PNGs and a plain labels.csv (path, labels, patient_id); returns the CSV."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    csv_path = folder / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "labels", "patient_id"])
        for i in range(n):
            findings = [name for name in FINDINGS if rng.random() < p]
            name = f"images/phantom_{i:05d}.png"
            Image.fromarray(image(findings, size, rng)).save(folder / name)
            out.writerow([name, "|".join(findings) or NO_FINDING, f"P{i // 2:05d}"])
    return csv_path
