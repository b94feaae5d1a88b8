"""Device choice, mixed precision and progress bars shared by training and extraction."""

import contextlib
from collections.abc import Iterator

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cxrneo.errors import ConfigError


def device(name: str = "auto") -> torch.device:
    """auto -> CUDA when present, else CPU; asking for CUDA without one is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def amp_dtype(dev: torch.device) -> torch.dtype | None:
    """bf16 on CUDA devices that support it, else fp16 on CUDA, None (fp32) on CPU."""
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(dev: torch.device) -> contextlib.AbstractContextManager[object]:
    dtype = amp_dtype(dev)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=dtype)


def prepare(grey: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """N x 1 x H x W grey in [0, 1] (float16 from the loader) -> N x 3 x H x W ImageNet-normalised
    float32 on ``dev`` (channels_last on CUDA). Workers ship one half-precision channel, a sixth
    of the bytes of three float32 channels; replication and normalisation happen on the device."""
    from cxrneo.embed.images import MEAN, STD

    x = grey.to(dev, non_blocking=True).float()
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    x = (x.expand(-1, 3, -1, -1) - mean) / std
    if dev.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({torch.get_num_threads()} threads)"


@contextlib.contextmanager
def progress(console: Console | None) -> Iterator[Progress]:
    """A rich progress display with ETA; silent when ``console`` is None."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=console is None,
        transient=False,
    )
    with bar:
        yield bar
