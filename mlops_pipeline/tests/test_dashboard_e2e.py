"""End to end: the real API and the real dashboard in their own processes, driven by headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import dashboard
import registry
import store
from conftest import REPO_ROOT, api_env, free_port, start_api, stop_process, wait_until_healthy
from settings import Settings
from test_dashboard import simulate_and_monitor

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@contextmanager
def start_dashboard(settings: Settings, api_url: str, timeout: float = 120) -> Iterator[str]:
    """``streamlit run dashboard.py`` on a free port, reading ``settings``' store; yields its URL."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    command = [
        sys.executable, "-m", "streamlit", "run", str(Path(dashboard.__file__)), "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=api_env(settings, MLOPS_API_URL=api_url),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, lambda: log.seek(0) or log.read(), timeout, path="/_stcore/health")
        yield url
    finally:
        stop_process(process)
        log.close()


def save_artifact(path: Path) -> None:
    """Copy a test artifact to ``MLOPS_TEST_ARTIFACTS`` when that variable is set."""
    target = os.environ.get("MLOPS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


@pytest.mark.e2e
def test_browser_loads_overview_with_red_traffic_light_and_sends_a_prediction(
    trained_settings: Settings, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is required: apt-get install -y chromium (.ci/run does it)"
    simulate_and_monitor(trained_settings)
    engine = store.create_db_engine(trained_settings.db_url)
    summary = store.read_runs(engine).iloc[-1]["summary"]
    red = sorted(f for f, status in summary["features"].items() if status == "red")
    assert red, summary["features"]

    with (
        start_api(trained_settings) as api_url,
        start_dashboard(trained_settings, api_url) as url,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1900},
        )
        try:
            page = browser.new_page()
            page.goto(url)
            light = page.get_by_text("Semáforo general: ROJO")
            expect(light).to_be_visible(timeout=60_000)
            red_line = (
                page.locator("p").filter(has=page.get_by_text("Rojo", exact=True)).filter(has_text=red[0])
            )
            expect(red_line).to_be_visible()
            expect(page.get_by_text("Alertas", exact=True)).to_be_visible()
            page.wait_for_timeout(500)
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            save_artifact(screenshot)
            assert screenshot.stat().st_size > 20_000

            page.get_by_text("Predicciones", exact=True).click()
            page.get_by_role("button", name="Predecir").click()
            expect(page.get_by_text("Id de la predicción")).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Enviar resultado real").click()
            stored = page.get_by_text("registrado para la predicción")
            expect(stored).to_be_visible(timeout=30_000)
            actual, prediction_id = re.search(
                r"«(.+)» registrado para la predicción ([\w-]+)", stored.inner_text()
            ).groups()
        finally:
            browser.close()
    logged = store.read_predictions(engine).set_index("id").loc[prediction_id]
    assert logged["actual"] == actual == registry.load_metadata(trained_settings.models_dir).classes[0]
