"""The cxrneo command line: thin Typer commands, one library call each."""

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cxrneo.errors import CxrneoError
from cxrneo.retrieval.engine import Method
from cxrneo.settings import Settings

if TYPE_CHECKING:
    from cxrneo.db.server import ServerConfig

app = typer.Typer(
    help="Content-based chest X-ray retrieval over a Neo4j graph of image codes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Run the local Neo4j + Graph Data Science server (no Docker).")
app.add_typer(db_app, name="db")

F = TypeVar("F", bound=Callable[..., Any])


def settings(ctx: typer.Context) -> Settings:
    """The settings built once in the callback."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def friendly(fn: F) -> F:
    """Turn cxrneo errors into one clear line and exit code 1 (traceback with CXRNEO_DEBUG=1)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CxrneoError as e:
            if os.environ.get("CXRNEO_DEBUG") == "1":
                raise
            typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


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


def _server_config(ctx: typer.Context) -> "ServerConfig":
    from cxrneo.db.server import ServerConfig

    s = settings(ctx)
    return ServerConfig.from_uri(s.data_dir, s.neo4j_uri, s.http_port, s.neo4j_heap, s.neo4j_pagecache)


@db_app.command("start")
@friendly
def db_start(ctx: typer.Context) -> None:
    """Assemble (first time only, from Maven Central) and start the local Neo4j + GDS."""
    import time

    from cxrneo.db import server

    cfg = _server_config(ctx)
    password = settings(ctx).password()
    t0 = time.monotonic()
    if not (cfg.dist / "ASSEMBLED").exists():
        typer.echo(f"assembling Neo4j + GDS from Maven Central into {cfg.dist} ...")
        typer.echo(f"assembled in {server.assemble(cfg):.0f} s")
    if server.start(cfg, password):
        typer.echo(f"Neo4j started in {time.monotonic() - t0:.0f} s: {cfg.bolt_address}, Browser {cfg.http_address}")
    else:
        typer.echo(f"Neo4j is already running (pid {server.running_pid(cfg)}): {cfg.bolt_address}")


@db_app.command("stop")
@friendly
def db_stop(ctx: typer.Context) -> None:
    """Stop the local Neo4j cleanly (SIGTERM, wait; no JVM left behind)."""
    from cxrneo.db import server

    typer.echo("Neo4j stopped" if server.stop(_server_config(ctx)) else "Neo4j was not running")


@db_app.command("reset")
@friendly
def db_reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete every node and relationship.")] = False,
) -> None:
    """Delete every image, edge and community from the database (schema and indexes stay)."""
    from cxrneo.db.connection import Database
    from cxrneo.db.ingest import reset
    from cxrneo.errors import ConfigError

    if not yes:
        raise ConfigError("db reset deletes the whole graph: add --yes to confirm")
    with Database.connect(settings(ctx)) as db:
        reset(db)  # under the writer lease: refused while an ingest or community run writes
    typer.echo("graph emptied")


@db_app.command("status")
@friendly
def db_status(ctx: typer.Context) -> None:
    """Print the Neo4j and GDS versions and the Bolt and HTTP addresses."""
    from cxrneo.db import server
    from cxrneo.db.connection import Database

    s = settings(ctx)
    cfg = _server_config(ctx)
    pid = server.running_pid(cfg)
    typer.echo(f"local server: {'running, pid ' + str(pid) if pid else 'not running'} ({cfg.home})")
    if pid is None and not server.port_open(cfg.bolt_port):
        typer.echo(f"nothing listens on {s.neo4j_uri}")  # no password needed to say so
        return
    if s.neo4j_password is None:
        typer.echo(f"something listens on {s.neo4j_uri}; set CXRNEO_NEO4J_PASSWORD to see its versions")
        return
    with Database.connect(s) as db:
        row = db.read("show_versions")[0]
    typer.echo(f"Neo4j {row['neo4j']} ({row['edition']}), Graph Data Science {row['gds']}")
    typer.echo(f"Bolt {s.neo4j_uri}   HTTP {cfg.http_address}   database {s.neo4j_database}")



# --- train / embed (owner: image codes, cxrneo/embed) -------------------------------------

FormatOpt = Annotated[str, typer.Option("--format", help=(
    "Label file format: nih (Data_Entry_2017.csv), chexpert "
    "(train.csv/valid.csv) or csv (path,labels[,patient_id])."
))]
LabelsOpt = Annotated[Path, typer.Option("--labels", help="The label file (.csv or .csv.gz).")]
ImagesOpt = Annotated[Path, typer.Option("--images", help=(
    "Folder the image paths of the label file are relative to (PNG, JPEG or DICOM files)."
))]
MaxImagesOpt = Annotated[int | None, typer.Option(help=(
    "Use only the first N rows of the label file (quick runs)."
))]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if present), cpu or cuda.")]
WorkersOpt = Annotated[int, typer.Option(help=(
    "Image-decoding worker processes (0 = decode in the main process)."
))]


@app.command("train")
@friendly
def train_cmd(
    labels: LabelsOpt,
    images: ImagesOpt,
    fmt: FormatOpt = "nih",
    label_set: Annotated[str, typer.Option(help=(
        "nih (13), nih-u (9), chexpert (9) or chexpert-u (5); see SPEC section 1."
    ))] = "nih",
    size: Annotated[int, typer.Option(help="Image side in pixels: 224 (LR) or 512 (HR).")] = 224,
    epochs: Annotated[int, typer.Option(help="Training epochs (the paper: 20).")] = 20,
    batch_size: Annotated[int, typer.Option(help="Images per batch (the paper: 32).")] = 32,
    lr: Annotated[float | None, typer.Option(help=(
        "Initial learning rate (default 1e-3 for NIH, 1e-4 for CheXpert)."
    ))] = None,
    out: Annotated[Path, typer.Option(help=(
        "Checkpoint folder: best.pt, last.pt, split.json, auc.md, metrics.json."
    ))] = Path("checkpoints"),
    weights: Annotated[Path | None, typer.Option(help=(
        "Local DenseNet-121 state dict to start from (ImageNet or chest X-ray); "
        "nothing is downloaded."
    ))] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from last.pt in --out.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the patient split, shuffling and flips.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Fraction of patients held out for validation.")] = 0.1,
    max_images: MaxImagesOpt = None,
    device: DeviceOpt = "auto",
    workers: WorkersOpt = 2,
) -> None:
    """Train DenseNet-121 on labelled chest X-rays (PNG, JPEG, DICOM); keeps the best mean validation AUC checkpoint."""
    from cxrneo.embed.train import make_config, train
    from cxrneo.text import console

    if lr is None:
        lr = 1e-4 if label_set.startswith("chexpert") else 1e-3
    cfg = make_config(format=fmt, labels=labels, images=images, label_set=label_set, size=size,
                      epochs=epochs, batch_size=batch_size, lr=lr, out=out, weights=weights, seed=seed,
                      val_fraction=val_fraction, max_images=max_images, device=device, workers=workers)
    train(cfg, resume=resume, console=console())


@app.command("embed")
@friendly
def embed_cmd(
    checkpoint: Annotated[Path, typer.Argument(help=(
        "A checkpoint file (best.pt) or the folder `cxrneo train --out` wrote."
    ))],
    labels: LabelsOpt,
    images: ImagesOpt,
    fmt: FormatOpt = "nih",
    label_set: Annotated[str | None, typer.Option(help="Label set (default: the checkpoint's).")] = None,
    out: Annotated[Path, typer.Option(help=(
        "Codes file to write (.npz, N x 1024 float32 with image records)."
    ))] = Path("codes.npz"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    workers: WorkersOpt = 2,
    max_images: MaxImagesOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write the 1024-d code of every readable image (PNG, JPEG or DICOM); resumes when interrupted, lists unreadable images."""
    from cxrneo.embed import checkpoint as ckpt_file
    from cxrneo.embed import labelsets
    from cxrneo.embed.extract import embed
    from cxrneo.embed.table import read_table
    from cxrneo.text import console as make_console
    from cxrneo.text import plural

    name = label_set or str(ckpt_file.load(checkpoint)["label_set"])
    table = read_table(fmt, labels, images, labelsets.get(name), max_images)
    console = make_console()
    result = embed(checkpoint, table, out, batch_size=batch_size, workers=workers, device=device,
                   console=console)
    console.print(f"{plural(result.written, 'code')} written to {result.out}")
    if result.skipped_report is not None:
        console.print(f"[yellow]{plural(result.skipped, 'unreadable image')} skipped, "
                      f"listed in {result.skipped_report}")


# --- synth, ingest, communities (owner: graph) --------------------------------------------


@app.command("synth")
@friendly
def synth_cmd(
    labels: Annotated[Path, typer.Option(help="NIH label table (Data_Entry_2017*.csv or .csv.gz).")],
    out: Annotated[Path, typer.Option(help="Codes file to write (.npz).")] = Path("codes.npz"),
    n: Annotated[int | None, typer.Option(help="Keep the first N rows (default: all).")] = None,
    noise: Annotated[float, typer.Option(help="Noise norm relative to one label direction.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write label-faithful synthetic codes (labels + patient + view + noise) for a label table."""
    from cxrneo.codes import save
    from cxrneo.synthetic import from_table

    codes = from_table(labels, n=n, noise=noise, seed=seed)
    save(out, codes)
    typer.echo(f"{len(codes)} synthetic codes written to {out}")


@app.command("ingest")
@friendly
def ingest_cmd(
    ctx: typer.Context,
    codes_file: Annotated[Path, typer.Argument(help=(
        "Codes file from `cxrneo embed` or `cxrneo synth`; to add images, the "
        "combined file (stored + new)."
    ))],
    threshold: Annotated[float | None, typer.Option(help=(
        "Cosine threshold T (default: the stored one)."
    ))] = None,
    mean_degree: Annotated[float | None, typer.Option(help=(
        "Derive T from this target mean degree (new graph only)."
    ))] = None,
    batch: Annotated[int, typer.Option(help="Edges per transaction (at least 1).")] = 10_000,
    bulk: Annotated[bool, typer.Option("--bulk", help=(
        "New graph only, local server only: offline neo4j-admin import (stops and restarts the server)."
    ))] = False,
) -> None:
    """Load images and SIMILAR edges into Neo4j (idempotent, resumable, counts verified)."""
    from cxrneo.codes import load
    from cxrneo.db.connection import Database
    from cxrneo.db.ingest import build, check_batch
    from cxrneo.text import console as make_console

    check_batch(batch)  # before anything is read or written
    codes = load(codes_file)
    console = make_console()
    if bulk:
        from cxrneo.db.bulk import bulk_build

        stats, b = bulk_build(settings(ctx), codes, threshold=threshold, mean_degree=mean_degree)
        console.print(f"T = {stats.threshold:.6f}: {stats.nodes} images, {stats.edges} edges, mean degree "
                      f"{stats.mean_degree:.2f}, max degree {stats.max_degree}, {stats.isolated} isolated")
        console.print(f"bulk import in {b.load_seconds:.1f} s ({b.rel_per_s:,.0f} rel/s): CSV {b.csv_seconds:.1f} s, "
                      f"import {b.import_seconds:.1f} s, restart {b.restart_seconds:.1f} s, schema + checks "
                      f"{b.schema_seconds:.1f} s; generation {b.generation}")
        return
    with Database.connect(settings(ctx)) as db:
        stats, rep = build(db, codes, threshold=threshold, mean_degree=mean_degree, batch=batch,
                           snapshot_dir=settings(ctx).snapshot_dir)
    console.print(f"T = {stats.threshold:.6f}: {stats.nodes} images, {stats.edges} edges, mean degree "
                  f"{stats.mean_degree:.2f}, max degree {stats.max_degree}, {stats.isolated} isolated")
    console.print(f"wrote {rep.nodes_written} images, {rep.edges_created + rep.edges_merged} edges "
                  f"({rep.sources_skipped} sources already complete) in {rep.seconds:.1f} s "
                  f"({rep.rel_per_s:,.0f} rel/s); generation {rep.generation}"
                  + ("" if rep.changed else " (nothing changed)"))


@app.command("communities")
@friendly
def communities_cmd(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(help=(
        "GDS threads; 1 is deterministic (OpenGDS caps at 4)."
    ))] = 1,
    reseed: Annotated[bool, typer.Option(help=(
        "Seed Louvain from the stored communities when new images arrived (stable ids)."
    ))] = True,
) -> None:
    """Run GDS Louvain, write Image.community and materialise Community/LINKED statistics."""
    from cxrneo.db.communities import MAX_CONCURRENCY, detect
    from cxrneo.db.connection import Database
    from cxrneo.errors import ConfigError
    from cxrneo.text import console as make_console

    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be 1 to {MAX_CONCURRENCY} (OpenGDS's limit), got {concurrency}")
    with Database.connect(settings(ctx)) as db:
        r = detect(db, concurrency=concurrency, seed_from_existing=reseed)
    console = make_console()
    if r.recovered:
        console.print("finished the community run that was interrupted before")
    if r.stale_projections:
        console.print(f"dropped {r.stale_projections} GDS projection(s) left by killed runs")
    console.print(f"{r.communities} communities, modularity {r.modularity:.4f} ({r.levels} levels, "
                  f"Louvain {r.louvain_seconds:.1f} s, concurrency {r.concurrency}"
                  + (", seeded" if r.seeded else "") + ")")
    console.print(f"sizes min/median/max {r.size_min}/{r.size_median:g}/{r.size_max}; "
                  f"largest {r.top_sizes}; {r.linked_pairs} linked community pairs")
    if r.changed_fraction is not None:
        console.print(f"{r.changed_fraction:.2%} of {r.old_images} previously assigned images "
                      "changed community")


# --- evaluate (owner: metrics/evaluation) -------------------------------------------------


@app.command("evaluate")
@friendly
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
        "--mean-degree", help="Derive T from this mean degree (default 50).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Cosine threshold T.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of split, T sample, random baseline, bootstrap.")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Stop when modularity stops rising.")] = False,
    no_neo4j: Annotated[bool, typer.Option(
        "--no-neo4j", help="Explicitly use in-memory networkx Louvain instead of Neo4j GDS (marked in the report).")] = False,
    image_root: Annotated[Path | None, typer.Option(
        "--image-root", help="Folder that relative image paths start from (gallery thumbnails).")] = None,
) -> None:
    """Score community, hybrid, kNN and random retrieval on a patient split (SPEC section 6).

    By default the database split is ingested into Neo4j (use an empty database) and GDS Louvain finds its communities.
    """
    from rich.progress import Progress

    from cxrneo import codes as codes_io
    from cxrneo import report
    from cxrneo.errors import ConfigError
    from cxrneo.evaluate import EvalOptions, evaluate, louvain_in_memory

    if threshold is not None and mean_degree is not None:
        raise ConfigError("give --threshold or --mean-degree, not both")
    try:
        opts = EvalOptions(
            label_sets=label_set or [], k=k, k_max=max(k, k_max), n_queries=queries, db_size=db_size,
            seed=seed, threshold=threshold, mean_degree=50.0 if mean_degree is None else mean_degree,
            strict=strict, community_backend="networkx Louvain in memory (--no-neo4j; not GDS)"
            if no_neo4j else "Neo4j GDS Louvain",
        )
    except ValueError as e:
        raise ConfigError(f"bad option: {str(e).splitlines()[-1].strip()}") from None
    data = codes_io.load(codes_file)
    total = opts.n_queries * len(opts.methods)
    with Progress(transient=True) as bar:
        task = bar.add_task("queries", total=total)
        step = lambda n: bar.advance(task, n)  # noqa: E731
        if no_neo4j:
            typer.secho("warning: --no-neo4j: communities from networkx Louvain, not Neo4j GDS", fg="yellow", err=True)
            result = evaluate(data, opts, lambda c, e, t: louvain_in_memory(c, e, t, seed), progress=step)
        else:
            from cxrneo.db.connection import Database
            from cxrneo.service import gds_communities

            with Database.connect(settings(ctx)) as db:
                result = evaluate(data, opts, gds_communities(db), progress=step)
    paths = report.write(result, out, image_root)
    typer.echo(paths["md"].read_text(encoding="utf-8"))
    typer.echo(f"report: {paths['html']}")



# --- query and serve (owner: retrieval; the logic lives in cxrneo/service.py) -------------


@app.command("query")
@friendly
def query_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A stored image id, or an image file (needs --checkpoint).")],
    k: Annotated[int, typer.Option("-k", "--top-k", help="Number of images to return.")] = 10,
    method: Annotated[Method, typer.Option(help=(
        "community (Algorithm 2), hybrid, knn (exact cosine) or diffusion (personalized PageRank)."
    ))] = (
        Method.COMMUNITY
    ),
    strict: Annotated[bool, typer.Option(help="Stop when weighted modularity stops rising (may return < k).")] = False,
    exclude_patient: Annotated[bool, typer.Option(help="Also leave out the query patient's other images.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (hits and timing) instead of a table.")] = False,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint to compute the code of an image file.")] = None,
    server: Annotated[str | None, typer.Option(help=(
        "URL of a running `cxrneo serve` (default: $CXRNEO_SERVER); without one the query runs in this process."
    ))] = None,
) -> None:
    """Retrieve the images most similar to a stored image or an image file."""
    import json
    import time

    from cxrneo.service import QueryAnswer

    t0 = time.perf_counter()
    s = settings(ctx)
    url = server or s.server
    if url:
        from cxrneo.client import Client

        token = s.api_token.get_secret_value() if s.api_token else None
        answer = QueryAnswer.model_validate(Client(url, token).query(target, k, method.value, strict, exclude_patient))
    else:
        from cxrneo.service import Searcher

        searcher = Searcher.connect(s, checkpoint)
        try:
            answer = searcher.resolve(target, k, method, strict, exclude_patient)
        finally:
            searcher.close()
    answer.total_ms = round((time.perf_counter() - t0) * 1e3, 1)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(mode="json")))
    else:
        _print_answer(answer, via=url)


def _print_answer(answer: Any, via: str | None) -> None:
    from rich.table import Table

    from cxrneo.text import console as make_console

    table = Table(title=f"{answer.method} retrieval for {answer.query}")
    for col in ("rank", "image id", "findings", "community", "gain", "cosine"):
        table.add_column(col, justify="right" if col in ("rank", "community", "gain", "cosine") else "left")
    for h in answer.hits:
        gain = "-" if h.gain is None else f"{h.gain:.6f}"
        table.add_row(str(h.rank), h.image_id + (" *" if h.fallback else ""), ", ".join(h.labels) or "No Finding",
                      str(h.community), gain, f"{h.cosine:.4f}")
    console = make_console()
    console.print(table)
    if any(h.fallback for h in answer.hits):
        console.print("* plain cosine ranking: no community of the graph reaches the query (fallback)")
    where = f"through {via}" if via else "in this process"
    console.print(f"{len(answer.hits)} image{'s' if len(answer.hits) != 1 else ''}: retrieval {answer.query_ms:.1f} ms, "
                  f"{answer.total_ms / 1e3:.2f} s in all ({where})")


@app.command("serve")
@friendly
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    checkpoint: Annotated[Path | None, typer.Option(help=(
        "Checkpoint that made the stored codes: enables image-file queries (the model stays loaded)."
    ))] = None,
    device: DeviceOpt = "auto",
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted request or upload, in MB.")] = 20.0,
    blas_threads: Annotated[int, typer.Option(help="Threads of the exact scan's matrix product.")] = 1,
) -> None:
    """Serve retrieval over HTTP (OpenAPI at /docs); follows ingests and community runs without a restart.

    Set CXRNEO_API_TOKEN to require `Authorization: Bearer <token>` on every route but /health.
    """
    import ipaddress

    import uvicorn
    from threadpoolctl import threadpool_limits

    from cxrneo.api import create_app
    from cxrneo.errors import ConfigError
    from cxrneo.service import Searcher

    s = settings(ctx)
    if not 0 < port < 65536:
        raise ConfigError(f"port must be 1-65535, got {port}")
    if blas_threads < 1:
        raise ConfigError(f"--blas-threads must be at least 1, got {blas_threads}")
    if max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    token = s.api_token.get_secret_value() if s.api_token else None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        typer.secho(f"warning: serving on {host} without CXRNEO_API_TOKEN: anyone who reaches it can query",
                    fg="yellow", err=True)
    # One BLAS thread: the batched scan runs on one core while the other serves HTTP, Python and
    # Neo4j round trips (measured on 2 cores: a batch of 8 in 114 ms instead of 169 ms; same bits).
    threadpool_limits(limits=blas_threads, user_api="blas")
    searcher = Searcher.connect(s, checkpoint, device)
    try:
        searcher.warm()
        typer.echo(f"graph open: {searcher.health().get('images')} images, generation "
                   f"{searcher.graph.meta.generation if searcher.graph.meta else '-'}")
    except Exception as e:  # not ready yet (no graph, communities pending): serve anyway, /health says why
        if not isinstance(e, CxrneoError):
            raise
        typer.secho(f"warning: {e}", fg="yellow", err=True)
    app_ = create_app(searcher, token=token, max_upload_bytes=int(max_upload_mb * (1 << 20)))
    typer.echo(f"cxrneo serving on http://{host}:{port} (OpenAPI at /docs)" + (", token required" if token else ""))
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False)
    finally:
        searcher.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
