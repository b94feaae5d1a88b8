"""What this machine's CPU is (read from /proc/cpuinfo on Linux): its model for /health and the
start-up line, and whether it may do bfloat16 arithmetic in hardware."""

from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@cache
def _fields() -> dict[str, str]:
    """The first processor's fields (empty where /proc/cpuinfo cannot be read)."""
    out: dict[str, str] = {}
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def model() -> str:
    """The CPU's model name ("unknown" where it cannot be read)."""
    return _fields().get("model name") or "unknown"


def may_do_bfloat16() -> bool:
    """False only where the CPU's flags are known and name no bfloat16 instructions (there a bfloat16
    pass is emulated and slower than float32: not worth loading torch to try it)."""
    flags = _fields().get("flags")
    return flags is None or bool(BF16_FLAGS & set(flags.split()))
