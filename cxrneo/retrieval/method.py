"""The retrieval methods by name: one entry each, used by the CLI, the HTTP API, evaluate and the report."""

from enum import StrEnum

from cxrneo.errors import ConfigError


class Method(StrEnum):
    """A retrieval method; `cxrneo.retrieval.strategies` maps each to the object that runs it."""

    COMMUNITY = "community"  # the paper's Algorithm 2
    HYBRID = "hybrid"  # step 2a's communities, members by cosine
    KNN = "knn"  # exact cosine kNN, the baseline
    DIFFUSION = "diffusion"  # personalized PageRank from N(q) (retrieval/diffusion.py)

    @classmethod
    def parse(cls, name: "str | Method") -> "Method":
        """The method of that name (ConfigError for an unknown one)."""
        try:
            return cls(name)
        except ValueError:
            raise ConfigError(f"unknown method {name!r}: use one of {', '.join(METHODS)}") from None


METHODS: tuple[str, ...] = tuple(m.value for m in Method)
