"""Region queries scored on expert boxes (`cxrneo evaluate --boxes`): for every image with a box, the
share of its top-k hits that carry the boxed finding, the box's region query against the whole-image
query, paired over the same images (docs/method.md, "Region queries").

The archive is every other image of the codes file; a query leaves out its own patient's images. Both
queries go through the same graph, communities and engine as `cxrneo evaluate` (retriever_searcher),
so every method is scored.
"""

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from cxrneo.archive.codes import Codes
from cxrneo.errors import ConfigError, InputError
from cxrneo.evaluation import metrics as m
from cxrneo.evaluation.evaluate import CommunitiesFn, Score, retriever_searcher
from cxrneo.graph import normalise, resolve_threshold, similarity_edges
from cxrneo.retrieval.method import Method
from cxrneo.subregion import Box, from_pixels

NIH_SIDE = 1024  # NIH's boxes are in the pixels of its 1024 x 1024 release
FINDING_NAMES = {"Infiltrate": "Infiltration"}  # the box list's names that differ from the label table's
OVERALL = "overall"


@dataclass(frozen=True)
class Boxed:
    """One expert box: the image, the finding it marks (the label table's name), the box in fractions."""

    image_id: str
    finding: str
    box: Box


def read_boxes(path: Path, side: int = NIH_SIDE) -> list[Boxed]:
    """NIH's BBox_List_2017.csv (Image Index, Finding Label, x, y, w, h in pixels of a side x side image)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    out = []
    for n, row in enumerate(rows[1:], 2):
        if not row or not row[0].strip():
            continue
        try:
            x, y, w, h = (float(v) for v in row[2:6])
            box = from_pixels(x, y, w, h, side, side)
        except ValueError:
            raise InputError(f"{path}, line {n}: not Image Index, Finding Label, x, y, w, h") from None
        finding = row[1].strip()
        out.append(Boxed(row[0].strip(), FINDING_NAMES.get(finding, finding), box))
    if not out:
        raise InputError(f"{path}: no boxes")
    return out


class Paired(BaseModel):
    """Region against whole-image queries over the same images: each mean with its 95% interval, the mean
    difference (region - whole) with its paired interval, and how often the region query did better."""

    finding: str
    images: int
    region: Score
    whole: Score
    diff: Score
    region_better: int
    whole_better: int


class MethodBoxes(BaseModel):
    method: str
    rows: list[Paired]  # per finding, then OVERALL


class BoxResult(BaseModel):
    k: int
    boxes: int
    scored: int
    skipped: list[str]  # boxes whose image is not in the codes file
    archive: int
    threshold: float
    methods: list[MethodBoxes]


def _score(values: np.ndarray, n_boot: int, seed: int) -> Score:
    ci = m.bootstrap_ci(values, n_boot, seed=seed)
    return Score(mean=ci.mean, lo=ci.lo, hi=ci.hi)


def _paired(finding: str, region: np.ndarray, whole: np.ndarray, n_boot: int, seed: int) -> Paired:
    d = m.paired_bootstrap(region, whole, n_boot, seed=seed)
    return Paired(finding=finding, images=int(region.size), region=_score(region, n_boot, seed),
                  whole=_score(whole, n_boot, seed), diff=Score(mean=d.diff, lo=d.lo, hi=d.hi),
                  region_better=int((region > whole).sum()), whole_better=int((whole > region).sum()))


def evaluate_boxes(
    codes: Codes, boxes: Sequence[Boxed], region_code: Callable[[Boxed], np.ndarray], communities_fn: CommunitiesFn,
    k: int = 10, methods: Sequence[Method] = tuple(Method), mean_degree: float = 20.0, n_boot: int = 2000,
    seed: int = 0,
) -> BoxResult:
    """Score region against whole-image queries for every box whose image the codes hold; `region_code`
    gives a box's code in the codes' space (the checkpoint's cells, cxrneo.subregion)."""
    row_of = {i: n for n, i in enumerate(codes.ids)}
    scored = [b for b in boxes if b.image_id in row_of]
    if not scored:
        raise ConfigError("none of the boxed images is in the codes file")
    unit = normalise(codes.codes)
    threshold = resolve_threshold(None, None, mean_degree, unit, seed=seed)
    edges = similarity_edges(unit, threshold)
    community = np.asarray(communities_fn(codes, edges, threshold))
    search = retriever_searcher(codes.ids, unit, edges, community, threshold)
    patient = [r.patient_id or f"image:{r.id}" for r in codes.images]
    labels = [set(r.labels) for r in codes.images]
    queries = []
    for b in scored:
        mine = patient[row_of[b.image_id]]
        exclude = frozenset(i for i, p in zip(codes.ids, patient, strict=True) if p == mine)
        r = normalise(np.asarray(region_code(b), np.float32)[None])[0]
        queries.append((b, exclude, r, unit[row_of[b.image_id]]))
    out = []
    for method in methods:
        share = np.zeros((len(queries), 2))
        for n, (b, exclude, r, w) in enumerate(queries):
            for side, q in enumerate((r, w)):
                hits = list(search(q, k, method.value, exclude))[:k]
                share[n, side] = sum(b.finding in labels[row_of[h.image_id]] for h in hits) / k
        findings = sorted({b.finding for b, *_ in queries})
        rows = [_paired(f, share[sel, 0], share[sel, 1], n_boot, seed)
                for f in findings if (sel := np.array([b.finding == f for b, *_ in queries])).any()]
        rows.append(_paired(OVERALL, share[:, 0], share[:, 1], n_boot, seed))
        out.append(MethodBoxes(method=method.value, rows=rows))
    return BoxResult(k=k, boxes=len(boxes), scored=len(scored), archive=len(codes),
                     skipped=sorted({b.image_id for b in boxes} - set(row_of)), threshold=float(threshold), methods=out)


def _ci(s: Score, signed: bool = False) -> str:
    if s.mean is None or s.lo is None or s.hi is None:
        return "-"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(s.mean)} [{f.format(s.lo)}, {f.format(s.hi)}]"


def markdown(result: BoxResult) -> str:
    """The report: per method, per finding and overall, region against whole-image with 95% intervals."""
    lines = [f"# Region queries on expert boxes: share of the top {result.k} hits that carry the boxed finding",
             "",
             f"{result.scored} boxed images of {result.boxes} boxes (each against the {result.archive - 1} other "
             f"images, its own patient left out; graph threshold {result.threshold:.4f}). Intervals: 95% "
             "percentile bootstrap over the boxed images; region - whole is paired.",
             ""]
    if result.skipped:
        lines += [f"Not in the codes file: {', '.join(result.skipped)}", ""]
    for mb in result.methods:
        lines += [f"## {mb.method}", "", "| finding | images | region | whole image | region - whole | "
                  "region better / worse |", "|---|---:|---|---|---|---|"]
        for r in mb.rows:
            name = f"**{r.finding}**" if r.finding == OVERALL else r.finding
            lines.append(f"| {name} | {r.images} | {_ci(r.region)} | {_ci(r.whole)} | {_ci(r.diff, True)} | "
                         f"{r.region_better} / {r.whole_better} |")
        lines.append("")
    return "\n".join(lines)
