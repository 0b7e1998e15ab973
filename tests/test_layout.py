"""The house: README's layout table names every module, and imports go only downwards.

A module may import the modules of lower layers, and of its own package in
its own layer; nothing imports handler.py, and no two modules import each
other (directly or round a cycle). Imports inside functions count too: they
are the same dependency, only later.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("handler", "settings", "s3_utils", "model_cache_init", "timing_formats")
# Layer of each package or top-level module: lower layers know nothing of higher ones.
LAYERS = {
    "settings": 0, "worker.core": 0,
    "s3_utils": 1, "worker.media": 1, "worker.text": 1,
    "worker.inference": 2, "worker.timing": 2, "worker.startup": 2,
    "timing_formats": 3, "worker.schemas": 3, "model_cache_init": 3,
    "worker.services": 4,
    "handler": 5,
}


def modules() -> dict:
    """Dotted name -> file, for the top-level modules and the worker package."""
    found = {name: ROOT / f"{name}.py" for name in TOP_LEVEL}
    for path in sorted((ROOT / "worker").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def unit(name: str) -> str:
    """The entry of LAYERS a module belongs to."""
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    raise AssertionError(f"{name} has no layer: add its package to LAYERS")


def imports(path: Path, known: dict) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in known}


def test_readme_layout_table_names_every_module():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Layout"):]
    documented = set(re.findall(r"^\| `([^`]+\.py)` \|", table, re.M))
    present = {str(path.relative_to(ROOT)) for name, path in modules().items()
               if path.name != "__init__.py"}
    assert not present - documented, f"add to README's layout: {sorted(present - documented)}"
    assert not documented - present, f"README names missing modules: {documented - present}"


def test_imports_go_only_downwards():
    known = modules()
    wrong = []
    for name, path in known.items():
        for target in imports(path, known) - {name}:
            if target == "worker" or name.startswith(target + "."):
                continue   # a package's own __init__: docstring only
            mine, theirs = unit(name), unit(target)
            if LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine]
                                                 and theirs != mine):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}

    def visit(name, trail):
        if name in trail:
            raise AssertionError(" -> ".join(trail[trail.index(name):] + [name]))
        for target in sorted(graph.get(name, ())):
            if not name.startswith(target + "."):
                visit(target, trail + [name])

    for name in graph:
        visit(name, [])


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): n for path in modules().values()
            if (n := len(path.read_text().splitlines())) > 400}
    assert not long, f"split these (one concept per module): {long}"
