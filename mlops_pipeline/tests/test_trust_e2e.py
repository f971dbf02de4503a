"""Inputs the service can trust (issue #15), against a real uvicorn process on SQLite and PostgreSQL:
a held database lock, concurrent feedback, several workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

import store
from conftest import REPO_ROOT, api_env, free_port, start_api, wait_until_healthy

pytestmark = pytest.mark.e2e
LOCK_SECONDS = 10


@pytest.fixture
def one(trained_settings) -> dict:
    frame = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status").head(1)
    return json.loads(frame.to_json(orient="records"))[0]


@contextmanager
def held_write_lock(db_url: str, seconds: float):
    """Hold the log's write lock from another connection for ``seconds`` (in a thread)."""
    engine = store.create_db_engine(db_url)
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("BEGIN")
                connection.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            locked.set()
            done.wait(seconds)
            connection.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        done.set()
        thread.join()
        engine.dispose()


def test_health_answers_while_the_store_is_locked(trained_settings, db_url, one) -> None:
    """Case 3: a 10-second lock on the log: /health answers within 1 s throughout, /ready and
    /predict answer 503 with Retry-After once the timeouts pass, and the service recovers."""
    env = {"DB_CONNECT_TIMEOUT": "2", "DB_STATEMENT_TIMEOUT": "2"}
    with (
        start_api(trained_settings, db_url, **env) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        assert client.post("/predict", json=one).status_code == 200  # connections open, tables there
        with held_write_lock(db_url, LOCK_SECONDS), ThreadPoolExecutor(2) as pool:
            blocked = [pool.submit(client.post, "/predict", json=one) for _ in range(2)]
            for _ in range(5):
                assert client.get("/health", timeout=1).status_code == 200  # a timeout fails the test
            results = [future.result() for future in blocked]
        for response in results:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] and "unavailable" in response.json()["detail"]
        assert client.post("/predict", json=one).status_code == 200
        assert client.get("/ready").json() == {"status": "ready", "store": "ok"}


def test_concurrent_feedback_for_the_same_ids_never_collides(trained_settings, db_url, one) -> None:
    """Case 5: 120 concurrent feedback requests over the same ids all succeed (an upsert)."""
    with start_api(trained_settings, db_url) as base, httpx.Client(base_url=base, timeout=60) as client:
        ids = [p["id"] for p in client.post("/predict", json=[one] * 5).json()["predictions"]]

        def send(n: int) -> int:
            items = [{"prediction_id": i, "actual": "bad" if n % 2 else "good"} for i in ids]
            return httpx.post(f"{base}/feedback", json=items, timeout=60).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(120)))
    assert statuses == [200] * 120
    engine = store.create_db_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.feedback)).scalar() == 5
    engine.dispose()


def test_serve_with_two_workers_becomes_healthy(trained_settings, db_url, one) -> None:
    """Case 11: ``serve --workers 2`` starts through the app factory with a worker start timeout
    longer than the imports take."""
    command = [
        sys.executable, str(REPO_ROOT / "mlops_pipeline" / "src" / "model_deploy.py"), "serve",
        "--port", "{port}", "--workers", "2",
    ]  # fmt: skip
    with start_api(trained_settings, db_url, command=command) as base:
        with httpx.Client(base_url=base, timeout=30) as client:
            assert all(client.post("/predict", json=one).status_code == 200 for _ in range(6))


def test_kill_9_under_load_loses_no_answered_prediction(trained_settings, db_url, one, tmp_path) -> None:
    """Every prediction answered 2xx before the server is killed with SIGKILL is stored exactly once."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "model_deploy:app",
        "--app-dir", str(REPO_ROOT / "mlops_pipeline" / "src"), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - read after the process dies
    process = subprocess.Popen(
        command, env=api_env(trained_settings, db_url), stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    try:
        wait_until_healthy(process, base, lambda: log.seek(0) or log.read())

        def client_loop(_: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                while process.poll() is None:
                    try:
                        response = client.post("/predict", json=[one] * 3)
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        answered.extend(p["id"] for p in response.json()["predictions"])

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client_loop, n) for n in range(8)]
            while len(answered) < 300:
                threading.Event().wait(0.05)
            process.send_signal(signal.SIGKILL)
            for future in futures:
                future.result()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()
    engine = store.create_db_engine(db_url)
    stored = store.read_predictions(engine)["id"]
    engine.dispose()
    assert stored.is_unique and set(answered) <= set(stored)
