"""Training as docs/method.md section 2 (Eq. 1 weighted BCE, Adam, best mean validation AUC kept), with a recipe for
small archives by default: cosine learning-rate decay and chest X-ray augmentation (docs/method.md). The
paper's recipe (plateau decay, flips only) is `--schedule plateau --no-augment`."""

import json
import math
import random
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.table import Table as RichTable

from cxrneo import labels as lsets
from cxrneo.cli.text import plural
from cxrneo.embed import auc, checkpoint, distributed, runtime, splits
from cxrneo.embed.augment import augment
from cxrneo.embed.data import loader
from cxrneo.embed.distributed import World
from cxrneo.embed.model import CxrNet, load_weights
from cxrneo.errors import ConfigError, InputError
from cxrneo.tables.table import Table, read_table


class TrainConfig(BaseModel):
    """Everything that determines a training run; stored resolved in the checkpoint."""

    format: Literal["nih", "chexpert", "csv"] = "nih"
    labels: Path
    images: Path
    label_set: str = "nih"
    size: int = Field(224, ge=16)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    out: Path = Path("checkpoints")
    weights: Path | None = None
    seed: int = 0
    val_fraction: float = 0.1
    max_images: int | None = None
    device: str = "auto"
    workers: int = 2
    arch: str = "densenet121"
    plateau_patience: int = 1
    min_lr: float = 1e-8
    schedule: Literal["cosine", "plateau"] = "cosine"
    augment: bool = True
    early_stop: int = Field(0, ge=0)  # stop after this many epochs without a better validation AUC (0: never)


def make_config(**values: Any) -> TrainConfig:
    """A TrainConfig, or one ConfigError line naming the first bad option. The learning rate
    defaults to 1e-3 for NIH label sets and 1e-4 for CheXpert's (lr=None)."""
    if values.get("lr") is None:
        values["lr"] = 1e-4 if str(values.get("label_set", "")).startswith("chexpert") else 1e-3
    try:
        return TrainConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(
            f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}"
        ) from None


# a resumed run must read the same data the same way
_FIXED = ("format", "labels", "images", "label_set", "size", "seed", "val_fraction", "max_images", "arch", "schedule")


def loss_weights(targets: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 1 on the training rows: w+ = |n-|/N, w- = |n+|/N per label (uncertain not counted)."""
    n = known.sum(axis=0).astype(np.float64)
    n_pos = (targets * known).sum(axis=0)
    n_neg = n - n_pos
    safe = np.maximum(n, 1.0)
    return (n_neg / safe).astype(np.float32), (n_pos / safe).astype(np.float32)


def weighted_bce(
    logits: torch.Tensor, y: torch.Tensor, known: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor
) -> torch.Tensor:
    """Eq. 1 summed over labels, masked where uncertain, averaged over the batch."""
    logits = logits.float()
    log_p = torch.nn.functional.logsigmoid(logits)
    log_not_p = torch.nn.functional.logsigmoid(-logits)
    per = -(w_pos * y * log_p + w_neg * (1 - y) * log_not_p) * known
    return per.sum(dim=1).mean()


def _predict(
    model: CxrNet, table: Table, cfg: TrainConfig, dev: torch.device, bar: Any, world: World
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Sigmoid scores of every row (NaN rows for unreadable images) and the read errors; with
    several processes each scores every world.size-th row and all receive all scores."""
    mine = np.arange(len(table))[world.rank :: world.size]
    every = table.paths
    errors: list[tuple[int, str]] = []
    got: list[tuple[np.ndarray, np.ndarray]] = []
    task = bar.add_task("validate", total=len(mine), info="")
    model.eval()
    with torch.inference_mode():
        for batch in loader([every[i] for i in mine], cfg.size, cfg.batch_size, cfg.workers, pin=dev.type == "cuda"):
            errors += [(int(mine[i]), msg) for i, msg in batch.errors]
            if len(batch.rows):
                with runtime.autocast(dev):
                    logits = model(runtime.prepare(batch.x, dev))
                got.append((mine[batch.rows.numpy()], torch.sigmoid(logits.float()).cpu().numpy()))
            bar.advance(task, len(batch.rows) + len(batch.errors))
    bar.remove_task(task)
    scores = np.full(table.targets.shape, np.nan, dtype=np.float32)
    every_error: list[tuple[int, str]] = []
    for part_got, part_errors in distributed.gather((got, errors), world):
        for rows, values in part_got:
            scores[rows] = values
        every_error += part_errors
    return scores, sorted(every_error)


def auc_table(labels: tuple[str, ...], values: np.ndarray, title: str) -> tuple[RichTable, str]:
    """The per-label AUC as a rich table and as markdown."""
    rich_table = RichTable(title=title)
    rich_table.add_column("label")
    rich_table.add_column("AUC", justify="right")
    lines = [f"# {title}", "", "| label | AUC |", "|---|---|"]
    for label, v in [*zip(labels, values, strict=True), ("mean", auc.mean_auc(values))]:
        text = "n/a" if not math.isfinite(v) else f"{v:.3f}"
        rich_table.add_row(label, text)
        lines.append(f"| {label} | {text} |")
    return rich_table, "\n".join(lines) + "\n"


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resume_state(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The last state of an interrupted run in ``out``, which must have read the same data."""
    last_path = out / checkpoint.LAST
    if not last_path.is_file():
        raise ConfigError(f"{last_path}: nothing to resume (no last state in --out)")
    state = checkpoint.load(last_path)
    saved = TrainConfig(**state["config"])
    for name in _FIXED:
        if getattr(saved, name) != getattr(cfg, name):
            raise ConfigError(f"--resume: {name} differs from the interrupted run ({getattr(saved, name)})")
    return state


class _Step:
    """One optimisation step on a batch: flip, forward (autocast on CUDA), Eq. 1 loss, Adam."""

    def __init__(self, model: torch.nn.Module, table: Table, cfg: TrainConfig, dev: torch.device, world: World) -> None:
        self.model, self.dev, self.world = model, dev, world
        self.targets = torch.from_numpy(table.targets)
        self.known = torch.from_numpy(table.known.astype(np.float32))
        self.w_pos, self.w_neg = (
            torch.from_numpy(w).to(dev) for w in loss_weights(table.targets, table.known)
        )
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.sched: Any = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.opt, mode="max", factor=0.1, patience=cfg.plateau_patience, min_lr=cfg.min_lr)
            if cfg.schedule == "plateau" else
            torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs, eta_min=cfg.lr / 100)
        )
        self.augment = cfg.augment
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp_dtype(dev) == torch.float16)
        self.flips = torch.Generator().manual_seed(cfg.seed + 1 + world.rank)

    def __call__(self, rows: torch.Tensor, x: torch.Tensor) -> float:
        flip = torch.rand(len(x), generator=self.flips) < 0.5
        x[flip] = x[flip].flip(-1)
        if self.augment:
            x = augment(x, self.flips)
        x = runtime.prepare(x, self.dev)
        with runtime.autocast(self.dev):
            logits = self.model(x)
        y, known = self.targets[rows].to(self.dev), self.known[rows].to(self.dev)
        loss = weighted_bce(logits, y, known, self.w_pos, self.w_neg)
        self.opt.zero_grad(set_to_none=True)
        scaled: torch.Tensor = self.scaler.scale(loss)
        scaled.backward()  # type: ignore[no-untyped-call]
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.item()

    def state(self) -> dict[str, Any]:
        return {
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "flips": self.flips.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.flips.set_state(state["flips"])
        torch.set_rng_state(state["torch_rng"])


def _epoch(
    step: _Step, table: Table, cfg: TrainConfig, epoch: int, bar: Any
) -> tuple[float, list[tuple[int, str]]]:
    """Train one epoch (this process's share of it); returns the mean loss and the unreadable
    rows of ``table``, both over all processes."""
    world = step.world
    step.model.train()
    mine = distributed.epoch_rows(len(table), cfg.seed + epoch, world)
    every = table.paths
    task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=len(mine), info="")
    total, seen, errors = 0.0, 0, []
    pin = step.dev.type == "cuda"
    for batch in loader([every[i] for i in mine], cfg.size, cfg.batch_size, cfg.workers, pin=pin):
        errors += [(int(mine[i]), msg) for i, msg in batch.errors]
        # batch norm cannot train on one image: such a batch waits for the next epoch, on every rank
        if distributed.all_true(len(batch.rows) >= 2, world, step.dev):
            rows = torch.from_numpy(mine[batch.rows.numpy()])
            total += step(rows, batch.x) * len(batch.rows)
            seen += len(batch.rows)
        bar.update(task, advance=len(batch.rows) + len(batch.errors), info=f"loss {total / max(seen, 1):.4f}")
    bar.remove_task(task)
    total, seen_all = distributed.total([total, float(seen)], world, step.dev)
    return total / max(seen_all, 1.0), [e for part in distributed.gather(errors, world) for e in part]


def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Train, keep best.pt (highest mean validation AUC) and last.pt; returns the best metrics.

    Under torchrun (WORLD_SIZE > 1) each process trains on its share of every epoch through
    DistributedDataParallel (--batch-size images per process); rank 0 prints and writes."""
    world = distributed.from_env()
    dev = distributed.device_of(world, runtime.device(cfg.device))
    with distributed.process_group(world, dev):
        return _train(cfg, resume, console if world.main else None, world, dev)


def _split_table(cfg: TrainConfig, out: Path, lset: Any, new: bool, world: World) -> tuple[Any, Any]:
    """The label table with its patient split (made once by the main process of a new run and saved
    beside the checkpoints; every process reads the same), and the split's saved document."""
    table = read_table(cfg.format, cfg.labels, cfg.images, lset, cfg.max_images)
    if new and world.main:
        split = splits.by_patient(table.records, cfg.val_fraction, cfg.seed)
        splits.save(out / checkpoint.SPLIT, split, cfg.seed, cfg.val_fraction)
    split_of, split_doc = distributed.from_main(
        (splits.load(out / checkpoint.SPLIT), json.loads((out / checkpoint.SPLIT).read_text()))
        if world.main else None, world)
    return table.with_splits(split_of), split_doc


def _model(
    cfg: TrainConfig, n_labels: int, state: dict[str, Any] | None, console: Console | None, world: World,
    dev: torch.device,
) -> tuple[CxrNet, torch.nn.Module]:
    """The network (from given weights, or the resumed state) on its device, and what trains it (DDP
    around it with several processes)."""
    model = CxrNet(n_labels, cfg.arch)
    if cfg.weights is not None and state is None:
        message = load_weights(model, cfg.weights)
        if console is not None:
            console.print(message)
    if state is not None:
        model.load_state_dict(state["model"])
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    wrapped: torch.nn.Module = model
    if world.many:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return model, wrapped


def _train(cfg: TrainConfig, resume: bool, console: Console | None, world: World, dev: torch.device) -> dict[str, Any]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state = _resume_state(out, cfg) if resume else None  # every rank: --out on storage all of them see
    _seed_all(cfg.seed)
    lset = lsets.get(cfg.label_set)
    table, split_doc = _split_table(cfg, out, lset, state is None, world)
    train_rows = [i for i, r in enumerate(table.records) if r.split == "train"]
    val_rows = [i for i, r in enumerate(table.records) if r.split == "val"]
    train_t, val_t = table.subset(train_rows), table.subset(val_rows)
    if console is not None:
        where = runtime.device_name(dev) if not world.many else f"{world.size} processes ({dev.type}, DDP)"
        console.print(f"DenseNet-121, {plural(len(train_rows), 'training image')}, "
                      f"{plural(len(val_rows), 'validation image')}, {cfg.size} px, "
                      f"{plural(cfg.epochs, 'epoch')} on {where}")

    model, wrapped = _model(cfg, len(lset.labels), state, console, world, dev)
    step = _Step(wrapped, train_t, cfg, dev, world)
    start, best, history, best_metrics = 0, -math.inf, [], {}
    if state is not None:
        step.restore(state)
        start, best = state["epoch"] + 1, state["best_mean_auc"]
        history, best_metrics = state["history"], state["best_metrics"]
    skipped: dict[int, str] = {}
    with runtime.progress(console) as bar:
        for epoch in range(start, cfg.epochs):
            loss, errors = _epoch(step, train_t, cfg, epoch, bar)
            distributed.sync_buffers(model, world)  # every rank validates and saves rank 0's model
            distributed.check_in_sync(model, world, epoch + 1)
            skipped.update({train_rows[i]: msg for i, msg in errors})
            scores, errors = _predict(model, val_t, cfg, dev, bar, world)
            skipped.update({val_rows[i]: msg for i, msg in errors})
            ok = np.isfinite(scores).all(axis=1)
            values = auc.per_label(scores[ok], val_t.targets[ok], val_t.known[ok])
            mean = auc.mean_auc(values)
            lr = step.opt.param_groups[0]["lr"]
            history.append({"epoch": epoch + 1, "train_loss": loss, "mean_auc": mean, "lr": lr, "processes": world.size})
            if console is not None:
                console.print(f"epoch {epoch + 1}: train loss {loss:.4f}, val mean AUC {mean:.4f}, lr {lr:g}")
            if cfg.schedule == "cosine":
                step.sched.step()
            elif math.isfinite(mean):
                step.sched.step(mean)
            doc = {"arch": cfg.arch, "config": cfg.model_dump(mode="json"), "label_set": lset.name,
                   "labels": list(lset.labels), "split": split_doc, "model": model.state_dict()}
            if (math.isfinite(mean) and mean > best) or not best_metrics:
                best = mean if math.isfinite(mean) else best
                best_metrics = {"epoch": epoch + 1, "mean_auc": mean,
                                "auc": dict(zip(lset.labels, values.tolist(), strict=True))}
                if world.main:
                    checkpoint.save(out / checkpoint.BEST, {**doc, "metrics": {**best_metrics, "history": history}})
            stop = bool(cfg.early_stop) and epoch + 1 - best_metrics["epoch"] >= cfg.early_stop  # same on every rank
            if not world.main:
                if stop:
                    break
                continue
            checkpoint.save(out / checkpoint.LAST, {**doc, **step.state(), "metrics": {"history": history}, "epoch": epoch,
                                                    "best_mean_auc": best, "best_metrics": best_metrics,
                                                    "history": history})
            _write_skipped(out / "skipped.csv", table, skipped)
            if stop:
                if console is not None:
                    console.print(f"early stop: no better validation AUC in {plural(cfg.early_stop, 'epoch')}")
                break
    if not world.main:
        return {**best_metrics, "history": history, "skipped": len(skipped)}
    return _report(out, lset.labels, best_metrics, history, len(skipped), console)


def _report(
    out: Path,
    labels: tuple[str, ...],
    best: dict[str, Any],
    history: list[dict[str, Any]],
    skipped: int,
    console: Console | None,
) -> dict[str, Any]:
    """Print and save the per-label AUC table of the best epoch (auc.md, metrics.json)."""
    if not best:
        raise InputError("training ran no epoch (is --epochs already reached? see last.pt)")
    values = np.array([best["auc"][lab] for lab in labels], dtype=np.float64)
    rich_table, markdown = auc_table(labels, values, f"validation AUC, best epoch {best['epoch']}")
    (out / "auc.md").write_text(markdown)
    result = {**best, "history": history, "skipped": skipped}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    if console is not None:
        console.print(rich_table)
        if skipped:
            console.print(f"[yellow]{plural(skipped, 'unreadable image')} skipped, listed in {out / 'skipped.csv'}")
    return result


def _write_skipped(path: Path, table: Table, skipped: dict[int, str]) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "path", "error"])
        for i in sorted(skipped):
            w.writerow([table.records[i].id, table.records[i].path, skipped[i]])
