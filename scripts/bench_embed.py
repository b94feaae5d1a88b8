"""Benchmark code extraction: cxrneo's extractor vs plain torchvision eager DenseNet-121, same run.

Usage:  nice python scripts/bench_embed.py --n 64 --sizes 224 512 [--device auto] [--batch-size 16]
        nice python scripts/bench_embed.py --explain 20 [--checkpoint examples/checkpoint/best.pt]

With --explain N: N similarity explanations of pairs of sample images at the checkpoint's size (one
forward pass for both images, the maps and the overlay PNG, what `cxrneo explain` and
`GET /explain` do) against embedding the same two images one by one (`Encoder.code`), alternating;
medians and their ratio.

Rows per image size:
  * ``cxrneo embed``: files -> decode -> DenseNet-121 codes (DataLoader workers; AMP and
    channels_last on CUDA) -> codes file, the whole `cxrneo embed` path;
  * ``cxrneo model.code``: pre-decoded tensors already on the device, our settings;
  * ``torchvision eager fp32``: the same architecture as torchvision builds it, plain
    eager fp32 forward on the same pre-decoded tensors (the baseline).
Images are the bundled real NIH sample (examples/nih-sample, 224 px; resized on the fly for
other sizes) for up to 621 images, otherwise phantoms.  Prints a
markdown table and the device name.  Weights are random: speed does not depend on them.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from cxrneo import labels as lsets
from cxrneo.embed import checkpoint, phantom, runtime
from cxrneo.embed.extract import embed
from cxrneo.embed.images import normalise, read_grey
from cxrneo.embed.model import CxrNet
from cxrneo.tables.table import read_table

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nih-sample"


def _table(size: int, n: int, work: Path):  # type: ignore[no-untyped-def]
    """n labelled image files: the bundled NIH sample (224 px files) when n <= 621, else phantoms."""
    folder = SAMPLE / "images"
    if n <= 621:
        rows = (SAMPLE / "Data_Entry_2017.csv").read_text().splitlines()
        csv = work / f"nih-{size}.csv"
        csv.write_text("\n".join(rows[: n + 1]) + "\n")
        return read_table("nih", csv, folder, lsets.get("nih")), f"NIH sample (224 px files, read at {size} px)"
    csv = phantom.write_dataset(work / f"phantom-{size}", n, size)
    return read_table("csv", csv, csv.parent, lsets.get("nih")), "phantoms"


def _timed(fn, x: torch.Tensor, batch: int, dev: torch.device) -> float:  # type: ignore[no-untyped-def]
    """Seconds to run ``fn`` over ``x`` in batches (after one warm-up batch)."""
    with torch.inference_mode():
        fn(x[:batch])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            fn(x[i : i + batch])
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench(
    size: int, n: int, batch: int, workers: int, dev: torch.device, work: Path
) -> list[tuple[str, ...]]:
    table, source = _table(size, n, work)
    n = len(table)
    lset = table.label_set
    model = CxrNet(len(lset.labels)).eval()
    ckpt = work / f"bench-{size}.pt"
    checkpoint.save(
        ckpt,
        {
            "arch": "densenet121",
            "config": {"size": size},
            "label_set": lset.name,
            "labels": list(lset.labels),
            "split": {"train": [], "val": []},
            "metrics": {},
            "model": model.state_dict(),
        },
    )
    rows: list[tuple[str, ...]] = []
    # 1. the whole `cxrneo embed` path from files (warm the model once first)
    embed(ckpt, table.subset(range(min(batch, n))), work / "warm.npz", batch, workers, dev.type)
    t0 = time.perf_counter()
    embed(ckpt, table, work / f"codes-{size}.npz", batch, workers, dev.type)
    seconds = time.perf_counter() - t0
    rows.append(
        (str(size), "cxrneo embed (files -> codes file)", str(batch), f"{n / seconds:.1f}", f"{seconds:.2f}")
    )
    # pre-decoded input, on the device
    x = torch.from_numpy(np.stack([normalise(read_grey(p, size)) for p in table.paths])).to(dev)
    ours = model.to(dev)
    xo = x
    if dev.type == "cuda":
        ours = ours.to(memory_format=torch.channels_last)
        xo = x.contiguous(memory_format=torch.channels_last)

    def our_code(b: torch.Tensor) -> torch.Tensor:
        with runtime.autocast(dev):
            return ours.code(b)

    seconds = _timed(our_code, xo, batch, dev)
    rows.append(
        (str(size), "cxrneo model.code (pre-decoded)", str(batch), f"{n / seconds:.1f}", f"{seconds:.2f}")
    )
    ref = torchvision.models.densenet121(weights=None).eval().to(dev)
    seconds = _timed(ref, x, batch, dev)
    rows.append(
        (
            str(size),
            "torchvision densenet121 eager fp32 (pre-decoded)",
            str(batch),
            f"{n / seconds:.1f}",
            f"{seconds:.2f}",
        )
    )
    print(f"# {size} px: {n} images ({source})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images at 224 px (a quarter of them at 512 px)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    ap.add_argument("--batch-size", type=int, default=None, help="default 16 on CPU, 128 on CUDA")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--explain", type=int, default=0, help="time N explanations against embedding their pairs")
    ap.add_argument("--checkpoint", type=Path, default=SAMPLE.parent / "checkpoint" / "best.pt")
    args = ap.parse_args()
    if args.explain:
        explain_bench(args.checkpoint, args.explain, args.device)
        return
    dev = runtime.device(args.device)
    batch = args.batch_size or (128 if dev.type == "cuda" else 16)
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n = args.n if size <= 224 else max(8, args.n // 4)
            rows += bench(size, n, batch, args.workers, dev, Path(tmp))
    amp = runtime.amp_dtype(dev)
    print(
        f"\ndevice: {runtime.device_name(dev)}; torch {torch.__version__}; our AMP: {amp or 'off (fp32)'}\n"
    )
    print("| size | method | batch | images/s | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def explain_bench(ckpt: Path, n: int, device: str) -> None:
    from cxrneo.embed.encoder import Encoder
    from cxrneo.service.overlay import pair_png

    enc = Encoder(ckpt, device)
    images = sorted((SAMPLE / "images").glob("*.png"))
    enc.explain(images[0], images[1])  # warm-up
    explain_s, embed_s = [], []
    for i in range(n):
        a, b = images[(2 * i) % len(images)], images[(2 * i + 1) % len(images)]
        t = time.perf_counter()
        enc.code(a)
        enc.code(b)
        embed_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        maps = enc.explain(a, b)
        pair_png(read_grey(a, enc.size), read_grey(b, enc.size), maps, (a.name, b.name))
        explain_s.append(time.perf_counter() - t)
    e, m = float(np.median(embed_s)), float(np.median(explain_s))
    print(f"device: {runtime.device_name(enc.device)}; {n} pairs at {enc.size} px")
    print(f"embed the two images: median {e * 1e3:.0f} ms; explain them (maps + overlay PNG): median "
          f"{m * 1e3:.0f} ms = {m / e:.2f}x")


if __name__ == "__main__":
    main()
