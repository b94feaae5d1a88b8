"""Shards of a job over many machines: `i/n` and `a:b` specs, row ranges, and the partition check.

`cxrneo embed --shard i/n` takes an even block of the label table's rows; `cxrneo edges --shard
i/n` a block of source rows holding about 1/n of the pairs of the upper triangle (earlier rows
have more pairs after them). `cxrneo merge` accepts parts only if their row ranges partition
the whole: none missing, none doubled.
"""

import math
from collections.abc import Sequence

from cxrneo.errors import ConfigError, InputError

Rows = tuple[int, int]  # half-open [a, b)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    left, sep, right = text.partition("/")
    try:
        i, n = int(left), int(right)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4), got {text!r}")
    return i, n


def parse_rows(text: str, total: int) -> Rows:
    """'a:b' -> (a, b) within [0, total]; either side may be left out ('1000:', ':5000')."""
    left, sep, right = text.partition(":")
    try:
        a = int(left) if left else 0
        b = int(right) if right else total
    except ValueError:
        a = b = -1
    if not sep or not 0 <= a < b <= total:
        raise ConfigError(f"--rows must be a:b with 0 <= a < b <= {total}, got {text!r}")
    return a, b


def even_rows(total: int, i: int, n: int, align: int = 1) -> Rows:
    """Shard i of n of `total` rows: contiguous, sizes differing by at most `align`, boundaries on
    multiples of `align` (so shards cut a job at the same places its unsharded run does)."""
    units = math.ceil(total / align)
    cut = [min(total, (units * k // n) * align) for k in range(n + 1)]
    return cut[i], cut[i + 1]


def triangle_rows(total: int, i: int, n: int) -> Rows:
    """Shard i of n of the source rows of the pairs (r, c), r < c < total: row r has total - 1 - r
    pairs, so boundaries fall where the remaining triangle shrinks by 1/n each."""
    def cut(k: int) -> int:
        return total if k == n else int(round(total * (1 - math.sqrt(1 - k / n))))

    return cut(i), cut(i + 1)


def check_partition(ranges: Sequence[Rows], total: int, what: str) -> list[int]:
    """The order in which `ranges` tile [0, total) exactly; a gap or an overlap is one InputError."""
    order = sorted(range(len(ranges)), key=lambda k: ranges[k])
    at = 0
    for k in order:
        a, b = ranges[k]
        if a > at:
            raise InputError(f"{what}: rows {at}:{a} are in no part (a part is missing)")
        if a < at:
            raise InputError(f"{what}: rows {a}:{min(at, b)} are in two parts (a part is doubled)")
        at = b
    if at != total:
        raise InputError(f"{what}: rows {at}:{total} are in no part (a part is missing)")
    return order
