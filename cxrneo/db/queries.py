"""Loads the Cypher statements kept in cypher/*.cypher, one statement per file."""

from functools import cache
from importlib import resources

from cxrneo.errors import ConfigError


@cache
def cypher(name: str) -> str:
    """The statement in cypher/<name>.cypher, header comments stripped."""
    try:
        text = (resources.files("cxrneo.cypher") / f"{name}.cypher").read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"no Cypher statement named {name!r}") from e
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    return body.strip().rstrip(";")


def names() -> list[str]:
    """Every statement name shipped in cypher/."""
    folder = resources.files("cxrneo.cypher")
    return sorted(p.name[: -len(".cypher")] for p in folder.iterdir() if p.name.endswith(".cypher"))
