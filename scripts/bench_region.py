"""Benchmark: a region query by stored id against a whole-image upload query, in one run (issue 34).

Both go through the service's own Searcher over an archive held in memory (the bundled sample's codes,
a graph at mean degree 20, networkx Louvain), with the checkpoint that made the codes:

* by id, whole image: the stored code, no forward pass (the floor: the ordinary query alone);
* by id, region: the stored film's file decoded, one forward pass, the box's cells, the ordinary query;
* upload, whole image: the file decoded, one forward pass, the duplicate and familiarity checks, the query.

Queries alternate between the three, over --films different films, --rounds times; medians and the
90th percentile are printed with the CPU model (lscpu). Speed is measured here, never in tests.

  python -m cxrneo embed examples/checkpoint/best.pt --labels examples/nih-sample/Data_Entry_2017.csv \\
      --images examples/nih-sample/images --out /tmp/sample-codes.npz --workers 0
  python scripts/bench_region.py --codes /tmp/sample-codes.npz [--method community] [--rounds 3]
"""

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrneo.archive import codes as codes_io  # noqa: E402
from cxrneo.evaluation.evaluate import louvain_in_memory  # noqa: E402
from cxrneo.graph import normalise, resolve_threshold, similarity_edges  # noqa: E402
from cxrneo.retrieval.method import Method  # noqa: E402
from cxrneo.service.request import QueryOptions  # noqa: E402
from cxrneo.service.searcher import Searcher  # noqa: E402
from tests.memory_archive import MemoryArchive  # noqa: E402

IMAGES = ROOT / "examples" / "nih-sample" / "images"
BOX = [0.55, 0.3, 0.95, 0.75]


def cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codes", type=Path, required=True, help="codes of the bundled sample (cxrneo embed)")
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "examples" / "checkpoint" / "best.pt")
    ap.add_argument("--method", default="community", choices=[m.value for m in Method])
    ap.add_argument("--films", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = codes_io.load(args.codes)
    unit = normalise(data.codes)
    threshold = resolve_threshold(None, None, 20.0, unit)
    community = louvain_in_memory(data, similarity_edges(unit, threshold), threshold)
    searcher = Searcher(MemoryArchive(data.images, data.codes, threshold, community.tolist()),  # type: ignore[arg-type]
                        args.checkpoint, "cpu", images=IMAGES)
    searcher.encoder()  # loaded once, as `serve` does
    whole = QueryOptions.model_validate({"k": 10, "method": args.method})
    region = whole.model_copy(update={"region": BOX})
    films = data.ids[:: max(1, len(data.ids) // args.films)][: args.films]
    kinds: dict[str, Callable[[str], object]] = {
        "by id, whole image (no forward pass)": lambda i: searcher.by_id(i, whole),
        "by id, region (one forward pass)": lambda i: searcher.by_id(i, region),
        "upload, whole image (one forward pass)": lambda i: searcher.search_images([(IMAGES / i, i)], whole),
    }
    for fn in kinds.values():  # warm-up
        fn(films[0])
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.rounds):
        for film in films:
            for name, fn in kinds.items():
                t0 = time.perf_counter()
                fn(film)
                times[name].append(time.perf_counter() - t0)
    print(f"CPU: {cpu()}; {len(data)} archived films, {args.method}, k=10, "
          f"{len(films)} films x {args.rounds} rounds, one process, torch on the CPU")
    for name, ts in times.items():
        ms = np.array(ts) * 1e3
        print(f"  {name:40s} median {np.median(ms):7.1f} ms   p90 {np.percentile(ms, 90):7.1f} ms")


if __name__ == "__main__":
    main()
