"""Re-export of :mod:`cxrneo.tables.table` (the one table reader) for callers not yet moved.

Delete once ``cxrneo/cli.py`` imports ``cxrneo.tables.table`` directly.
"""

from cxrneo.tables.table import FORMATS, Table, build, read_table

__all__ = ["FORMATS", "Table", "build", "read_table"]
