"""The cxrneo command line: thin Typer commands (cxrneo/cli/main.py) over the jobs they run."""

from cxrneo.cli.main import app

__all__ = ["app"]
