"""Similarity edges on a torch device (a GPU): half-precision blocks find candidates, fp32 rechecks them.

Kept in embed/ because it imports torch. The membership rule is `cxrneo.graph.settle`, the same as
FAISS's on the CPU, so both give the same edge set: every block of rows is multiplied against the
rows after it in half precision; every pair within MARGIN of T (MARGIN bounds the half-precision
error of unit codes) gets its fp32 cosine; those >= T - band(d) go to `settle`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from cxrneo.archive.shards import Rows
from cxrneo.embed import runtime
from cxrneo.errors import ConfigError
from cxrneo.graph import Edges, band, dot_error_bound, row_range, settle, sorted_pairs

BLOCK = 4096  # rows per matrix product: 4096 x 112,120 half-precision cosines are 0.9 GB
PAIRS = 1 << 18  # candidate pairs rechecked in fp32 at a time


def margin(dtype: torch.dtype, width: int = 1024) -> float:
    """Twice a bound on |half-precision cosine - exact| for unit codes of `width` values.

    Derivation (u = eps / 2 of `dtype`): rounding both inputs to `dtype` moves each product x_i y_i
    by at most (2u + u^2) |x_i y_i|, so the dot product by (2u + u^2) sum |x_i y_i| <= 2u + u^2
    (Cauchy-Schwarz, unit codes); accumulating the d rounded products in fp32 adds at most
    `dot_error_bound(d)` * (1 + u)^2; rounding the result to `dtype` adds u |result| <= u (1 + ...).
    Precondition: the products accumulate in fp32 (`fp32_accumulation`, checked by
    `require_fp32_accumulation`); with reduced-precision reductions the accumulation error is of
    order d u, far beyond this margin."""
    u = float(torch.finfo(dtype).eps) / 2
    products = 2 * u + u * u
    accumulate = dot_error_bound(width) * (1 + u) ** 2
    total = products + accumulate
    return 2 * (total + u * (1 + total))


def require_fp32_accumulation() -> None:
    """Raise when cuBLAS may reduce half-precision products in reduced precision (what `margin` excludes)."""
    m = torch.backends.cuda.matmul
    if m.allow_fp16_reduced_precision_reduction or m.allow_bf16_reduced_precision_reduction:
        raise ConfigError("half-precision edges need fp32 accumulation: run them inside fp32_accumulation()")


@contextmanager
def fp32_accumulation() -> Iterator[None]:
    """Half-precision matrix products that accumulate in fp32 (what `margin` assumes): cuBLAS may
    otherwise reduce fp16/bf16 products in reduced precision. The settings are restored after."""
    m = torch.backends.cuda.matmul
    saved = (m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction)
    m.allow_fp16_reduced_precision_reduction = False
    m.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction = saved


def device_edges(
    unit_codes: np.ndarray,
    threshold: float,
    rows: Rows | None = None,
    device: str | torch.device = "cuda",
    block: int = BLOCK,
    dtype: torch.dtype = torch.float16,
) -> Edges:
    """Every pair i < j (i in `rows`, default all) with cos >= threshold, computed on `device`."""
    x = np.ascontiguousarray(unit_codes, dtype=np.float32)
    n = x.shape[0]
    a, b = row_range(n, rows)
    dev = device if isinstance(device, torch.device) else runtime.device(device)
    full = torch.from_numpy(x).to(dev)
    half = full.to(dtype)
    low = threshold - margin(dtype, x.shape[1])
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.inference_mode(), fp32_accumulation():
        require_fp32_accumulation()
        for qs in range(a, b, block):
            qe = min(b, qs + block)
            sims = half[qs:qe] @ half[qs:].T  # columns from qs on: the upper triangle and its diagonal block
            hit = (sims >= low).triu_(diagonal=1)  # column qs + j, row qs + i: keep j > i
            del sims
            i, j = hit.nonzero(as_tuple=True)
            del hit
            first, second = i + qs, j + qs
            for s in range(0, len(first), PAIRS):
                rr, cc = first[s : s + PAIRS], second[s : s + PAIRS]
                fp32 = (full[rr] * full[cc]).sum(dim=1)
                keep = fp32 >= threshold - band(x.shape[1])
                parts.append((rr[keep].cpu().numpy(), cc[keep].cpu().numpy()))
    return settle(x, *sorted_pairs(parts), threshold)
