"""Shared fixtures: small configs and data built in temporary folders, never the repo's artifacts."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from uuid import uuid4

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

import store
from model_monitoring import monitored_version
from model_training_evaluation import TrainingResult, train
from settings import DEFAULT_CONFIG, Settings, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Write artifacts and MLflow runs under ``folder``; ignore the caller's deploy variables."""
    for name in ("MLOPS_CONFIG", "DATABASE_URL", "API_KEY", "MODEL_VERSION", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_ARTIFACTS_DIR", str(folder / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test writes under its own tmp folder and ignores the caller's deploy variables."""
    isolate(monkeypatch, tmp_path)


@contextmanager
def isolated(folder: Path) -> Iterator[None]:
    """``isolate`` for a session or module fixture (built before the test's ``isolated_env``)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, folder)
        yield


@pytest.fixture(scope="session")
def default_config_dict() -> dict:
    """The shipped config.yaml as a plain dict, with the data path made absolute."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["dataset"]["path"] = str(load_config(DEFAULT_CONFIG).dataset.path)
    return raw


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    """The shipped credit table, raw."""
    return pd.read_csv(REPO_ROOT / "Base_de_datos.csv")


def write_config(folder: Path, config: dict, frame: pd.DataFrame | None = None) -> Path:
    """Write ``config`` (and ``frame`` as its dataset, if given) into ``folder``; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "dataset": dict(config["dataset"])}
    if frame is not None:
        frame.to_csv(folder / "data.csv", index=False)
        config["dataset"]["path"] = "data.csv"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


TINY_TRAINING = {
    "cv_folds": 3,
    "tracking": False,
    "tuning": {"enabled": False, "top_k": 1, "trials": 1, "timeout_seconds": 5},
    "models": {
        "dummy": {},
        "logistic_regression": {"C": 1.0},
        "random_forest": {"n_estimators": 20, "min_samples_leaf": 3},
    },
}
"""The training section of the small test projects: 3 folds, 3 cheap candidates, no tuning or tracking."""


@pytest.fixture(scope="session")
def credit_sample(credit_frame: pd.DataFrame) -> pd.DataFrame:
    """600 stratified rows of the credit table."""
    return credit_frame.groupby("Status", group_keys=False).sample(
        frac=600 / len(credit_frame), random_state=0
    )


@pytest.fixture(scope="session")
def small_credit_config(
    tmp_path_factory: pytest.TempPathFactory, default_config_dict: dict, credit_sample: pd.DataFrame
) -> Path:
    """The shipped config over ``credit_sample`` with ``TINY_TRAINING``, written once per session:
    read only (a test that needs another config writes its own with ``write_config``)."""
    config = yaml.safe_load(yaml.safe_dump(default_config_dict))
    config["training"].update(TINY_TRAINING)
    config["monitoring"]["calibration_draws"] = 1000  # the no-drift limits of each version: 5x fewer draws
    return write_config(tmp_path_factory.mktemp("small_credit") / "project", config, credit_sample)


@pytest.fixture
def small_settings(small_credit_config: Path, tmp_path: Path) -> Settings:
    """Settings pointing at the small credit config and a temporary artifacts folder."""
    return Settings(mlops_config=small_credit_config, mlops_artifacts_dir=tmp_path / "artifacts")


IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
"""With ``CI=true`` (as ``.ci/run`` sets) every test is required: missing services fail, never skip."""

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def require(available: bool, missing: str) -> None:
    """Skip a test whose service is missing on a laptop, with one line saying what to install;
    fail it instead under ``CI=true``."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true requires it: {missing}")
    pytest.skip(missing)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true", help="also run the slow end-to-end tests (CI=true does)")


def pytest_collectstart(collector: pytest.Collector) -> None:
    """What is imported so far (pandas, scikit-learn, Streamlit, Dask... about a million objects)
    lives as long as the run: keep it out of the garbage collector's full passes, which would
    otherwise walk all of it again a few dozen times (seconds of CPU)."""
    gc.freeze()


FROZEN_BEFORE: set[Path] = set()
"""The test files whose first test froze the garbage collector's heap."""


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The same before each test file's first test, for what the tests before it imported
    (Streamlit's runtime, MLflow, Dask's scheduler...)."""
    if item.path not in FROZEN_BEFORE:
        FROZEN_BEFORE.add(item.path)
        gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow end-to-end tests (marker ``e2e``) run under ``CI=true`` or with ``--e2e``."""
    if IN_CI or config.getoption("--e2e"):
        return
    skip = pytest.mark.skip(reason="end-to-end test: runs with CI=true or --e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def postgres_server_url() -> str:
    """The PostgreSQL every machine here runs; `TEST_POSTGRES_URL` may point elsewhere."""
    return os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@cache
def postgres_reachable(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url`` (asked once per session, 3 s at most)."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def browser_path() -> str | None:
    """A Chromium-family browser on PATH, or the one Playwright installed, or None."""
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            path = Path(playwright.chromium.executable_path)
    except Exception:  # noqa: BLE001 - no Playwright browser is a normal laptop state
        return None
    return str(path) if path.is_file() else None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL into a fresh, private PostgreSQL schema, dropped afterwards.

    Without a server the test skips with a one-line reason (fails under ``CI=true``).
    """
    base = postgres_server_url()
    require(
        postgres_reachable(base),
        f"no PostgreSQL at {base}: start one or set TEST_POSTGRES_URL (e.g. apt-get install postgresql)",
    )
    schema = f"test_{uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs against a SQLite file and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(db_url: str):
    """An initialised prediction store on each backend."""
    engine = store.open_store(db_url)
    yield engine
    engine.dispose()


# ----------------------------------------------------------------------------- trained models
@pytest.fixture(scope="session")
def small_training_run(small_credit_config: Path) -> TrainingResult:
    """The real `model_training_evaluation.train` on the small credit project, once per session
    (a few seconds), plus the champion's drift calibration that its first monitoring run would
    build. Read only: its artifacts folder (``run_artifacts``) sits beside the project."""
    folder = small_credit_config.parents[1]
    with isolated(folder):
        settings = Settings(mlops_config=small_credit_config)
        result = train(settings)
        monitored_version(settings.models_dir, None, settings.config.monitoring)
    return result


def run_artifacts(run: TrainingResult) -> Path:
    """The artifacts folder a training run wrote (the parent of its reports folder)."""
    return run.reports["summary_csv"].parents[1]


@pytest.fixture
def trained_settings(small_settings: Settings, small_training_run: TrainingResult) -> Settings:
    """``small_settings`` whose artifacts folder holds a copy of the session's trained versions
    (``small_training_run``), so tests can change them freely."""
    shutil.copytree(run_artifacts(small_training_run), small_settings.artifacts_dir, dirs_exist_ok=True)
    return small_settings


def fast_bootstrap(settings: Settings, draws: int = 100) -> Settings:
    """The settings over a copy of their config with ``monitoring.bootstrap_draws`` at its minimum
    (fast comparisons and intervals), written in the test's folder: the small project is shared."""
    raw = yaml.safe_load(settings.mlops_config.read_text(encoding="utf-8"))
    raw["dataset"]["path"] = str(settings.config.dataset.path)
    raw.setdefault("monitoring", {})["bootstrap_draws"] = draws
    path = write_config(settings.artifacts_dir.parent / "fast_bootstrap", raw)
    return settings.model_copy(update={"mlops_config": path})


# ----------------------------------------------------------------------------- dashboard
@pytest.fixture(scope="session")
def components_scanned_once() -> Iterator[None]:
    """Each `AppTest` scans every installed package for Streamlit components (0.2 s of CPU each,
    streamlit 1.67); the installed packages do not change during a run, so scan them once."""
    from streamlit.components.v2 import manifest_scanner

    with pytest.MonkeyPatch.context() as monkeypatch:
        scan = cache(manifest_scanner.scan_component_manifests)
        monkeypatch.setattr(manifest_scanner, "scan_component_manifests", scan)
        yield


# ----------------------------------------------------------------------------- live API
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_env(settings: Settings, db_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment a server process needs to serve ``settings`` (and log to ``db_url``)."""
    env = {
        **os.environ,
        "MLOPS_CONFIG": str(settings.mlops_config),
        "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir),
    }
    if db_url:
        env["DATABASE_URL"] = db_url
    return {**env, **extra}


def wait_until_healthy(process, base_url: str, output, timeout: float = 60, path: str = "/health") -> None:
    """Poll ``path`` until it answers 200; fail with the server's ``output()`` if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server process exited with {process.returncode}:\n{output()}")
        try:
            if httpx.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{base_url}{path} did not answer 200 within {timeout} s")


@contextmanager
def start_api(
    settings: Settings, db_url: str | None = None, command: list[str] | None = None, **env: str
) -> Iterator[str]:
    """Run the prediction API in a real uvicorn process on a free local port; yield its base URL.

    Args:
        settings: whose config and artifacts (a trained model) the server uses.
        db_url: the prediction store (default: the SQLite file under the artifacts folder).
        command: the start command (default: uvicorn on ``model_deploy:app`` with ``--app-dir``);
            ``{port}`` in it is replaced by the chosen port.
        **env: extra environment variables (e.g. ``API_KEY``).
    """
    port = free_port()
    src = str(REPO_ROOT / "mlops_pipeline" / "src")
    command = command or [
        sys.executable, "-m", "uvicorn", "model_deploy:app", "--app-dir", src,
        "--host", "127.0.0.1", "--port", "{port}",
    ]  # fmt: skip
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server

    def output() -> str:
        log.seek(0)
        return log.read()

    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        env=api_env(settings, db_url, PORT=str(port), **env),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base_url, output)
        yield base_url
    finally:
        stop_process(process)
        log.close()


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server started by a test, killing it if it does not stop within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
