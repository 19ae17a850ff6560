"""The shape the code keeps (STYLE.md): small files and functions, a docstring per module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_no_product_file_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in _files("pad_pipeline", "trainer")
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines (find the seam and split): {long}"


def test_no_function_over_60_lines_outside_bench():
    long = []
    for path in _files("pad_pipeline", "trainer", "tests", "scripts"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_product_module_says_its_role():
    missing = [str(p.relative_to(ROOT)) for p in _files("pad_pipeline", "trainer")
               if p.name != "__init__.py" and not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def _documented_modules() -> set[str]:
    """Module paths listed in docs/architecture.md: `- \\`name.py\\`` lines under `### package/` headers."""
    documented, package = set(), ""
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        if line.startswith("### "):
            package = line[4:].split()[0].rstrip("/")
        elif line.startswith("- `") and package:
            name = line[3:].split("`", 1)[0]
            if name.endswith(".py") or name.endswith("/"):
                documented.add(f"{package}/{name}")
    return documented


def test_architecture_doc_names_every_module():
    documented = _documented_modules()
    modules = {str(p.relative_to(ROOT)) for p in _files("pad_pipeline", "trainer") if p.name != "__init__.py"}
    undocumented = sorted(m for m in modules if m not in documented
                          and not any(m.startswith(d) for d in documented if d.endswith("/")))
    assert not undocumented, f"add a line per module to docs/architecture.md: {undocumented}"
