"""The package's shape, drawn from its imports (every import, lazy and type-only ones included)."""

import ast
from pathlib import Path

from cxrneo.retrieval.method import Method
from cxrneo.retrieval.strategies import STRATEGIES

PACKAGE = Path(__file__).resolve().parents[2] / "cxrneo"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the modules (of cxrneo, or top-level third-party names) it imports."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:  # `from pkg import submodule` imports the submodule
                    deps.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module)
        out[name] = deps
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                return [*stack[stack.index(d):], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_there_is_no_import_circle() -> None:
    graph = _graph()
    assert "cxrneo.retrieval.engine" in graph and graph["cxrneo.retrieval.engine"], "the drawing is stale"
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph) or [])}"


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_layers() -> None:
    """torch only in embed/, neo4j only in db/connection.py, db never imports the service layer,
    and the engine runs methods only through the registry."""
    graph = _graph()
    for module, deps in graph.items():
        top = {d.split(".")[0] for d in deps}
        if "torch" in top or "torchvision" in top:
            assert module.startswith("cxrneo.embed"), module
        if "neo4j" in top:
            assert module == "cxrneo.db.connection", module
        if module.startswith("cxrneo.db"):
            assert not deps & {"cxrneo.service.searcher", "cxrneo.api.app", "cxrneo.cli.main"}, module
    methods = {"cxrneo.retrieval.region", "cxrneo.retrieval.diffusion"}
    assert not graph["cxrneo.retrieval.engine"] & methods
    assert "cxrneo.retrieval.strategies" in graph["cxrneo.retrieval.engine"]
    assert not graph["cxrneo.retrieval.diffusion"] & {"cxrneo.retrieval.engine", "cxrneo.retrieval.strategies"}


def test_every_method_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(Method)


def test_the_root_is_grouped() -> None:
    """At most 12 modules at the root; no two modules of the same name in different folders."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 12, root
    names: dict[str, list[str]] = {}
    for p in PACKAGE.rglob("*.py"):
        if p.name not in ("__init__.py", "__main__.py"):
            names.setdefault(p.stem, []).append(str(p.relative_to(PACKAGE)))
    assert not {n: where for n, where in names.items() if len(where) > 1}


def test_functions_are_short() -> None:
    """No function or method of the package is over 80 lines (create_app at most 40)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > (40 if node.name == "create_app" else 80):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long


def test_docstrings_cite_the_repository() -> None:
    """Docstrings cite docs/method.md, never a document the repository does not hold."""
    cited = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "SPEC" in p.read_text(encoding="utf-8")]
    assert not cited
