"""Which region code wins on real boxes (issue 34, design by measurement): the 12 NIH expert boxes on the
bundled sample, each image's box asked against the other 620 films, exact kNN, top k.

* whole: the image's own code against the archive's codes (what a query without a region does);
* (a) mean: the box's cells, weighted by the share of each the box covers (cxrneo.subregion), their mean
  against the archive's whole-image codes; no new storage, any retrieval method;
* (b) cells: the box's cells against every archived film's stored cells, reduced by a PCA fitted on the
  archive's cells to D values each; a film scores the weighted mean, over the box's cells, of its best
  cell's cosine (late interaction); kNN only (no graph over cells). Storage 49 x D values per film.

Score: the share of the top k hits that carry the boxed finding, paired over the 12 boxes (95% bootstrap
intervals). Prints the CPU model, the (b) storage per film and its scan time here, scaled to 112,120 films.

  python scripts/region_designs.py [--checkpoint examples/checkpoint/best.pt] [--k 10] [--dims 32 64 128]
"""

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrneo.embed.encoder import Encoder  # noqa: E402
from cxrneo.evaluation.boxed import read_boxes  # noqa: E402
from cxrneo.evaluation.metrics import bootstrap_ci, paired_bootstrap  # noqa: E402
from cxrneo.subregion import cell_weights, region_code  # noqa: E402

SAMPLE = ROOT / "examples" / "nih-sample"
NIH_IMAGES = 112_120


def cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return out


def share(order: np.ndarray, labels: list[set[str]], finding: str, k: int) -> float:
    return sum(finding in labels[j] for j in order[:k]) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "examples" / "checkpoint" / "best.pt")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dims", type=int, nargs="+", default=[32, 64, 128])
    args = ap.parse_args()
    with open(SAMPLE / "Data_Entry_2017.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["Image Index"] for r in rows]
    labels = [set(r["Finding Labels"].split("|")) for r in rows]
    enc = Encoder(args.checkpoint, "cpu")
    t0 = time.perf_counter()
    cells = np.concatenate([enc.cells([SAMPLE / "images" / i for i in ids[s:s + 16]]) for s in range(0, len(ids), 16)])
    print(f"cells of {len(ids)} films: {time.perf_counter() - t0:.0f} s; CPU: {cpu()}")
    n, c, h, w = cells.shape
    codes = unit(cells.mean(axis=(2, 3)))
    flat = cells.transpose(0, 2, 3, 1).reshape(n, h * w, c)  # film x cell x channel
    boxes = [b for b in read_boxes(SAMPLE / "BBox_List_2017.csv") if b.image_id in ids]
    row = {i: j for j, i in enumerate(ids)}
    scores: dict[str, list[float]] = {"whole": [], "a": []}
    for b in boxes:
        q = row[b.image_id]
        others = np.array([j for j in range(n) if j != q])
        for name, v in (("whole", codes[q]), ("a", unit(region_code(cells[q], b.box)))):
            order = others[np.argsort(-(codes[others] @ v), kind="stable")]
            scores[name].append(share(order, labels, b.finding, args.k))
    mean_cell = flat.reshape(-1, c).mean(axis=0)
    _, _, vt = np.linalg.svd(flat.reshape(-1, c) - mean_cell, full_matrices=False)  # PCA on the archive's cells
    scan: dict[int, float] = {}
    for d in args.dims:
        stored = unit((flat - mean_cell) @ vt[:d].T)  # film x cell x d
        key = f"b{d}"
        scores[key] = []
        t0 = time.perf_counter()
        for b in boxes:
            q = row[b.image_id]
            wts = cell_weights(b.box, h, w).reshape(-1)
            mine = np.flatnonzero(wts > 0)
            r = stored[q, mine]  # the box's cells, reduced
            best = np.einsum("ncd,md->nmc", stored, r).max(axis=2)  # film x box cell: its best cell
            score = best @ wts[mine] / wts[mine].sum()
            others = np.array([j for j in range(n) if j != q])
            order = others[np.argsort(-score[others], kind="stable")]
            scores[key].append(share(order, labels, b.finding, args.k))
        scan[d] = (time.perf_counter() - t0) / len(boxes)
    print(f"\n{len(boxes)} boxes, top {args.k}: share of hits carrying the boxed finding (95% bootstrap)")
    base = np.array(scores["whole"])
    for name, vals in scores.items():
        v = np.array(vals)
        mean, lo, hi = bootstrap_ci(v, 5000, seed=0)
        line = f"  {name:6s} {mean:.3f} [{lo:.3f}, {hi:.3f}]"
        if name != "whole":
            p = paired_bootstrap(v, base, 5000, seed=0)
            line += f"   - whole {p.diff:+.3f} [{p.lo:+.3f}, {p.hi:+.3f}]"
        if name.startswith("b"):
            pa = paired_bootstrap(v, np.array(scores["a"]), 5000, seed=0)
            line += f"   - (a) {pa.diff:+.3f} [{pa.lo:+.3f}, {pa.hi:+.3f}]"
        print(line)
    print("\n(b) cost: storage per film and scan per query (numpy, one thread of this CPU)")
    for d, sec in scan.items():
        per = sec / n * NIH_IMAGES
        print(f"  D={d}: {h * w * d * 4:,} bytes per film in float32 ({h * w * d * 4 * NIH_IMAGES / 2**30:.1f} GiB "
              f"at {NIH_IMAGES:,}); {sec * 1e3:.1f} ms per query at {n} films, about {per:.1f} s at {NIH_IMAGES:,}")
    print(f"  (a): no storage beyond the {c * 4:,}-byte code; its scan is the whole-image scan")


if __name__ == "__main__":
    main()
