"""Small text helpers for command output: counted nouns and a console that never breaks lines when piped."""

import os
import sys

from rich.console import Console

# Wide enough for any table cxrneo prints; a pipe or a log file has no width of its own.
PIPE_WIDTH = 240


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 epoch``, ``2 epochs``, ``0 images``; ``many`` for irregular plurals."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def console(stderr: bool = False) -> Console:
    """Rich console: the terminal's width on a terminal; on a pipe or file, long lines stay whole.

    Rich assumes 80 columns when output is not a terminal and breaks sentences there; set
    COLUMNS to choose a width explicitly.
    """
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)
