"""Re-export of :mod:`cxrneo.labels`, the one owner of label sets, for callers not yet moved.

Delete once ``cxrneo/cli.py`` imports ``cxrneo.labels`` directly.
"""

from cxrneo.labels import LABEL_SETS, NEGATIVE, POSITIVE, UNCERTAIN, LabelSet, get

__all__ = ["LABEL_SETS", "NEGATIVE", "POSITIVE", "UNCERTAIN", "LabelSet", "get"]
