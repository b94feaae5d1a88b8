"""`cxrneo db`: the local Neo4j + Graph Data Science server (no Docker)."""

from pathlib import Path
from typing import Annotated, Any

import typer

from cxrneo.cli.support import friendly, settings

db_app = typer.Typer(help="Run the local Neo4j + Graph Data Science server (no Docker).")
vector_app = typer.Typer(help=(
    "The optional vector index image_code, for db.index.vector.queryNodes in Neo4j Browser (cxrneo never needs it)."))
db_app.add_typer(vector_app, name="vector-index")


@db_app.command("start")
@friendly
def db_start(ctx: typer.Context) -> None:
    """Assemble (first time only, from Maven Central) and start the local Neo4j + GDS."""
    import time

    from cxrneo.cli import jobs

    t0 = time.monotonic()
    started, cfg = jobs.start_server(settings(ctx), typer.echo)
    typer.echo(f"Neo4j started in {time.monotonic() - t0:.0f} s: {cfg.bolt_address}, Browser {cfg.http_address}"
               if started else f"Neo4j is already running: {cfg.bolt_address}")


@db_app.command("stop")
@friendly
def db_stop(ctx: typer.Context) -> None:
    """Stop the local Neo4j cleanly (SIGTERM, wait; no JVM left behind)."""
    from cxrneo.cli import jobs

    typer.echo("Neo4j stopped" if jobs.stop_server(settings(ctx)) else "Neo4j was not running")


@db_app.command("reset")
@friendly
def db_reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete every node and relationship.")] = False,
) -> None:
    """Delete every image, edge and community from the database (schema and indexes stay)."""
    from cxrneo.cli import jobs
    from cxrneo.errors import ConfigError

    if not yes:
        raise ConfigError("db reset deletes the whole graph: add --yes to confirm")
    jobs.reset_graph(settings(ctx))  # under the writer lease: refused while an ingest or community run writes
    typer.echo("graph emptied")


@db_app.command("dump")
@friendly
def db_dump(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The backup file to write (new); its record goes beside it as FILE.json.")],
) -> None:
    """Back up the local server's database (neo4j-admin dump; the server is stopped and started again)."""
    from cxrneo.cli import jobs

    typer.echo(f"dumped {_held(jobs.dump_graph(settings(ctx), out))} to {out}")


@db_app.command("load")
@friendly
def db_load(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="A file written by `cxrneo db dump` (with its FILE.json beside it).")],
) -> None:
    """Restore a backup in place of the local server's database: the file is checked against the dump's
    record first, and the previous database is kept until the loaded one matches the record."""
    from cxrneo.cli import jobs

    loaded = jobs.load_graph(settings(ctx), src, lambda line: typer.echo(line, err=True))
    typer.echo(f"loaded {src}: {_held(loaded)}, as at the dump")


def _held(m: Any) -> str:
    if m.meta is None:
        return "an empty graph"
    return (f"{m.meta.nodes} images, {m.meta.edges} edges, generation {m.meta.generation}"
            + (f", {len(m.probes)} probe queries" if m.probes else ""))


@db_app.command("status")
@friendly
def db_status(ctx: typer.Context) -> None:
    """Print the Neo4j and GDS versions and the Bolt and HTTP addresses."""
    from cxrneo.cli import jobs

    s = settings(ctx)
    st = jobs.status(s)
    typer.echo(f"local server: {'running, pid ' + str(st.pid) if st.pid else 'not running'} ({st.home})")
    if not st.listening:
        typer.echo(f"nothing listens on {s.neo4j_uri}")  # no password needed to say so
    elif st.versions is None:
        typer.echo(f"something listens on {s.neo4j_uri}; set CXRNEO_NEO4J_PASSWORD to see its versions")
    else:
        v = st.versions
        typer.echo(f"Neo4j {v['neo4j']} ({v['edition']}), Graph Data Science {v['gds']}")
        typer.echo(f"Bolt {s.neo4j_uri}   HTTP {st.http_address}   database {s.neo4j_database}")


@vector_app.command("build")
@friendly
def vector_build(ctx: typer.Context) -> None:
    """Build the vector index over the stored codes in one go; returns once it is online (minutes at
    100,000 images), and every later ingest keeps it up to date."""
    from cxrneo.cli import jobs

    built, seconds = jobs.vector_index(settings(ctx), build=True)
    typer.echo(f"vector index image_code built and online in {seconds:.1f} s" if built
               else "vector index image_code is already online")


@vector_app.command("drop")
@friendly
def vector_drop(ctx: typer.Context) -> None:
    """Drop the vector index (its disk space and its upkeep at each ingest go with it)."""
    from cxrneo.cli import jobs

    dropped, _ = jobs.vector_index(settings(ctx), build=False)
    typer.echo("vector index image_code dropped" if dropped else "there is no vector index image_code")
