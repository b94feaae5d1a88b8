"""cxrneo: content-based chest X-ray retrieval over a Neo4j graph of image codes."""

__version__ = "0.1.0"
