"""Benchmark: how often "is this a chest X-ray like the archive's?" flags real films and other pictures.

The 621 bundled NIH films are embedded by a checkpoint (default: the shipped one) through the service's
own path (`Encoder.look`: the code and the pixel rules of cxrneo.embed.radiograph). Then, in 5 folds,
the code statistic (cxrneo.retrieval.familiar.Familiarity) is fitted on four fifths of the films as an
archive and asked about the fifth (held out: films it never saw) and about every picture that is not a
chest radiograph:

* blank images (5 grey levels, 5 flat colours), noise (10 uniform, 10 Gaussian of growing spread,
  10 colour), made here;
* photographs: scikit-learn's two sample photos (china.jpg, flower.jpg, a dev dependency) whole and in
  15 random crops each (every third mirrored, every fifth turned grey);
* other modalities: the CT, MR and JPEG 2000 test files that ship with pydicom.

A picture counts as flagged when the pixel rules doubt it, or when the code statistic flags it in at
least 3 of the 5 folds. Images the service would refuse outright (too small) are not in the set.
Prints the CPU model, the share of real films flagged (aim at most 2%), the share of pictures flagged
(aim at least 95%) with the ones missed, and the duplicate margin: the highest cosine between two
distinct sample films beside DUPLICATE_COSINE. `--json PATH` writes the same numbers.

  python scripts/bench_familiar.py [--checkpoint examples/checkpoint/best.pt]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrneo.embed.encoder import Encoder  # noqa: E402
from cxrneo.retrieval.familiar import COMPONENTS, DUPLICATE_COSINE, QUANTILE, Familiarity  # noqa: E402

FOLDS = 5


def pictures(out: Path) -> list[Path]:
    """Every picture that is not a chest radiograph, written under ``out`` (or found in a package)."""
    rng = np.random.default_rng(0)
    made: list[Path] = []

    def save(name: str, pixels: np.ndarray) -> None:
        Image.fromarray(np.ascontiguousarray(pixels)).save(out / name)
        made.append(out / name)

    for g in (0, 40, 128, 200, 255):
        save(f"blank-{g}.png", np.full((256, 256), g, np.uint8))
        save(f"flat-colour-{g}.png", np.full((300, 400, 3), (g, 255 - g, 60), np.uint8))
    for i in range(10):
        save(f"uniform-noise-{i}.png", rng.integers(0, 256, (256 + 32 * i, 256), dtype=np.uint8))
        save(f"gaussian-noise-{i}.png", np.clip(rng.normal(128, 10 + 10 * i, (300, 300)), 0, 255).astype(np.uint8))
        save(f"colour-noise-{i}.png", rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    try:
        from sklearn.datasets import load_sample_images

        photos = load_sample_images()
        for name, im in zip(photos.filenames, photos.images, strict=True):
            stem = Path(name).stem
            save(f"{stem}.png", im)
            h, w = im.shape[:2]
            for i in range(15):
                s = int(rng.integers(128, min(h, w)))
                y, x = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
                crop = im[y:y + s, x:x + s]
                if i % 3 == 0:
                    crop = crop[:, ::-1]
                if i % 5 == 0:
                    crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).convert("L"))
                save(f"{stem}-crop-{i}.png", crop)
    except ImportError:
        print("scikit-learn is not installed: no photographs in the set")
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
        found = get_testdata_file(name)
        if isinstance(found, str):
            made.append(Path(found))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "examples" / "checkpoint" / "best.pt")
    ap.add_argument("--images", type=Path, default=ROOT / "examples" / "nih-sample" / "images")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import tempfile

    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines() if line.startswith("Model name")), "?")
    encoder = Encoder(args.checkpoint, "cpu")
    films = sorted(args.images.glob("*.png"))
    real = [encoder.look(f) for f in films]
    with tempfile.TemporaryDirectory() as tmp:
        others = pictures(Path(tmp))
        fake = [encoder.look(p) for p in others]
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    codes = unit(np.stack([c for c, _ in real]).astype(np.float32))
    other_codes = unit(np.stack([c for c, _ in fake]).astype(np.float32))
    order = np.random.default_rng(0).permutation(len(films))
    real_flagged = np.zeros(len(films), bool)
    votes = np.zeros(len(others), int)
    for fold in np.array_split(order, FOLDS):
        archive = np.sort(np.setdiff1d(order, fold))
        fam = Familiarity.fit(codes[archive], archive.size)
        assert fam is not None
        real_flagged[fold] = [fam.doubt(c) is not None for c in codes[fold]]
        votes += [fam.doubt(c) is not None for c in other_codes]
    pixel_real = np.array([d is not None for _, d in real])
    pixel_other = np.array([d is not None for _, d in fake])
    flagged_real = real_flagged | pixel_real
    flagged_other = (votes >= 3) | pixel_other
    sims = codes.astype(np.float64) @ codes.T.astype(np.float64)
    np.fill_diagonal(sims, -1.0)
    doc = {
        "cpu": cpu, "checkpoint": str(args.checkpoint), "films": len(films), "pictures": len(others),
        "components": COMPONENTS, "quantile": QUANTILE,
        "real_flagged": int(flagged_real.sum()), "real_flagged_share": float(flagged_real.mean()),
        "real_flagged_by_pixels": int(pixel_real.sum()),
        "pictures_flagged": int(flagged_other.sum()), "pictures_flagged_share": float(flagged_other.mean()),
        "pictures_flagged_by_pixels": int(pixel_other.sum()),
        "missed": [p.name for p, f in zip(others, flagged_other, strict=True) if not f],
        "distinct_films_highest_cosine": float(sims.max()), "duplicate_cosine": DUPLICATE_COSINE,
    }
    print(f"CPU: {cpu}")
    print(f"real films flagged: {doc['real_flagged']}/{len(films)} = {doc['real_flagged_share']:.1%} "
          f"(held out in {FOLDS} folds; by the pixel rules: {doc['real_flagged_by_pixels']})")
    print(f"other pictures flagged: {doc['pictures_flagged']}/{len(others)} = {doc['pictures_flagged_share']:.1%} "
          f"(by the pixel rules alone: {doc['pictures_flagged_by_pixels']}); missed: {', '.join(doc['missed']) or '-'}")
    print(f"duplicates: distinct sample films reach cosine {doc['distinct_films_highest_cosine']:.5f}; "
          f"an upload is its archived film at {DUPLICATE_COSINE}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
