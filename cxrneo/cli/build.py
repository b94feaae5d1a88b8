"""The build commands (train, embed, synth, ingest, edges, merge, communities): thin, one library call each."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cxrneo.cli.support import DeviceOpt, friendly, settings
from cxrneo.errors import ConfigError, InputError

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
WorkersOpt = Annotated[int, typer.Option(help=(
    "Image-decoding worker processes (0 = decode in the main process)."
))]


@friendly
def train_cmd(
    labels: LabelsOpt,
    images: ImagesOpt,
    fmt: FormatOpt = "nih",
    label_set: Annotated[str, typer.Option(help=(
        "nih (13), nih-u (9), chexpert (9) or chexpert-u (5); see docs/method.md."
    ))] = "nih",
    size: Annotated[int, typer.Option(help="Image side in pixels: 224 (LR) or 512 (HR).")] = 224,
    epochs: Annotated[int, typer.Option(help="Training epochs (the paper: 20).")] = 20,
    batch_size: Annotated[int, typer.Option(help="Images per batch (the paper: 32).")] = 32,
    lr: Annotated[float | None, typer.Option(help="Initial learning rate (default 1e-3 for NIH, 1e-4 for CheXpert).")] = None,
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
    arch: Annotated[str, typer.Option(hidden=True, help="densenet121, or tiny (tests only).")] = "densenet121",
    schedule: Annotated[str, typer.Option(help=(
        "Learning-rate schedule: cosine (decay to lr/100 over --epochs) or plateau (the paper's: x0.1 when the "
        "validation AUC stops rising)."))] = "cosine",
    augment: Annotated[bool, typer.Option(help=(
        "Small rotations, shifts, scaling, contrast and brightness changes (--no-augment: flips only, as the paper)."
    ))] = True,
    early_stop: Annotated[int, typer.Option(help="Stop after N epochs without a better validation AUC (0: never).")] = 0,
) -> None:
    """Train DenseNet-121 on labelled chest X-rays (PNG, JPEG, DICOM); keeps the best mean validation AUC checkpoint."""
    from cxrneo.cli.text import console
    from cxrneo.embed.train import make_config, train

    cfg = make_config(format=fmt, labels=labels, images=images, label_set=label_set, size=size,
                      epochs=epochs, batch_size=batch_size, lr=lr, out=out, weights=weights, seed=seed,
                      val_fraction=val_fraction, max_images=max_images, device=device, workers=workers, arch=arch,
                      schedule=schedule, augment=augment, early_stop=early_stop)
    train(cfg, resume=resume, console=console())


@friendly
def embed_cmd(
    ctx: typer.Context,
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file (best.pt) or the folder `cxrneo train --out` wrote.")],
    labels: Annotated[Path | None, typer.Option("--labels", help=(
        "The label file (.csv or .csv.gz); with --dicomweb optional: columns id (SOPInstanceUID or accession "
        "number) and labels."))] = None,
    images: Annotated[Path | None, typer.Option("--images", help=(
        "Folder the image paths of the label file are relative to (PNG, JPEG or DICOM files); with "
        "--dicomweb, where the retrieved instances are kept (default: beside --out)."))] = None,
    fmt: FormatOpt = "nih",
    label_set: Annotated[str | None, typer.Option(help="Label set (default: the checkpoint's).")] = None,
    out: Annotated[Path, typer.Option(help=(
        "Codes file to write (.npz, N x 1024 float32 with image records)."
    ))] = Path("codes.npz"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    workers: WorkersOpt = 2,
    max_images: MaxImagesOpt = None,
    device: DeviceOpt = "auto",
    shard: Annotated[str | None, typer.Option(help=(
        "Embed only shard i/n of the table's rows (e.g. 0/4, one per GPU or machine); "
        "`cxrneo merge` combines the parts into the unsharded codes file."
    ))] = None,
    dicomweb: Annotated[str | None, typer.Option(help=(
        "A PACS's DICOMweb root (e.g. http://pacs:8042/dicom-web): embed its images instead of a label "
        "file's (read only; CXRNEO_PACS_USER / CXRNEO_PACS_PASSWORD)."))] = None,
    modality: Annotated[str, typer.Option(help="With --dicomweb: the modalities to embed.")] = "CR,DX",
    since: Annotated[str | None, typer.Option(help="With --dicomweb: studies from this date (YYYYMMDD).")] = None,
    ca_bundle: Annotated[Path | None, typer.Option(help="With --dicomweb: a CA bundle to trust (a hospital CA).")] = None,
) -> None:
    """Write the 1024-d code of every readable image (PNG, JPEG or DICOM, or a PACS's over DICOMweb);
    resumes when interrupted, lists unreadable images."""
    from cxrneo import labels as labelsets
    from cxrneo.archive.shards import parse_shard
    from cxrneo.cli.text import console as make_console
    from cxrneo.cli.text import plural
    from cxrneo.embed import checkpoint as ckpt_file
    from cxrneo.embed.extract import embed
    from cxrneo.tables.table import read_table

    part = parse_shard(shard) if shard is not None else None  # refused before the checkpoint is read
    name = label_set or str(ckpt_file.load(checkpoint)["label_set"])
    if dicomweb is not None:
        from cxrneo.pacs.dicomweb import DicomWeb, modalities
        from cxrneo.tables.pacs import pacs_table

        client = DicomWeb.from_settings(dicomweb, settings(ctx), ca_bundle)
        folder = images or out.with_name(out.stem + "-dicom")
        found = pacs_table(client, folder, labelsets.get(name), modalities(modality), since, max_images, labels=labels)
        table = found.table
        if found.not_images:
            typer.echo(f"{found.not_images} object(s) of those series are not single-frame images (reports, "
                       "presentation states, multi-frame): skipped")
    elif labels is None or images is None:
        raise InputError("give --labels and --images (a label file and its image folder), or --dicomweb URL")
    else:
        table = read_table(fmt, labels, images, labelsets.get(name), max_images)
    console = make_console()
    result = embed(checkpoint, table, out, batch_size=batch_size, workers=workers, device=device,
                   console=console, shard=part)
    console.print(f"{plural(result.written, 'code')} written to {result.out}"
                  + (f" (part {shard}: combine all parts with `cxrneo merge`)" if part else ""))
    if result.skipped_report is not None:
        console.print(f"[yellow]{plural(result.skipped, 'unreadable image')} skipped, "
                      f"listed in {result.skipped_report}")


@friendly
def watch_cmd(
    ctx: typer.Context,
    dicomweb: Annotated[str, typer.Option(help="The PACS's DICOMweb root (read only; CXRNEO_PACS_USER / _PASSWORD).")],
    checkpoint: Annotated[Path, typer.Option(help="The checkpoint whose codes the graph holds.")],
    codes: Annotated[Path, typer.Option(help="The archive's codes file: new images are appended to it.")],
    images: Annotated[Path | None, typer.Option(help=(
        "Where the retrieved instances are kept (default: beside --codes); `serve --images` shows them."))] = None,
    modality: Annotated[str, typer.Option(help="The modalities to follow.")] = "CR,DX",
    since: Annotated[str | None, typer.Option(help="Only studies from this date (YYYYMMDD).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 300.0,
    once: Annotated[bool, typer.Option(help="Poll once and exit.")] = False,
    mean_degree: Annotated[float | None, typer.Option(help="T of a new graph from this mean degree.")] = None,
    device: DeviceOpt = "auto",
    ca_bundle: Annotated[Path | None, typer.Option(help="A CA bundle to trust (a hospital CA).")] = None,
) -> None:
    """Keep the graph up with a PACS: poll it, embed new images, ingest them and update the communities
    (seeded), under the one-writer lease; stopping and restarting loses and doubles nothing. One watch
    per codes file: a second one is refused at once."""
    import time

    from cxrneo.archive.exclusive import watching
    from cxrneo.cli import jobs
    from cxrneo.pacs.dicomweb import DicomWeb, modalities

    s = settings(ctx)
    if interval <= 0:
        raise InputError(f"--interval must be positive, got {interval}")
    client = DicomWeb.from_settings(dicomweb, s, ca_bundle)
    folder = images or codes.with_name(codes.stem + "-dicom")
    with watching(codes):  # one watch per codes file; a second is refused at once
        while True:
            r = jobs.watch_once(s, client, checkpoint, codes, folder, modalities(modality), since, mean_degree, device)
            typer.echo(f"{time.strftime('%H:%M:%S')} {r.instances} instances in the PACS, {r.new} new; the graph "
                       f"holds {r.images} images, generation {r.generation}"
                       + ("; communities updated" if r.communities_run else ""))
            if once:
                return
            time.sleep(interval)


# --- synth, ingest, communities (owner: graph) --------------------------------------------

EdgeDeviceOpt = Annotated[str, typer.Option(help=(
    "Where the edges are computed: auto (CUDA if present), cpu (FAISS) or cuda (same edges)."))]


@friendly
def synth_cmd(
    labels: Annotated[Path, typer.Option(help="NIH label table (Data_Entry_2017*.csv or .csv.gz).")],
    out: Annotated[Path, typer.Option(help="Codes file to write (.npz).")] = Path("codes.npz"),
    n: Annotated[int | None, typer.Option(help="Keep the first N rows (default: all).")] = None,
    noise: Annotated[float | None, typer.Option(help=(
        "Noise norm relative to one label direction (default 1; not with --like)."))] = None,
    like: Annotated[Path | None, typer.Option(help=(
        "A codes file (`cxrneo embed`) to imitate: each code is that file's mean unit code, plus a shift per "
        "finding and per view fitted on its labels (or on this table's rows of its ids), plus Gaussian noise "
        "with its residual covariance, so the codes' spectrum is the real one's."))] = None,
    patient_share: Annotated[float, typer.Option(help=(
        "With --like: the share of the noise common to one patient's images (0 to <1)."))] = 0.3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write label-faithful synthetic codes for a label table: labels + patient + view + isotropic noise,
    or with --like the mean, label shifts and covariance of a real codes file (docs/scale.md)."""
    from cxrneo.archive.codes import load, save
    from cxrneo.archive.synthetic import from_table, like_table

    if like is None:
        codes = from_table(labels, n=n, noise=1.0 if noise is None else noise, seed=seed)
    elif noise is not None:
        raise ConfigError("--noise does not apply with --like (the noise is the codes file's own covariance)")
    else:
        codes = like_table(labels, load(like), n=n, patient_share=patient_share, seed=seed)
    save(out, codes)
    typer.echo(f"{len(codes)} synthetic codes written to {out}" + (f" (like {like})" if like else ""))


@friendly
def ingest_cmd(
    ctx: typer.Context,
    codes_file: Annotated[Path, typer.Argument(help=(
        "Codes file from `cxrneo embed` or `cxrneo synth`; to add images, the "
        "combined file (stored + new)."
    ))],
    threshold: Annotated[float | None, typer.Option(help="Cosine threshold T (default: the stored one).")] = None,
    mean_degree: Annotated[float | None, typer.Option(help="Derive T from this target mean degree (new graph only).")] = None,
    batch: Annotated[int, typer.Option(help="Edges per transaction (at least 1).")] = 50_000,
    writers: Annotated[int, typer.Option(help="Write transactions at once (1-8).")] = 2,
    bulk: Annotated[bool, typer.Option("--bulk", help=(
        "New graph only, local server only: offline neo4j-admin import (stops and restarts the server)."
    ))] = False,
    edges: Annotated[Path | None, typer.Option(help=(
        "A whole edges file of these codes (`cxrneo edges`, or `cxrneo merge` of its shards) instead of computing them."
    ))] = None,
    device: EdgeDeviceOpt = "auto",
    whiten: Annotated[str | None, typer.Option(help=(
        "New graph: store codes whitened by a transform learned from them (auto: dimension and shrinkage "
        "chosen by findings; or a dimension) or none. An existing graph keeps its own."))] = None,
    whiten_shrink: Annotated[float, typer.Option(help="Shrinkage of the small eigenvalues, with --whiten N.")] = 0.0,
    vector_index: Annotated[bool, typer.Option("--vector-index", help=(
        "Also build the vector index image_code (for db.index.vector.queryNodes in Neo4j Browser; cxrneo "
        "never needs it) before returning; a graph that has it keeps it without this flag."))] = False,
) -> None:
    """Load images and SIMILAR edges into Neo4j (idempotent, resumable, counts verified)."""
    from cxrneo.cli import jobs
    from cxrneo.cli.text import console as make_console
    from cxrneo.db.ingest import IngestReport

    console = make_console()
    with _bars(console) as progress:
        stats, rep = jobs.ingest_file(settings(ctx), codes_file, threshold, mean_degree, batch, bulk, progress,
                                      edges_file=edges, device=device, writers=writers, whiten=whiten,
                                      whiten_shrink=whiten_shrink, vector_index=vector_index)
    console.print(f"T = {stats.threshold:.6f}: {stats.nodes} images, {stats.edges} edges, mean degree "
                  f"{stats.mean_degree:.2f}, max degree {stats.max_degree}, {stats.isolated} isolated")
    if not isinstance(rep, IngestReport):  # the bulk import's report
        console.print(f"bulk import in {rep.load_seconds:.1f} s ({rep.rel_per_s:,.0f} rel/s): CSV {rep.csv_seconds:.1f} s, "
                      f"import {rep.import_seconds:.1f} s, restart {rep.restart_seconds:.1f} s, schema + checks "
                      f"{rep.schema_seconds:.1f} s; generation {rep.generation}")
    else:
        console.print(f"codes: {rep.codes_transform}")
        console.print(f"wrote {rep.nodes_written} images, {rep.edges_created + rep.edges_merged} edges "
                      f"({rep.sources_skipped} sources already complete) in {rep.seconds:.1f} s "
                      f"({rep.rel_per_s:,.0f} rel/s); generation {rep.generation}"
                      + ("" if rep.changed else " (nothing changed)"))
        if rep.vector_index != "none":
            console.print(f"vector index image_code: built and online in {rep.index_seconds:.1f} s"
                          if rep.vector_index == "built" else "vector index image_code: kept up to date")


@friendly
def edges_cmd(
    codes_file: Annotated[Path, typer.Argument(help="Codes file (the whole archive: every shard needs all codes).")],
    out: Annotated[Path, typer.Option(help="Edges file to write (.npz).")],
    threshold: Annotated[float | None, typer.Option(help="Cosine threshold T (give the same T to every shard).")] = None,
    mean_degree: Annotated[float | None, typer.Option(help=(
        "Derive T from this target mean degree (deterministic: every shard derives the same T)."))] = None,
    shard: Annotated[str | None, typer.Option(help=(
        "Shard i/n: a block of source rows holding about 1/n of all pairs."))] = None,
    rows: Annotated[str | None, typer.Option(help="Source rows a:b instead of a shard (pairs i < j with a <= i < b).")] = None,
    device: EdgeDeviceOpt = "auto",
) -> None:
    """Compute the SIMILAR edges of all codes, or of one shard of source rows, into an edges file (no database)."""
    from cxrneo.cli import jobs

    part, stats = jobs.edges_of_file(codes_file, out, threshold, mean_degree, shard, rows, device)
    a, b = part.rows
    typer.echo(f"T = {part.threshold:.6f}: {len(part.edges)} edges of source rows {a}:{b} of {part.n} written to {out}"
               + ("" if part.whole else " (a part: combine all parts with `cxrneo merge`)"))
    if part.whole:
        typer.echo(f"mean degree {stats.mean_degree:.2f}, max degree {stats.max_degree}, {stats.isolated} isolated")


@friendly
def merge_cmd(
    parts: Annotated[list[Path], typer.Argument(help=(
        "The parts: codes files of `embed --shard` or edges files of `edges --shard/--rows`."))],
    out: Annotated[Path, typer.Option(help="The merged file to write.")],
) -> None:
    """Combine the parts of a sharded `cxrneo embed` or `cxrneo edges` into one file, verified: no row lost or doubled."""
    from cxrneo.cli import jobs
    from cxrneo.cli.text import plural

    r = jobs.merge_files(parts, out)
    what = "code" if r.kind == "codes" else "edge"
    typer.echo(f"{plural(r.parts, 'part')} of {r.rows} rows merged: {plural(r.written, what)} written to {out}")
    if r.skipped_report is not None:
        typer.echo(f"{plural(r.rows - r.written, 'unreadable image')} skipped, listed in {r.skipped_report}")


@contextmanager
def _bars(console: Any) -> Iterator[Callable[[str, int, int], None]]:
    """A progress(phase, done, total) callback drawn as one rich bar per phase."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, Any] = {}

        def show(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield show


@friendly
def communities_cmd(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(help="GDS threads; 1 is deterministic (OpenGDS caps at 4).")] = 1,
    reseed: Annotated[bool, typer.Option(help=(
        "Seed Louvain from the stored communities when new images arrived (stable ids)."
    ))] = True,
) -> None:
    """Run GDS Louvain, write Image.community and materialise Community/LINKED statistics."""
    from cxrneo.cli import jobs
    from cxrneo.cli.text import console as make_console

    r = jobs.detect_communities(settings(ctx), concurrency, reseed)
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
