"""Retrieval (docs/method.md section 5): weighted modularity, Algorithm 2 region growing, hybrid and exact kNN."""

from cxrneo.retrieval.engine import Retriever
from cxrneo.retrieval.memory import MemoryGraph
from cxrneo.retrieval.method import METHODS, Method
from cxrneo.retrieval.view import GraphView

__all__ = ["METHODS", "GraphView", "MemoryGraph", "Method", "Retriever"]
