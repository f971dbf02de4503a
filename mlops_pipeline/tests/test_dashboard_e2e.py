"""End to end: the real API and the real dashboard in their own processes, driven by headless Chromium
over a store filled by ``simulate`` + ``run --backfill`` + ``compare`` (the CLI), plus a few
predictions sent to the API today, as a student trying ``curl`` would."""

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

import httpx
import pytest

import dashboard
import model_monitoring
import monitoring_history
import registry
import store
from conftest import (
    REPO_ROOT,
    api_env,
    browser_path,
    free_port,
    require,
    start_api,
    stop_process,
    wait_until_healthy,
)
from settings import Settings

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


def simulate_and_backfill(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``simulate`` (8 days, drift from day 6 on the default scenario) and ``run --backfill`` through
    the CLI; the simulated drifted features."""
    monkeypatch.setenv("MLOPS_CONFIG", str(settings.mlops_config))
    simulate = ["simulate", "--days", "8", "--rows-per-day", "300", "--drift-start", "6"]
    assert model_monitoring.main(simulate) == 0
    assert model_monitoring.main(["run", "--backfill"]) == 0
    engine = store.create_db_engine(settings.db_url)
    last = monitoring_history.read_runs(engine).iloc[-1]["summary"]
    return sorted(f for f, status in last["features"].items() if status == "red" and not f.startswith("__"))


@pytest.mark.e2e
def test_every_page_opens_on_the_simulated_drift_and_sends_a_prediction(
    trained_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = browser_path()
    require(executable is not None, "no Chromium: apt-get install chromium (or playwright install chromium)")
    drifted = simulate_and_backfill(trained_settings, monkeypatch)
    assert len(drifted) == 4, drifted
    dummy = next(v for v in registry.list_versions(trained_settings.models_dir) if v.endswith("-dummy"))
    assert model_monitoring.main(["compare", "--challenger", dummy, "--resamples", "100"]) == 0

    with (
        start_api(trained_settings) as api_url,
        start_dashboard(trained_settings, api_url) as url,
        sync_playwright() as pw,
    ):
        example = {f.name: f.example for f in registry.load_metadata(trained_settings.models_dir).features}
        for _ in range(3):  # today's window: a few hand-sent predictions, then monitored (too few to judge)
            httpx.post(f"{api_url}/predict", json=example, timeout=30).raise_for_status()
        assert model_monitoring.main(["run"]) == 0
        assert (
            monitoring_history.read_runs(store.create_db_engine(trained_settings.db_url))["status"].iloc[-1]
            == "insufficient_data"
        )
        browser = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1900},
        )
        try:
            page = browser.new_page()
            page.goto(url)
            expect(page.get_by_text("Semáforo general: ROJO")).to_be_visible(timeout=60_000)
            red_line = page.locator("p").filter(has=page.get_by_text("Rojo", exact=True))
            for feature in drifted:
                expect(red_line.filter(has_text=feature)).to_be_visible()
                expect(page.locator(".js-plotly-plot .ytick").filter(has_text=feature)).to_have_count(1)
            expect(page.get_by_text("Alertas", exact=True)).to_be_visible()
            page.wait_for_timeout(500)
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            save_artifact(screenshot)
            assert screenshot.stat().st_size > 20_000

            page.get_by_text("Deriva por variable", exact=True).click()
            expect(page.get_by_text("Referencia vs ventana actual", exact=True)).to_be_visible(timeout=30_000)
            for feature in drifted:  # the risk chart of the default window, drawn as SVG text
                expect(page.locator(".js-plotly-plot .ytick").filter(has_text=feature)).to_have_count(1)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "dashboard_drift.png"), full_page=True)
            save_artifact(tmp_path / "dashboard_drift.png")

            page.get_by_text("Evolución temporal", exact=True).click()
            expect(page.get_by_text("Estado por variable y ventana")).to_be_visible(timeout=30_000)
            riskiest = page.locator(".js-plotly-plot .gtitle").filter(has_text=re.compile("Evolución de"))
            expect(riskiest).to_contain_text(re.compile("|".join(drifted)), timeout=30_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "dashboard_history.png"), full_page=True)
            save_artifact(tmp_path / "dashboard_history.png")

            page.get_by_text("Comparación de modelos", exact=True).click()
            expect(page.get_by_text("El retador es peor en roc_auc", exact=False)).to_be_visible(
                timeout=30_000
            )
            expect(page.get_by_text("Nadie ha promovido un modelo")).to_be_visible()
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "dashboard_comparison.png"), full_page=True)
            save_artifact(tmp_path / "dashboard_comparison.png")

            page.get_by_text("Predicciones", exact=True).click()
            page.get_by_label("Seniority").fill("0")  # the form starts at the typical case: no reasons
            page.get_by_role("button", name="Predecir").click()
            expect(page.get_by_text("Id de la predicción")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Por qué", exact=True)).to_be_visible()  # the reasons, in Spanish
            reasons = page.locator("li").filter(has_text=re.compile(r": [+-]\d\.\d\d \(empuja hacia «"))
            expect(reasons).to_have_count(1)
            expect(reasons).to_have_text(re.compile(r"^Seniority = 0: \+\d\.\d\d \(empuja hacia «bad»\)$"))
            prediction_id = re.search(
                r"predicción: ([\w-]+)", page.get_by_text("Id de la predicción").inner_text()
            )[1]
            page.get_by_role("button", name="Enviar resultado real").click()
            stored = page.get_by_text("registrado para la predicción")
            expect(stored).to_be_visible(timeout=30_000)
            actual = re.search(r"«(.+)» registrado", stored.inner_text())[1]
        finally:
            browser.close()
    logged = store.read_predictions(store.create_db_engine(trained_settings.db_url)).set_index("id")
    assert logged.loc[prediction_id, "actual"] == actual
