"""The course notebooks run top to bottom, stay small and current, and the EDA matches config.yaml.

Each notebook is executed once per test module from an in-memory copy (the committed files are
never overwritten), with the kernel's working directory set to the notebook's folder, as Jupyter
does. Regenerate the committed outputs with:
``jupyter execute --inplace mlops_pipeline/src/Cargar_datos.ipynb mlops_pipeline/src/comprension_eda.ipynb``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from settings import DEFAULT_CONFIG, load_config

SRC_DIR = Path(__file__).resolve().parents[1] / "src"
REPO_ROOT = SRC_DIR.parents[1]
NOTEBOOKS = ["Cargar_datos.ipynb", "comprension_eda.ipynb"]
EDA = "comprension_eda.ipynb"
MAX_BYTES = 3 * 1024 * 1024
DEPLOY_VARIABLES = ("MLOPS_CONFIG", "DATABASE_URL", "API_KEY", "MODEL_VERSION", "PORT")
FINDER_END = "# Los mensajes de los módulos"  # the setup cell: the src/ finder, then logging and imports
REGENERATE = "re-run it: jupyter execute --inplace mlops_pipeline/src/<notebook>.ipynb"

DERIVED_HEADING = "### Atributos derivados propuestos"
RULES_HEADING = "### Reglas de validación propuestas"
DERIVED_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`\s*\|\s*`(?P<expression>[^`]+)`\s*\|", re.MULTILINE)
RULE_ROW = re.compile(
    r"^\|\s*`(?P<column>[^`]+)`\s*\|\s*(?P<rule>rango|categorías)\s*\|\s*(?P<values>[^|]+?)\s*\|",
    re.MULTILINE,
)


class Node(dict):
    """A notebook's JSON object with attribute access, as nbformat's ``NotebookNode``."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _joined(item: dict) -> Node:
    """Multi-line strings (sources, stream text, text outputs) joined, as ``nbformat.read`` does."""
    return Node(
        {
            key: "".join(value)
            if isinstance(value, list) and (key in ("source", "text") or "/" in key)
            else value
            for key, value in item.items()
        }
    )


def read_notebook(name: str) -> Node:
    """A committed notebook (nbformat 4 JSON) for reading, without nbformat: importing it (and its
    jsonschema) costs seconds of the fast run; only the end-to-end tests execute notebooks."""
    return json.loads((SRC_DIR / name).read_text(encoding="utf-8"), object_hook=_joined)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Execute both notebooks (fresh copies) with a private artifacts folder; return them and that folder."""
    import nbformat
    from nbclient import NotebookClient

    artifacts = tmp_path_factory.mktemp("notebooks") / "artifacts"
    env = {key: value for key, value in os.environ.items() if key not in DEPLOY_VARIABLES}
    env["MLOPS_ARTIFACTS_DIR"] = str(artifacts)
    executed = {}
    for name in NOTEBOOKS:
        notebook = nbformat.read(SRC_DIR / name, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(SRC_DIR)}},
        )
        client.execute(env=env)
        executed[name] = notebook
    return {"notebooks": executed, "artifacts": artifacts}


def code_cells(notebook: dict) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text_outputs(notebook: dict) -> list[str]:
    """Per code cell, its stdout and plain-text results joined (images left out; stream chunking varies)."""
    cells = []
    for cell in code_cells(notebook):
        texts = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stdout":
                texts.append(output.text)
            elif output.output_type in ("execute_result", "display_data") and "text/plain" in output.data:
                if "image/png" not in output.data:
                    texts.append(output.data["text/plain"])
        cells.append("".join(texts))
    return cells


def markdown_section(notebook: dict, heading: str) -> str:
    sections = [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "markdown" and cell.source.startswith(heading)
    ]
    assert len(sections) == 1, f"expected one markdown cell starting with '{heading}', found {len(sections)}"
    return sections[0]


def bound(values: str, label: str) -> float | None:
    match = re.search(rf"{label}\.\s*(-?[\d.]+)", values)
    return float(match.group(1)) if match else None


@pytest.mark.e2e
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors_or_warnings(run: dict, name: str) -> None:
    notebook = run["notebooks"][name]
    problems = [
        f"cell {index}: {output.get('name') or output.get('ename')}: "
        f"{output.get('text') or output.get('evalue')}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr")
    ]
    assert not problems, "\n".join(problems)
    assert all(cell.execution_count for cell in code_cells(notebook))


@pytest.mark.e2e
def test_notebooks_write_nothing_to_artifacts(run: dict) -> None:
    artifacts: Path = run["artifacts"]
    written = (
        sorted(str(path.relative_to(artifacts)) for path in artifacts.rglob("*"))
        if artifacts.exists()
        else []
    )
    assert written == []


@pytest.mark.e2e
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_valid_nbformat(name: str) -> None:
    import nbformat

    nbformat.validate(nbformat.read(SRC_DIR / name, as_version=4))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_small_executed_and_has_plots(name: str) -> None:
    path = SRC_DIR / name
    assert path.stat().st_size < MAX_BYTES, f"{name} is {path.stat().st_size / 1e6:.1f} MB"
    notebook = read_notebook(name)
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), f"{name} was not run top to bottom; {REGENERATE}"
    images = [o for cell in code_cells(notebook) for o in cell.outputs if "image/png" in o.get("data", {})]
    assert images, f"{name} carries no plots; {REGENERATE}"


@pytest.mark.e2e
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_match_a_fresh_run(run: dict, name: str) -> None:
    committed = text_outputs(read_notebook(name))
    fresh = text_outputs(run["notebooks"][name])
    stale = [index for index, (old, new) in enumerate(zip(committed, fresh)) if old != new]
    assert len(committed) == len(fresh) and not stale, (
        f"{name}: code cells {stale} have stale outputs; {REGENERATE}"
    )


def test_eda_proposed_derived_features_are_the_config_ones() -> None:
    section = markdown_section(read_notebook(EDA), DERIVED_HEADING)
    proposed = {m["name"]: " ".join(m["expression"].split()) for m in DERIVED_ROW.finditer(section)}
    configured = {
        name: " ".join(expr.split()) for name, expr in load_config(DEFAULT_CONFIG).dataset.derived.items()
    }
    assert proposed == configured


def test_eda_proposed_validation_rules_are_the_config_ones() -> None:
    section = markdown_section(read_notebook(EDA), RULES_HEADING)
    rows = list(RULE_ROW.finditer(section))
    ranges = {
        m["column"]: (bound(m["values"], "mín"), bound(m["values"], "máx"))
        for m in rows
        if m["rule"] == "rango"
    }
    categories = {
        m["column"]: [v.strip() for v in m["values"].split(",")] for m in rows if m["rule"] == "categorías"
    }
    rules = load_config(DEFAULT_CONFIG).dataset.validation
    assert ranges == {column: (r.min, r.max) for column, r in rules.ranges.items()}
    assert categories == rules.categories


@pytest.mark.e2e
def test_eda_outputs_show_the_config_rules_and_features(run: dict) -> None:
    outputs = "\n".join(text_outputs(run["notebooks"][EDA]))
    dataset = load_config(DEFAULT_CONFIG).dataset
    names = [
        *dataset.derived,
        *dataset.derived.values(),
        *dataset.validation.ranges,
        *dataset.validation.categories,
    ]
    assert [name for name in names if name not in outputs] == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_call_project_code_instead_of_copying_it(name: str) -> None:
    cells = code_cells(read_notebook(name))
    assert "import ft_engineering" in cells[0].source
    dataset = load_config(DEFAULT_CONFIG).dataset
    copied = [
        (index, literal)
        for index, cell in enumerate(cells)
        for literal in [*dataset.derived.values(), *(f'"{token}"' for token in dataset.na_values if token)]
        if literal in cell.source.replace("'", '"')
    ]
    assert copied == [], "feature expressions or missing tokens typed in a code cell; read them from config"


def finder_source(name: str) -> str:
    """The part of a notebook's first code cell that finds src/ and puts it on sys.path."""
    setup = code_cells(read_notebook(name))[0].source
    assert FINDER_END in setup, f"{name}: the setup cell no longer has '{FINDER_END}'"
    return setup[: setup.index(FINDER_END)]


def run_finder(folder: Path, **env: str) -> dict:
    """Run the src/ finder and an import of the project in a kernel whose working directory is ``folder``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(finder_source(NOTEBOOKS[0])),
        nbformat.v4.new_code_cell("import ft_engineering\nprint(ft_engineering.__file__)"),
    ]
    kernel_env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_SRC", "JPY_SESSION_NAME")}
    client = NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})  # fmt: skip
    client.execute(env={**kernel_env, **env})
    return notebook


def test_both_notebooks_find_src_the_same_way() -> None:
    assert finder_source(NOTEBOOKS[0]) == finder_source(NOTEBOOKS[1])


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["repo_root", "docs_folder", "copied_out"])
def test_notebooks_find_src_from_any_working_directory(where: str, tmp_path: Path) -> None:
    folder = {"repo_root": REPO_ROOT, "docs_folder": SRC_DIR.parent / "docs", "copied_out": tmp_path}[where]
    env = {"MLOPS_SRC": str(SRC_DIR)} if where == "copied_out" else {}
    notebook = run_finder(folder, **env)
    printed = text_outputs(notebook)[1].strip()
    assert printed == str(SRC_DIR / "ft_engineering.py"), [cell.outputs for cell in notebook.cells]


@pytest.mark.e2e
def test_a_notebook_outside_the_repository_says_how_to_point_at_src(tmp_path: Path) -> None:
    errors = [o for o in run_finder(tmp_path).cells[0].outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "FileNotFoundError"
    assert f"No se encontró mlops_pipeline/src desde {tmp_path}" in errors[0].evalue
    assert "MLOPS_SRC=<repositorio>/mlops_pipeline/src" in errors[0].evalue
