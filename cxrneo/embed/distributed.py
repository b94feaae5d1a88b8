"""Training on several processes under torchrun (DDP): who this process is, the process group,
each rank's rows of an epoch, and values every rank must agree on.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs as one process and
nothing here talks to anyone. NCCL joins CUDA processes, gloo CPU ones.
"""

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from cxrneo.errors import ConfigError, CxrneoError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that prints, validates into files and writes checkpoints."""
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.size > 1


def from_env() -> World:
    """The world torchrun describes in the environment; one process when it describes none."""
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    if "WORLD_SIZE" not in os.environ:
        return World()
    try:
        rank, size, local = (int(os.environ.get(n, "0")) for n in names)
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise ConfigError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={size} LOCAL_RANK={local}")
    return World(rank, size, local)


@contextlib.contextmanager
def process_group(world: World, dev: torch.device) -> Iterator[None]:
    """Join the other processes (NCCL on CUDA, gloo on the CPU) for the duration of a run."""
    if not world.many:
        yield
        return
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def device_of(world: World, base: torch.device) -> torch.device:
    """One GPU per process on a node: cuda:LOCAL_RANK."""
    if base.type == "cuda" and world.many:
        if world.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {world.local_rank} but only {torch.cuda.device_count()} CUDA devices here")
        return torch.device("cuda", world.local_rank)
    return base


def epoch_rows(n: int, seed: int, world: World) -> np.ndarray:
    """This rank's rows of an epoch: one shuffle of range(n) shared by all ranks (seeded by the
    epoch), cut to a multiple of the world size and dealt out, so every rank gets the same
    number of rows and batches and no row goes to two ranks."""
    order = np.random.default_rng(seed).permutation(n)
    usable = n - n % world.size
    return order[:usable][world.rank :: world.size]


def all_true(flag: bool, world: World, dev: torch.device) -> bool:
    """Whether `flag` holds on every rank (so all take a step, or none does)."""
    if not world.many:
        return flag
    t = torch.tensor([1 if flag else 0], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def total(values: list[float], world: World, dev: torch.device) -> list[float]:
    """Element-wise sum of `values` over the ranks."""
    if not world.many:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's `obj`, in rank order."""
    if not world.many:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def sync_buffers(model: torch.nn.Module, world: World) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank. DDP sends them at the start of
    each forward pass, but every rank's last training pass then moves its own copy: without this,
    each rank would validate (and save) a slightly different model."""
    if not world.many:
        return
    for b in model.buffers():
        dist.broadcast(b, src=0)


def check_in_sync(model: torch.nn.Module, world: World, epoch: int) -> None:
    """Refuse to go on when the processes' weights or buffers differ (after sync_buffers they are
    equal bit for bit)."""
    if not world.many:
        return
    h = hashlib.sha256()
    for p in [*model.parameters(), *model.buffers()]:
        h.update(p.detach().float().cpu().numpy().tobytes())
    digests = gather(h.hexdigest(), world)
    if len(set(digests)) != 1:
        raise CxrneoError(f"after epoch {epoch} the training processes hold different weights "
                          f"({len(set(digests))} versions among {world.size}); stopping")


def from_main(obj: Any, world: World) -> Any:
    """Rank 0's `obj` on every rank."""
    if not world.many:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
