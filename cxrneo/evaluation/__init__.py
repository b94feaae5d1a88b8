"""Retrieval evaluation as the paper scores it: the run, its metrics and its report."""
