"""Evaluation output: summary.json, summary.md and one self-contained report.html (inline SVG)."""

import base64
import html
import io
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from cxrneo.evaluation.evaluate import WHITENED, EvalResult, GraphInfo, SetResult
from cxrneo.labels import NO_FINDING
from cxrneo.records import ImageRecord

COLOURS = {"community": "#d62728", "hybrid": "#ff7f0e", "knn": "#1f77b4", "diffusion": "#9467bd",
           "random": "#7f7f7f"}
FORMS = {"positive": "abnormal queries only", "no-finding": f"'{NO_FINDING}' as one more label, all queries"}
NOTES = [
    "r_n = |P(q) ∩ P(x_n)| over the label set; missing results (strict mode) score 0.",
    "ACG is normalised by |P(q)| (the paper's form); 'ACG plain' is (1/K) Σ r_n.",
    "DCG uses (2^r − 1)/log2(n+1); IDCG comes from the best K database images for the query, "
    "with the query's own patient excluded as from the results; nDCG = 0 when IDCG = 0.",
    "Form 'positive' leaves out queries with no positive label in the set (counted); form "
    f"'no-finding' adds a '{NO_FINDING}' label (true when no label of the set is positive).",
    "Intervals: 95% percentile bootstrap over queries (seeded); comparisons are paired "
    "(same queries and resamples), P(A>B) = share of resamples where A's mean is higher.",
    "Split by patient (no patient on both sides); a query's results come from the database only.",
]


def _ci(s: object) -> str:
    mean, lo, hi = (getattr(s, a) for a in ("mean", "lo", "hi"))
    return "n/a" if mean is None else f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def _set_rows(r: SetResult) -> list[list[str]]:
    return [[s.method, _ci(s.precision), _ci(s.acg), _ci(s.acg_plain), _ci(s.ndcg)] for s in r.methods]


def _cmp_rows(r: SetResult) -> list[list[str]]:
    return [[f"{c.a} − {c.b}", c.metric, "n/a" if c.diff is None else
             f"{c.diff:+.3f} [{c.lo:+.3f}, {c.hi:+.3f}]",
             "n/a" if c.frac_a_better is None else f"{c.frac_a_better:.2f}"] for c in r.comparisons]


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _heads(res: EvalResult) -> tuple[list[str], list[str], list[str]]:
    k = res.options.k
    metrics = ["method", f"precision@{k}", f"ACG@{k}", f"ACG plain@{k}", f"nDCG@{k}"]
    return metrics, ["comparison", f"metric @{k}", "mean difference [95% CI]", "P(A>B)"], [
        "method", "seconds", "ms/query", "cosine fallback", f"fewer than {res.options.k_max}"]


def _run_rows(res: EvalResult) -> list[list[str]]:
    n = max(res.n_queries, 1)
    return [[r.method, f"{r.seconds:.2f}", f"{1000 * r.seconds / n:.2f}", str(r.fallback), str(r.short)]
            for r in res.runs]


def _graph_fact(g: GraphInfo) -> str:
    return (f"T = {g.threshold:.4f}, {g.edges} edges, mean degree {g.mean_degree:.1f}, "
            f"max degree {g.max_degree}, {g.isolated} isolated; {g.communities} communities ({g.backend})")


def _facts(res: EvalResult) -> list[str]:
    g, o, w = res.graph, res.options, res.whitening
    whitened = [] if w is None else [
        f"whitened codes (fitted on the database part only): {w.dim} dimensions, shrinkage {w.shrink:g}; "
        f"chosen {w.chosen}" + (": " + ", ".join(f"{k} {v:.3f}" for k, v in w.validation.items()) if w.validation
                                 else "") + " (dim/shrinkage precision; 0/0 = raw codes)",
        f"whitened graph: {_graph_fact(w.graph)}",
    ]
    return [
        f"{res.n_images} images: database {res.n_db}, queries {res.n_queries} (seed {o.seed}, split by patient)",
        f"graph: {_graph_fact(g)}",
        *whitened,
        f"retrieval: {'strict' if o.strict else 'default (always K)'} mode, K = {o.k}, curves to K = {o.k_max}",
        *([] if o.filter is None else [
            "within a filter (only passing database images are answers, random among them too): "
            + o.filter.model_dump_json(exclude_defaults=True)]),
        f"codes checkpoint sha256: {res.checkpoint_sha256 or 'unknown'}",
    ]


def to_markdown(res: EvalResult) -> str:
    """The summary as Markdown tables."""
    metrics, cmp_head, run_head = _heads(res)
    out = ["# cxrneo retrieval evaluation", ""] + [f"* {f}" for f in _facts(res)] + [""]
    out += ["## Query time", "", _md_table(run_head, _run_rows(res)), ""]
    for r in res.results:
        out += [f"## {r.label_set}, {FORMS[r.form]}", "",
                f"{r.scored} queries scored, {r.left_out} left out (no positive label), "
                f"{r.zero_ideal} with no relevant database image.", "",
                _md_table(metrics, _set_rows(r)), ""]
        if r.comparisons:
            out += [_md_table(cmp_head, _cmp_rows(r)), ""]
    out += ["## Scoring", ""] + [f"* {n}" for n in NOTES]
    return "\n".join(out) + "\n"


def svg_curves(curves: dict[str, list[float]], title: str, width: int = 460, height: int = 300) -> str:
    """A line plot of mean metric@K against K, one polyline per method, as inline SVG.

    The title is the SVG's accessible name and tooltip; pages show it as an HTML caption
    (:func:`plot_figure`), which wraps to the plot's width instead of running off its edge.
    """
    left, right, top, bottom = 44, 100, 10, 34
    pw, ph = width - left - right, height - top - bottom
    k_max = max((len(c) for c in curves.values()), default=1)
    def x(k: int) -> float:
        return left + (k - 1) / max(k_max - 1, 1) * pw

    def y(v: float) -> float:
        return top + (1.0 - v) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.2f}</text>')
    for k in sorted({1, *range(10, k_max + 1, 10), k_max}):
        parts.append(f'<text x="{x(k):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{k}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">K</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    for i, (method, curve) in enumerate(curves.items()):
        base = method.removesuffix(WHITENED)
        colour = COLOURS.get(base, "#2ca02c")
        dash = ' stroke-dasharray="5,3"' if base != method else ""  # whitened codes: the same colour, dashed
        label = base + (" (w)" if dash else "")
        points = " ".join(f"{x(k):.1f},{y(min(max(v, 0.0), 1.0)):.1f}" for k, v in enumerate(curve, start=1))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}">'
                     f"<title>{html.escape(method)}</title></polyline>")
        ly = top + 12 + 16 * i
        parts.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 28}" y1="{ly}" y2="{ly}" '
                     f'stroke="{colour}" stroke-width="3"{dash}/><text x="{left + pw + 32}" y="{ly + 4}" '
                     f'font-size="11">{html.escape(label)}</text>')
    return "".join(parts) + "</svg>"


def plot_figure(curves: dict[str, list[float]], title: str, subtitle: str, width: int = 460) -> str:
    """The plot with its title as a caption of the plot's own width (the text wraps, never clips)."""
    caption = f"<figcaption><span class='t'>{html.escape(title)}</span><br>{html.escape(subtitle)}</figcaption>"
    full = f"{title} — {subtitle}"
    return f'<figure class="plot" style="width:{width}px">{caption}{svg_curves(curves, full, width)}</figure>'


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


@lru_cache(maxsize=256)
def thumbnail(path: Path, size: int = 128) -> str | None:
    """A base64 PNG data URI of the image, or None when it cannot be read."""
    try:
        from PIL import Image

        with Image.open(path) as src:
            grey = src.convert("L")
        grey.thumbnail((size, size))
        buf = io.BytesIO()
        grey.save(buf, format="PNG")
    except (OSError, ValueError, ImportError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_file(record: ImageRecord, image_root: Path | None) -> Path | None:
    """The file of a record: its path (under ``image_root`` when relative), else its file name in
    ``image_root`` (an archive moved); None when neither is a file."""
    if not record.path:
        return None
    p = Path(record.path)
    candidates = [p if p.is_absolute() or image_root is None else image_root / p]
    if image_root is not None:
        candidates.append(image_root / p.name)
    return next((c for c in candidates if c.is_file()), None)


Explainer = Callable[[Path, Path], bytes]  # (query file, hit file) -> the hit's similarity-map PNG


def _figure(record: ImageRecord, query: ImageRecord | None, image_root: Path | None,
            explain: Explainer | None = None) -> str:
    path = image_file(record, image_root)
    uri = thumbnail(path) if path else None
    query_path = image_file(query, image_root) if query is not None and explain is not None else None
    if path and query_path and explain is not None:
        uri = "data:image/png;base64," + base64.b64encode(explain(query_path, path)).decode("ascii")
    img = (f'<img src="{uri}" alt="{html.escape(record.id)}">' if uri
           else f'<div class="ph">{html.escape(record.id)}</div>')
    shared = set(query.labels) if query else set()
    labels = ", ".join(
        f"<b>{html.escape(lab)}</b>" if lab in shared else html.escape(lab) for lab in record.labels
    ) or f"<i>{NO_FINDING}</i>"
    return f'<figure>{img}<figcaption>{html.escape(record.id)}<br>{labels}</figcaption></figure>'


def _gallery(res: EvalResult, image_root: Path | None, explain: Explainer | None = None) -> str:
    rows = []
    for ex in res.examples:
        for method, hits in ex.results.items():
            cells = "".join(_figure(h, ex.query, image_root, explain) for h in hits)
            rows.append(f'<div class="row"><div class="m">{html.escape(method)}</div>'
                        f'{_figure(ex.query, None, image_root)}<div class="sep">→</div>{cells}</div>')
        rows.append("<hr>")
    return "".join(rows)


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}th{background:#f3f3f3}.plots{display:flex;flex-wrap:wrap;gap:12px}
.row{display:flex;align-items:flex-start;gap:6px;margin:4px 0}.m{width:80px;font-weight:bold;
font-size:12px}figure{margin:0;width:128px;font-size:10px}figure img,.ph{width:128px;height:128px;
object-fit:contain;background:#111}.ph{color:#eee;display:flex;align-items:center;
justify-content:center;font-size:10px;word-break:break-all}.sep{align-self:center;font-size:20px}
b{color:#0a7a2f}figure.plot{font-size:13px;margin:0}figure.plot figcaption{margin:0 0 4px 44px;
overflow-wrap:anywhere}figure.plot svg{display:block}.t{font-weight:bold}"""


def to_html(res: EvalResult, image_root: Path | None = None, explain: Explainer | None = None) -> str:
    """The whole report as one self-contained HTML page; with `explain`, each example hit is drawn
    with its similarity map (where it is like the query)."""
    metrics, cmp_head, run_head = _heads(res)
    body = ["<h1>cxrneo retrieval evaluation</h1><ul>"] + [f"<li>{html.escape(f)}</li>" for f in _facts(res)]
    body.append("</ul><h2>Precision at K</h2><div class='plots'>")
    for r in res.results:
        curves = {s.method: s.precision_curve for s in r.methods}
        body.append(plot_figure(curves, f"precision@K — {r.label_set}", FORMS[r.form]))
    body.append("</div><h2>Scores</h2>")
    for r in res.results:
        body.append(f"<h3>{html.escape(r.label_set)}, {html.escape(FORMS[r.form])}</h3>"
                    f"<p>{r.scored} queries scored, {r.left_out} left out (no positive label), "
                    f"{r.zero_ideal} with no relevant database image.</p>")
        body.append(_html_table(metrics, _set_rows(r)))
        if r.comparisons:
            body.append(_html_table(cmp_head, _cmp_rows(r)))
    body.append("<h2>Query time</h2>" + _html_table(run_head, _run_rows(res)))
    body.append("<h2>Examples: query, then its top 5 (labels shared with the query in bold)</h2>")
    if explain is not None:
        body.append("<p>Each hit is drawn with its similarity map: its cells coloured by their share of its "
                    "cosine to the query (dark to bright: less to more of the similarity).</p>")
    body.append(_gallery(res, image_root, explain))
    body.append("<h2>Scoring</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in NOTES) + "</ul>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>cxrneo evaluation</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def write(res: EvalResult, out_dir: Path, image_root: Path | None = None,
          explain: Explainer | None = None) -> dict[str, Path]:
    """Write summary.json, summary.md and report.html into ``out_dir``; their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "summary.json", "md": out_dir / "summary.md", "html": out_dir / "report.html"}
    paths["json"].write_text(res.model_dump_json(indent=2), encoding="utf-8")
    paths["md"].write_text(to_markdown(res), encoding="utf-8")
    paths["html"].write_text(to_html(res, image_root, explain), encoding="utf-8")
    return paths
