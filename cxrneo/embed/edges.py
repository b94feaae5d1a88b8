"""Similarity edges on a torch device (a GPU): half-precision blocks find candidates, fp32 rechecks them.

Kept in embed/ because it imports torch. The membership rule is `cxrneo.graph.settle`, the same as
FAISS's on the CPU, so both give the same edge set: every block of rows is multiplied against the
rows after it in half precision; every pair within MARGIN of T (MARGIN bounds the half-precision
error of unit codes) gets its fp32 cosine; those >= T - BAND go to `settle`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from cxrneo.embed import runtime
from cxrneo.graph import BAND, Edges, row_range, settle, sorted_pairs
from cxrneo.shards import Rows

BLOCK = 4096  # rows per matrix product: 4096 x 112,120 half-precision cosines are 0.9 GB
PAIRS = 1 << 18  # candidate pairs rechecked in fp32 at a time


def margin(dtype: torch.dtype) -> float:
    """A bound on |half-precision cosine - exact| for unit codes, with room to spare: rounding the
    inputs moves a dot product of unit vectors by at most 2u + u^2, rounding the output by u
    (u = eps / 2), and fp32 accumulation adds far less; 4 eps covers it twice over. It assumes fp32
    accumulation, which `fp32_accumulation` makes sure of on CUDA."""
    return 4 * float(torch.finfo(dtype).eps)


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
    low = threshold - margin(dtype)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.inference_mode(), fp32_accumulation():
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
                keep = fp32 >= threshold - BAND
                parts.append((rr[keep].cpu().numpy(), cc[keep].cpu().numpy()))
    return settle(x, *sorted_pairs(parts), threshold)
