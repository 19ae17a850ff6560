"""The import graph of `pad_pipeline` and `trainer`, read from the source with `ast` (issue 19).

Every `import` and `from ... import` counts: top-level, inside functions, and under `if TYPE_CHECKING:`
(a type-only import is still a dependency a reader follows, so it still closes a circle). An edge goes
to the module a statement names: `import a.b.c` -> `a.b.c`; `from a.b import c` -> `a.b.c` when `c` is
a module, else `a.b`; relative imports are resolved against the importing module. A package's
`__init__` is not implicitly imported by its submodules here (only what a file writes counts).

Checked: (a) only `pad_pipeline/cli.py` imports `trainer`; (b) no circle between modules of
`pad_pipeline`; (c) none in `trainer` beyond `ALLOWED_TRAINER_CYCLES`, which lists today's circles
exactly, so a new one fails and a removed one asks for the list to shrink (empty it when it is clean).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Circles of trainer/ still open while trainer/ is restructured (issue 19); each as its sorted modules.
ALLOWED_TRAINER_CYCLES: set[tuple[str, ...]] = set()


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of `package` (a package's own name for __init__)."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, name: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    return [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]


def import_graph(packages: tuple[str, ...] = ("pad_pipeline", "trainer")) -> dict[str, set[str]]:
    """Module -> the modules (of `packages`) its file imports anywhere."""
    files = {m: p for pkg in packages for m, p in modules(pkg).items()}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            for target in _targets(node, name, is_package, known):
                # `import a.b.c` of a name that is no module (an attribute): the longest module prefix
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]], package: str) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module inside `package` (Tarjan), sorted."""
    nodes = [n for n in graph if n.split(".")[0] == package]
    inside = {n: sorted(t for t in graph[n] if t.split(".")[0] == package) for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in inside[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return found


def test_the_graph_reads_imports_of_every_form():
    graph = import_graph()
    # function-local `from trainer.x import y` in cli.py; `from a.b import c` with c a module
    assert any(t.startswith("trainer.") for t in graph["pad_pipeline.cli"])
    assert "pad_pipeline.dataset.rle" in graph["pad_pipeline.tools.show"]
    # a TYPE_CHECKING-only import counts
    assert "pad_pipeline.annotate.config" in graph["pad_pipeline.annotate.sources.guard"]
    assert cycles({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}, "p") == {("p.a", "p.b", "p.c")}


def test_only_the_cli_of_pad_pipeline_imports_trainer():
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items()
                       if m.startswith("pad_pipeline") and any(t.split(".")[0] == "trainer" for t in targets))
    assert importers == ["pad_pipeline.cli"], f"pad_pipeline imports trainer only in cli.py; also in: {importers}"


def test_no_import_circle_in_pad_pipeline():
    found = cycles(import_graph(), "pad_pipeline")
    assert not found, "import circles in pad_pipeline: " + "; ".join(" <-> ".join(c) for c in sorted(found))


def test_no_new_import_circle_in_trainer():
    found = cycles(import_graph(), "trainer")
    new = found - ALLOWED_TRAINER_CYCLES
    gone = ALLOWED_TRAINER_CYCLES - found
    assert not new, "new import circles in trainer: " + "; ".join(" <-> ".join(c) for c in sorted(new))
    assert not gone, ("circles of ALLOWED_TRAINER_CYCLES no longer exist; remove them from the list (empty "
                      "it when none is left): " + "; ".join(" <-> ".join(c) for c in sorted(gone)))
