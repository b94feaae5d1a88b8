"""A bfloat16 first pass for the service's scan (a `cxrneo.retrieval.scan.Kernel`); torch, so in embed/.

On a CPU with AMX or AVX512-BF16, torch (oneDNN) multiplies bfloat16 matrices with fp32 accumulation
at the speed of reading them: 112,120 x 1024 codes are 230 MB in bfloat16 against 459 MB in float32,
and a batch of queries costs about what one costs. The answers stay exact: every value comes with
the bound below and `Cosines` decides on exact float64 values (docs/method.md, "Exact answers from a
reduced-precision pass").

The bound for code x (float32, unit), query q (float32, unit), their bfloat16 roundings x~ and q~,
the fp32 accumulator acc of x~ . q~ and the bfloat16 result out:
    x.q - out = (x - x~).q + x~.(q - q~) + (x~.q~ - acc) + (acc - out)
    |(x - x~).q|      <= max_x |x - x~| |q|        (measured per archive, exact in float64)
    |x~.(q - q~)|     <= max_x |x~| |q - q~|       (per query)
    |x~.q~ - acc|     <= gamma_d max_x |x~| |q~|    (products of bfloat16 are exact in fp32;
                                                   gamma_d = d u32 / (1 - d u32), any summation order)
    |acc - out|       <= u/(1 - u) |out|            (one round-to-nearest to bfloat16, u = 2^-8)
`candidates` offers it to the measured choice (cxrneo.retrieval.fastest) where a probe finds it faster
than float32; the choice checks the bound on a sample of the archive before using it.
"""

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from cxrneo.graph import FP32_UNIT
from cxrneo.retrieval.scan import Fp32Kernel, Kernel, Pass

U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8 significant bits)
CHUNK = 8192  # rows converted at a time
PROBE_ROWS = 16_384  # rows of the speed probe
FASTER = 0.6  # bfloat16 is a candidate when it takes at most this share of float32's time
GROW = 1 + 1e-9  # float64 norms rounded up

log = logging.getLogger(__name__)


class Bf16Kernel:
    """The codes in bfloat16 (half the bytes of float32), with the bound of the module docstring."""

    name = "bfloat16"

    def __init__(self, codes: np.ndarray) -> None:
        n, d = codes.shape
        self._x = torch.empty((n, d), dtype=torch.bfloat16)
        resid = norm = 0.0
        for s in range(0, n, CHUNK):
            block = np.array(codes[s : s + CHUNK], dtype=np.float32)  # a writable copy (torch shares its memory)
            t = torch.from_numpy(block).to(torch.bfloat16)
            back = t.float().numpy().astype(np.float64)
            resid = max(resid, float(np.linalg.norm(block.astype(np.float64) - back, axis=1).max(initial=0.0)))
            norm = max(norm, float(np.linalg.norm(back, axis=1).max(initial=0.0)))
            self._x[s : s + block.shape[0]] = t
        du = d * FP32_UNIT
        self._resid, self._norm, self._gamma = resid * GROW, norm * GROW, du / (1 - du)

    def __call__(self, queries: np.ndarray) -> Pass:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        qb = torch.from_numpy(q).to(torch.bfloat16)
        q_back = qb.float().numpy().astype(np.float64)
        q_norm = np.linalg.norm(q.astype(np.float64), axis=0) * GROW
        dq = np.linalg.norm(q.astype(np.float64) - q_back, axis=0) * GROW
        qb_norm = np.linalg.norm(q_back, axis=0) * GROW
        approx = (self._x @ qb).float().numpy()
        base = self._resid * q_norm + self._norm * dq + self._gamma * self._norm * qb_norm
        return Pass(approx, base, U_BF16 / (1 - U_BF16))


def _seconds(kernel: Kernel, q: np.ndarray) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        kernel(q)
        best = min(best, time.perf_counter() - t)
    return best


def candidates(codes: np.ndarray, precision: str = "auto") -> dict[str, Callable[[], Kernel]]:
    """The bfloat16 pass as a candidate of the measured choice (cxrneo.retrieval.fastest): when forced
    ("bfloat16"), or ("auto") where a probe finds it at least 1/FASTER times faster than float32 here."""
    if precision not in ("auto", "bfloat16") or codes.shape[0] == 0:
        return {}
    if precision == "auto":
        probe = np.ascontiguousarray(codes[: min(PROBE_ROWS, codes.shape[0])], dtype=np.float32)
        q = np.ascontiguousarray(probe[: min(8, probe.shape[0])].T)
        fast, slow = _seconds(Bf16Kernel(probe), q), _seconds(Fp32Kernel(probe), q)
        if fast > FASTER * slow:
            log.info("no bfloat16 pass: it is not faster here (%.2f ms vs %.2f ms)", fast * 1e3, slow * 1e3)
            return {}
    return {"bfloat16": lambda: Bf16Kernel(codes)}
