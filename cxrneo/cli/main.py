"""The cxrneo command line: thin Typer commands, one library call each."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cxrneo.cli.accounts import users_app
from cxrneo.cli.auditing import audit_app
from cxrneo.cli.build import (
    communities_cmd,
    edges_cmd,
    embed_cmd,
    ingest_cmd,
    merge_cmd,
    synth_cmd,
    train_cmd,
    watch_cmd,
)
from cxrneo.cli.database import db_app
from cxrneo.cli.search import explain_cmd, keep_cmd, query_cmd, serve_cmd
from cxrneo.cli.support import filter_flags, friendly, settings
from cxrneo.settings import Settings

if TYPE_CHECKING:
    from cxrneo.filters import QueryFilter

app = typer.Typer(
    help="Content-based chest X-ray retrieval over a Neo4j graph of image codes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

def _print_version(value: bool) -> None:
    if value:
        from cxrneo import __version__

        typer.echo(f"cxrneo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Settings come from CXRNEO_* environment variables (see README.md)."""
    from pydantic import ValidationError

    try:
        ctx.obj = Settings()
    except ValidationError as e:  # one line, not a traceback
        what = "; ".join(f"CXRNEO_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}" for err in e.errors())
        typer.secho(f"error: bad setting: {what}", fg="red", err=True)
        raise typer.Exit(1) from None
    except Exception as e:  # noqa: BLE001 - any other settings failure: one line
        typer.secho(f"error: bad CXRNEO_* setting: {e}".splitlines()[0], fg="red", err=True)
        raise typer.Exit(1) from None


# --- build (owner: image codes and the graph; cxrneo/cli/build.py) ---------------------------

app.command("train")(train_cmd)
app.command("embed")(embed_cmd)
app.command("synth")(synth_cmd)
app.command("ingest")(ingest_cmd)
app.command("edges")(edges_cmd)
app.command("merge")(merge_cmd)
app.command("communities")(communities_cmd)
app.command("watch")(watch_cmd)


# --- evaluate (owner: metrics/evaluation) -------------------------------------------------


@app.command("evaluate")
@friendly
@filter_flags(graph=False)
def evaluate_cmd(
    ctx: typer.Context,
    codes_file: Annotated[Path, typer.Argument(help="Codes file (.npz) of the images to evaluate on.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for summary.json, summary.md, report.html.")],
    label_set: Annotated[list[str] | None, typer.Option(
        "--label-set", help="Label set to score (repeatable); default: every set the codes allow.")] = None,
    queries: Annotated[int, typer.Option("--queries", help="Number of query images.")] = 1000,
    db_size: Annotated[int | None, typer.Option("--db-size", help="Database images (default: all others).")] = None,
    k: Annotated[int, typer.Option("--k", help="K of the tables.")] = 10,
    k_max: Annotated[int, typer.Option("--k-max", help="Largest K of the curves.")] = 50,
    mean_degree: Annotated[float | None, typer.Option(
        "--mean-degree", help="Derive T from this mean degree (default 50 unless --threshold).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Cosine threshold T.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of split, T sample, random baseline, bootstrap.")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Stop when modularity stops rising.")] = False,
    no_neo4j: Annotated[bool, typer.Option(
        "--no-neo4j", help="Explicitly use in-memory networkx Louvain instead of Neo4j GDS (marked in the report).")] = False,
    whiten: Annotated[str, typer.Option(help=(
        "Also score whitened codes (fitted on the database part only): auto (dimension and shrinkage chosen on "
        "a patient split of the database part), a dimension, or none."))] = "none",
    whiten_shrink: Annotated[float, typer.Option(help="Shrinkage of the small eigenvalues, with --whiten N.")] = 0.0,
    image_root: Annotated[Path | None, typer.Option(
        "--image-root", help="Folder that relative image paths start from (gallery thumbnails).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help=(
        "The checkpoint that made the codes: the gallery draws each hit with its similarity map."))] = None,
    where: "QueryFilter | None" = None,  # the filter flags (cxrneo.filters.FIELDS) but --community
    boxes: Annotated[Path | None, typer.Option("--boxes", help=(
        "Instead: score region queries on expert boxes (NIH's BBox_List_2017.csv; the sample's rows are "
        "examples/nih-sample/BBox_List_2017.csv) against whole-image queries, paired, with 95% intervals; "
        "needs --checkpoint and --image-root; its graph: --mean-degree, default 20 here; --k, --seed, --no-neo4j."))] = None,
) -> None:
    """Score community, hybrid, kNN and random retrieval on a patient split (docs/method.md, scoring);
    the filter flags score retrieval within a filter (only passing database images are answers).

    By default GDS Louvain finds the database split's communities on an in-memory projection that lives only for
    the evaluation: the graph Neo4j serves is never read or written, whatever its threshold.
    """
    from rich.progress import Progress

    from cxrneo.cli import jobs
    from cxrneo.errors import ConfigError
    from cxrneo.evaluation import report
    from cxrneo.evaluation.evaluate import EvalOptions
    if boxes is not None:
        _evaluate_boxes(ctx, codes_file, boxes, out, checkpoint, image_root, k, mean_degree, seed, no_neo4j)
        return
    try:
        opts = EvalOptions(
            label_sets=label_set or [], k=k, k_max=max(k, k_max), n_queries=queries, db_size=db_size,
            seed=seed, threshold=threshold, mean_degree=mean_degree, strict=strict,
            community_backend="networkx Louvain in memory (--no-neo4j; not GDS)" if no_neo4j else "Neo4j GDS Louvain",
            whiten=whiten, whiten_shrink=whiten_shrink, filter=where,
        )
    except ValueError as e:
        raise ConfigError(f"bad option: {str(e).splitlines()[-1].strip()}") from None
    if no_neo4j:
        typer.secho("warning: --no-neo4j: communities from networkx Louvain, not Neo4j GDS", fg="yellow", err=True)
    with Progress(transient=True) as bar:
        task = bar.add_task("queries", total=opts.n_queries * len(opts.methods) * (1 if opts.whiten == "none" else 2))
        result = jobs.evaluate_file(settings(ctx), codes_file, opts, no_neo4j, lambda n: bar.advance(task, n))
    paths = report.write(result, out, image_root, jobs.map_drawer(checkpoint) if checkpoint else None)
    typer.echo(paths["md"].read_text(encoding="utf-8"))
    typer.echo(f"report: {paths['html']}")


def _evaluate_boxes(ctx: typer.Context, codes_file: Path, boxes: Path, out: Path, checkpoint: Path | None,
                    image_root: Path | None, k: int, mean_degree: float | None, seed: int, no_neo4j: bool) -> None:
    """`evaluate --boxes`: region against whole-image queries; boxes.md and boxes.json under --out."""
    from cxrneo.cli import jobs
    from cxrneo.errors import ConfigError, InputError
    from cxrneo.evaluation.boxed import markdown

    if checkpoint is None or image_root is None:
        raise ConfigError("--boxes needs --checkpoint (the one that made the codes) and --image-root (the images)")
    result = jobs.evaluate_boxes_file(settings(ctx), codes_file, boxes, checkpoint, image_root, k,
                                      mean_degree or 20.0, seed, no_neo4j)
    text = markdown(result)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "boxes.md").write_text(text + "\n", encoding="utf-8")
        (out / "boxes.json").write_text(result.model_dump_json(indent=1), encoding="utf-8")
    except OSError as e:
        raise InputError(f"{out}: cannot write ({e.strerror})") from None
    typer.echo(text)
    typer.echo(f"report: {out / 'boxes.md'}")


# --- query and serve (owner: retrieval; cxrneo/cli/search.py) -------------------------------

app.command("query")(query_cmd)
app.command("serve")(serve_cmd)
app.command("explain")(explain_cmd)
app.command("keep")(keep_cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
