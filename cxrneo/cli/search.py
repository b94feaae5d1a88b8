"""`cxrneo query` and `cxrneo serve`: thin commands over cxrneo/service/searcher.py and cxrneo/api/startup.py."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxrneo.cli.support import DeviceOpt, filter_flags, friendly, settings
from cxrneo.errors import InputError
from cxrneo.retrieval.method import Method

if TYPE_CHECKING:
    from cxrneo.filters import QueryFilter


@friendly
@filter_flags()
def query_cmd(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(help=(
        "A stored image id, or an image file (needs --checkpoint); several: more like these (their mean)."),
        metavar="TARGET...")],
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
    where: "QueryFilter | None" = None,  # the filter flags (cxrneo.filters.FIELDS)
    concept: Annotated[list[str] | None, typer.Option("--concept", help=(
        "A finding slider, NAME=STEP with STEP from -1 to 1: more (or less) of that finding "
        "(repeatable; needs --checkpoint in this process, or a service started with one)."))] = None,
    unlike: Annotated[list[str] | None, typer.Option("--not", help=(
        "A stored image the answer should be unlike (repeatable; Rocchio, left out of the answer)."))] = None,
    region: Annotated[str | None, typer.Option("--region", help=(
        "Refine by region: x0,y0,x1,y1 in fractions of the image's width and height (one target; a stored "
        "id needs --checkpoint and --images in this process)."))] = None,
    images: Annotated[Path | None, typer.Option(help=(
        "Folder of the archived image files (a region of a stored image, in this process)."))] = None,
) -> None:
    """Retrieve the images most similar to a stored image or an image file; the filter flags narrow
    the search to the images that pass them (exactly K of those, when K pass); --region asks about
    the part of the film inside a box."""
    import json
    import time

    from cxrneo.service.request import QueryOptions, concepts_of, parse
    from cxrneo.service.searcher import QueryAnswer
    from cxrneo.subregion import parse_box

    t0 = time.perf_counter()
    try:
        box = None if region is None else list(parse_box(region))
    except ValueError as e:
        raise InputError(f"--region: {e}") from None
    if box is not None and len(targets) != 1:
        raise InputError("--region needs one target (a stored id or an image file)")
    options = parse(QueryOptions, {"k": k, "method": method, "strict": strict, "exclude_patient": exclude_patient,
                                   "filter": where, "not_ids": unlike or [], "concepts": concepts_of(concept or []),
                                   "region": box})
    s = settings(ctx)
    url = server or s.server
    if url:
        from cxrneo.service.client import Client

        answer = QueryAnswer.model_validate(Client(url, s.credential()).query(targets, options))
    else:
        from cxrneo.service.searcher import Searcher

        searcher = Searcher.connect(s, checkpoint, images=images)
        try:
            answer = searcher.resolve(targets, options)
        finally:
            searcher.close()
    answer.total_ms = round((time.perf_counter() - t0) * 1e3, 1)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(mode="json")))
    else:
        _print_answer(answer, via=url)


@friendly
def explain_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="An image file, or a stored image id (with --images).")],
    hit: Annotated[str, typer.Argument(help="Another image file or stored image id.")],
    checkpoint: Annotated[Path, typer.Option(help="The checkpoint whose codes to explain (of the graph's codes).")],
    out: Annotated[Path, typer.Option("--out", help="The PNG to write: both images with their maps.")] = Path("pair.png"),
    images: Annotated[Path | None, typer.Option(help="Folder of the archived image files (for stored ids).")] = None,
    size: Annotated[int, typer.Option(help="Side of each drawn image in pixels (64-1024).")] = 320,
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Also print the cosine and both grids as JSON.")] = False,
) -> None:
    """Show where two X-rays are alike: each image's map of per-cell contributions to their cosine
    (the two maps each sum to it exactly), drawn over the images, one forward pass."""
    import json

    from cxrneo.embed.images import read_grey
    from cxrneo.service.overlay import pair_png
    from cxrneo.service.pixels import check_size

    check_size(size)
    if Path(query).is_file() and Path(hit).is_file():  # two files: no database needed
        from cxrneo.embed.encoder import Encoder

        maps, qpath, hpath = Encoder(checkpoint, device).explain(Path(query), Path(hit)), Path(query), Path(hit)
    else:
        from cxrneo.service.searcher import Searcher

        searcher = Searcher.connect(settings(ctx), checkpoint, device, images)
        try:
            maps, qpath, hpath = searcher.explain(query, hit, files=True)
        finally:
            searcher.close()
    png = pair_png(read_grey(qpath, size), read_grey(hpath, size), maps, (Path(query).name, Path(hit).name))
    try:
        out.write_bytes(png)
    except OSError as e:
        raise InputError(f"{out}: cannot write ({e.strerror})") from None
    if as_json:
        typer.echo(json.dumps({"cosine": maps.cosine, "query_map": maps.query.tolist(), "hit_map": maps.hit.tolist()}))
    typer.echo(f"cosine {maps.cosine:.4f} (each map sums to it: {maps.query.sum():.4f}, {maps.hit.sum():.4f}); "
               f"maps {maps.query.shape[0]}x{maps.query.shape[1]}; wrote {out}")


@friendly
def keep_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The query image: a stored id of an image from the PACS.", metavar="QUERY")],
    hits: Annotated[list[str], typer.Argument(help="Stored ids of the hits to keep with it (images from the PACS).",
                                              metavar="HIT...")],
    dicomweb: Annotated[str, typer.Option(help=(
        "The PACS's DICOMweb root to store in (CXRNEO_PACS_USER / CXRNEO_PACS_PASSWORD)."))],
    title: Annotated[str, typer.Option(help=(
        "The document title (DICOM CID 7010): of-interest, for-teaching, for-conference, for-research, "
        "for-peer-review, for-referring-provider or best-in-set."))] = "of-interest",
    note: Annotated[str, typer.Option(help="Free text kept with the cases (at most 1000 characters).")] = "",
    ca_bundle: Annotated[Path | None, typer.Option(help="A CA bundle to trust (a hospital CA).")] = None,
) -> None:
    """Keep similar cases in the PACS: a DICOM key object (Key Object Selection document) in the query's
    study, in a series of its own, referencing the query and the hits, with the title, the note and you
    (your login name) as its observer. Keeping the same cases again stores nothing new."""
    import getpass

    from cxrneo.cli import jobs
    from cxrneo.pacs.keyobject import KeepRequest
    from cxrneo.service.request import parse

    req = parse(KeepRequest, {"query": query, "hits": hits, "title": title, "note": note})
    kept = jobs.keep_cases(settings(ctx), dicomweb, ca_bundle, req, getpass.getuser())
    done = "kept" if kept.stored else "already kept (nothing stored again)"
    typer.echo(f"{done}: {kept.references} images as \"{kept.title}\" in study {kept.study_uid}, series "
               f"{kept.series_uid}, key object {kept.sop_uid}")


def _print_answer(answer: Any, via: str | None) -> None:
    from rich.table import Table

    from cxrneo.cli.text import console as make_console
    from cxrneo.labels import NO_FINDING

    table = Table(title=f"{answer.method} retrieval for {answer.query}")
    for col in ("rank", "image id", "findings", "community", "gain", "cosine", "closer than"):
        table.add_column(col, justify="left" if col in ("image id", "findings") else "right")
    for h in answer.hits:
        gain = "-" if h.gain is None else f"{h.gain:.6f}"
        table.add_row(str(h.rank), h.image_id + (" *" if h.fallback else ""), ", ".join(h.labels) or NO_FINDING,
                      str(h.community), gain, f"{h.cosine:.4f}",
                      "-" if h.closer_than is None else f"{h.closer_than:.1%}")
    console = make_console()
    if answer.region is not None:
        console.print("region query: the box " + ", ".join(f"{v:g}" for v in answer.region)
                      + " (fractions of width and height)")
    if answer.duplicate_of:
        console.print(f"{answer.query} is archived image {answer.duplicate_of}: answered as that image")
    if not answer.familiar:
        console.print(f"warning: {answer.unfamiliar}; these results may mean nothing")
    console.print(table)
    console.print("closer than: the share of the archive less alike to the query than the hit")
    if any(h.fallback for h in answer.hits):
        console.print("* plain cosine ranking: no community of the graph reaches the query (fallback)")
    if answer.passing is not None:
        console.print(f"filter: {answer.passing} archived image{'s' if answer.passing != 1 else ''} pass")
    where = f"through {via}" if via else "in this process"
    console.print(f"{len(answer.hits)} image{'s' if len(answer.hits) != 1 else ''}: retrieval {answer.query_ms:.1f} ms, "
                  f"{answer.total_ms / 1e3:.2f} s in all ({where})")


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
    blas_threads: Annotated[int, typer.Option(help="Threads of a float32 first pass over the codes (BLAS).")] = 1,
    images: Annotated[Path | None, typer.Option(help=(
        "Folder of the archived image files: the viewer shows them (only files inside it are ever read)."
    ))] = None,
    browser_url: Annotated[str | None, typer.Option(help=(
        "Neo4j Browser's address for the viewer's links (default: the local server's when Neo4j is on "
        "loopback; '' for none)."
    ))] = None,
    viewer_url: Annotated[str | None, typer.Option(help=(
        "A study viewer's address for images from a PACS, with {StudyInstanceUID} (e.g. an OHIF or Orthanc "
        "Explorer 2 URL): each such hit links to its study."))] = None,
    dicomweb: Annotated[str | None, typer.Option(help=(
        "The PACS's DICOMweb root: images from it whose files are not under --images are retrieved over "
        "WADO-RS to be shown (read only unless --pacs-write; CXRNEO_PACS_USER / CXRNEO_PACS_PASSWORD)."))] = None,
    ca_bundle: Annotated[Path | None, typer.Option(help="With --dicomweb: a CA bundle to trust.")] = None,
    pacs_cache_mb: Annotated[int, typer.Option(help=(
        "With --dicomweb: MB of retrieved instances kept (least recently shown removed first)."))] = 2048,
    pacs_write: Annotated[bool, typer.Option("--pacs-write", help=(
        "With --dicomweb: let users whose role may keep (curator, admin) store similar cases in the PACS as "
        "DICOM key objects (POST /keep, the page's Save to PACS); without it the PACS is only read."))] = False,
    heavy_workers: Annotated[int, typer.Option(help=(
        "Threads for heavy work (uploads decoded and embedded, similarity maps, renders)."))] = 2,
    heavy_queue: Annotated[int, typer.Option(help=(
        "Heavy jobs that may wait for a thread; past that a request is answered 503 with Retry-After."))] = 8,
    deadline: Annotated[float, typer.Option(help=(
        "Seconds a request may take; past it the client gets a one-line 503 and the work is abandoned."))] = 30.0,
    allowed_host: Annotated[list[str] | None, typer.Option(help=(
        "A Host name clients use to reach the service (repeatable); others get 400. Always allowed: the "
        "loopback names and the bind address (bound to 0.0.0.0: this machine's names)."))] = None,
    audit: Annotated[Path | None, typer.Option(help=(
        "The audit trail (JSON lines, hash-chained; default: audit/audit.jsonl under CXRNEO_DATA_DIR)."))] = None,
    audit_syslog: Annotated[str | None, typer.Option(help=(
        "Also send each audit entry to syslog (RFC 5424): udp://host:port or tcp://host:port."))] = None,
    oidc_issuer: Annotated[str | None, typer.Option(help=(
        "Single sign-on: accept bearer JWTs of this OpenID Connect issuer (its keys are fetched and cached)."))] = None,
    oidc_audience: Annotated[str | None, typer.Option(help="The audience (aud) those tokens must name.")] = None,
    oidc_role_claim: Annotated[str, typer.Option(help=(
        "The claim naming the cxrneo role (monitor, viewer, curator, admin); dotted for nested, e.g. realm_access.roles."
    ))] = "roles",
    tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (chain).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).")] = None,
    log_format: Annotated[str, typer.Option(help=(
        "text: warnings and errors as plain lines (no line per request); json: one JSON line per request "
        "(time, request id, route template, method, status, ms, retrieval method, user; never a patient, "
        "image or file name) and the warnings and errors as JSON lines."))] = "text",
    log_file: Annotated[Path | None, typer.Option(help="With --log-format json: append the log to this file "
                                                       "(owner-only) instead of stderr.")] = None,
) -> None:
    """Serve retrieval over HTTP: the viewer at /, the API with OpenAPI at /docs; follows ingests and
    community runs without a restart.

    Every route but the page and /health needs `Authorization: Bearer <key>`: a user's API key
    (`cxrneo users add`), CXRNEO_API_TOKEN (an admin key), or a single sign-on token (--oidc-issuer).
    With none set up it serves loopback only. Every read of patient data is recorded in the audit trail.
    GET /metrics is for Prometheus (a key of the monitor role: `cxrneo users add prometheus --role monitor`).
    """
    from cxrneo.api.startup import ServeOptions, serve

    opts = ServeOptions(host=host, port=port, checkpoint=checkpoint, device=device, max_upload_mb=max_upload_mb,
                        blas_threads=blas_threads, images=images, browser_url=browser_url, viewer_url=viewer_url,
                        dicomweb=dicomweb, ca_bundle=ca_bundle, heavy_workers=heavy_workers, heavy_queue=heavy_queue,
                        deadline=deadline, allowed_hosts=allowed_host or [], audit=audit, audit_syslog=audit_syslog,
                        oidc_issuer=oidc_issuer, oidc_audience=oidc_audience, oidc_role_claim=oidc_role_claim,
                        tls_cert=tls_cert, tls_key=tls_key, pacs_cache_mb=pacs_cache_mb, log_format=log_format,
                        log_file=log_file, pacs_write=pacs_write)
    serve(settings(ctx), opts, say=typer.echo, warn=lambda m: typer.secho(f"warning: {m}", fg="yellow", err=True))
