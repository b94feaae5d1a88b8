"""The cxrneo command line: thin Typer commands, one library call each."""

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cxrneo.errors import CxrneoError
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


@app.callback()
def main(ctx: typer.Context) -> None:
    """Settings come from CXRNEO_* environment variables (see README.md)."""
    try:
        ctx.obj = Settings()
    except Exception as e:  # pydantic's ValidationError: one line, not a traceback
        typer.secho(f"error: bad CXRNEO_* setting: {e}".splitlines()[0], fg="red", err=True)
        raise typer.Exit(1) from None


def _server_config(ctx: typer.Context) -> "ServerConfig":
    from cxrneo.db.server import ServerConfig

    s = settings(ctx)
    return ServerConfig.from_uri(s.data_dir, s.neo4j_uri, s.http_port)


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
    with Database.connect(s) as db:
        row = db.read("show_versions")[0]
    typer.echo(f"Neo4j {row['neo4j']} ({row['edition']}), Graph Data Science {row['gds']}")
    typer.echo(f"Bolt {s.neo4j_uri}   HTTP {cfg.http_address}   database {s.neo4j_database}")



# --- evaluate (owner: metrics/evaluation) -------------------------------------------------


def _gds_communities(db: Any) -> Any:
    """communities_fn for cxrneo.evaluate: ingest the database split, GDS Louvain, read back."""
    import numpy as np

    from cxrneo.db.communities import assignments, detect
    from cxrneo.db.ingest import ingest
    from cxrneo.errors import DatabaseError

    def communities(db_codes: Any, edges: Any, threshold: float) -> Any:
        ingest(db, db_codes, edges, threshold)
        detect(db, concurrency=1)
        found = assignments(db)
        missing = [i for i in db_codes.ids if i not in found]
        if missing:
            raise DatabaseError(f"{len(missing)} database images got no community (e.g. {missing[0]})")
        return np.array([found[i] for i in db_codes.ids], dtype=np.int64)

    return communities


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

            with Database.connect(settings(ctx)) as db:
                result = evaluate(data, opts, _gds_communities(db), progress=step)
    paths = report.write(result, out, image_root)
    typer.echo(paths["md"].read_text(encoding="utf-8"))
    typer.echo(f"report: {paths['html']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
