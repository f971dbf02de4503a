"""The modules of src/ form layers: every import points down, none in a circle.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC_DIR = Path(__file__).resolve().parents[1] / "src"
MODULES = {path.stem: path for path in SRC_DIR.glob("*.py")}
COURSE_SCRIPTS = {"model_training_evaluation", "model_deploy", "model_monitoring"} | {
    name
    for name in MODULES
    if name.startswith("dashboard")  # the dashboard and its pages
}
HEAVY_FOR_WORKERS = {"fastapi", "uvicorn", "streamlit", "mlflow", "optuna", "matplotlib", "plotly"}


@cache
def imported_names(path: Path) -> set[str]:
    """Top-level package names a module imports anywhere in its body."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def project_graph() -> dict[str, set[str]]:
    return {name: (imported_names(path) & set(MODULES)) - {name} for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for dependency in sorted(graph[module]):
            if state.get(dependency) == "open":
                return [*path[path.index(dependency) :], dependency] if dependency in path else [dependency]
            if dependency not in state and (cycle := visit(dependency, [*path, dependency])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_find_cycle_sees_a_circle_and_a_clean_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_another_in_a_cycle() -> None:
    cycle = find_cycle(project_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("module", sorted(set(MODULES) - COURSE_SCRIPTS - {"dask_engine"}))
def test_lower_layers_never_import_the_course_scripts(module: str) -> None:
    assert not project_graph()[module] & (COURSE_SCRIPTS | {"dask_engine"})


def test_dask_workers_import_no_web_or_training_stack() -> None:
    """dask_engine and everything it imports stay free of FastAPI, Streamlit, MLflow and plotting."""
    graph, seen, stack = project_graph(), set(), ["dask_engine"]
    while stack:
        module = stack.pop()
        if module not in seen:
            seen.add(module)
            stack.extend(graph[module])
    heavy = {module: imported_names(MODULES[module]) & HEAVY_FOR_WORKERS for module in seen}
    assert not seen & COURSE_SCRIPTS and not any(heavy.values()), heavy


def test_the_readme_names_every_module_once_in_its_structure_section() -> None:
    """The module list lives in one place, the readme's Estructura block: it must not fall behind."""
    readme = (SRC_DIR.parents[1] / "readme.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Estructura") :]
    block = section[section.index("```") : section.index("```", section.index("```") + 3)]
    named = {word[:-3] for word in block.replace(",", " ").split() if word.endswith(".py")}
    pages = {name for name in MODULES if name.startswith("dashboard_")}  # "dashboard_*.py" in the readme
    assert set(MODULES) - pages - named == set()
