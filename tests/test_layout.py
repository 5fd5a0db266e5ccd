"""The package layout shows the architecture: each subpackage imports only the levels below it
(its `__init__` docstring says which), module imports have no cycles, and `predictors` never
imports the lm-eval glue. Function-level imports count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# area -> the areas it may import (besides itself)
ALLOWED = {
    "rbridge_tasks.core": set(),
    "rbridge_tasks.formula": set(),
    "rbridge_tasks.questions": {"rbridge_tasks.core"},
    "rbridge_tasks.records": {"rbridge_tasks.core", "rbridge_tasks.questions"},
    "rbridge_tasks.backends": {"rbridge_tasks.core"},
    "rbridge_tasks.harness": {
        "rbridge_tasks.core", "rbridge_tasks.questions", "rbridge_tasks.records",
        "rbridge_tasks.formula", "rbridge_tasks.backends",
    },
    "rbridge_tasks.traces": {
        "rbridge_tasks.core", "rbridge_tasks.questions", "rbridge_tasks.records",
    },
    "predictors.choices": set(),
    "predictors.data": {"predictors.choices", "rbridge_tasks.core", "rbridge_tasks.formula"},
    "predictors.fitting": {"predictors.choices", "predictors.data", "rbridge_tasks.core"},
    "predictors.reports": {
        "predictors.choices", "predictors.data", "predictors.fitting", "rbridge_tasks.core",
    },
    "predictors": {  # the package's lazy exports and the command line
        "predictors.choices", "predictors.data", "predictors.fitting", "predictors.reports",
        "rbridge_tasks.core",
    },
}  # fmt: skip
TOP = "rbridge_tasks"  # __init__, cli, commands, quickstart: may import everything


def modules() -> dict[str, Path]:
    out = {}
    for package in ("rbridge_tasks", "predictors"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = modules()


def imports(name: str) -> set[str]:
    """The package's modules that `name` imports (an imported name that is a module counts as
    that module, else as its package)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def area(module: str) -> str:
    for candidate in sorted(ALLOWED, key=len, reverse=True):
        if module == candidate or module.startswith(candidate + "."):
            return candidate
    return TOP


GRAPH = {name: imports(name) for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_the_levels_below_its_own(name):
    mine = area(name)
    if mine == TOP:
        return
    for target in sorted(GRAPH[name]):
        theirs = area(target)
        if theirs == TOP and target == "rbridge_tasks":
            theirs = "the package root"
        assert theirs == mine or theirs in ALLOWED[mine], f"{name} imports {target}"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_every_subpackage_says_what_it_may_import():
    for package in ALLOWED:
        if package in MODULES and MODULES[package].name == "__init__.py":
            assert "May import:" in ast.get_docstring(ast.parse(MODULES[package].read_text())), (
                package
            )
