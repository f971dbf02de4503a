"""Monitoring dashboard (Streamlit) over the drift history the monitoring job stores.

Run it with::

    streamlit run mlops_pipeline/src/dashboard.py

This file is the entry point: the sidebar, the cached loaders and ``main``, which loads what the
chosen page shows and hands it to that page's module (``dashboard_overview``, ``dashboard_drift``,
``dashboard_history``, ``dashboard_predictions``, ``dashboard_comparison``; ``dashboard_shared`` holds
what they share).

It reads the ``monitoring_runs`` / ``drift_results`` history and the prediction log of the store
that the settings point at (``MLOPS_CONFIG``, ``MLOPS_ARTIFACTS_DIR``, ``DATABASE_URL``); it never
recomputes drift on a rerun. Loaders are cached with a TTL and take every input as an argument.
The prediction page talks to the API at ``MLOPS_API_URL`` (default ``http://127.0.0.1:8000``),
sending ``X-API-Key`` when ``API_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

import calibration
import dashboard_comparison
import dashboard_drift
import dashboard_history
import dashboard_overview
import dashboard_predictions
import drift
import model_monitoring
import monitoring_history
import registry
import shadow
import store
from dashboard_shared import default_window, run_limits, window_label
from settings import ConfigError, MonitoringConfig, Settings, get_settings

# Cache lifetimes in seconds: the history changes once per monitoring window, the log constantly.
HISTORY_TTL = 300
LOG_TTL = 30
RECENT_LIMIT = 200

OVERVIEW = "Resumen"
DRIFT = "Deriva por variable"
OVER_TIME = "Evolución temporal"
PREDICTIONS = "Predicciones"
COMPARISON = "Comparación de modelos"
PAGES = (OVERVIEW, DRIFT, OVER_TIME, PREDICTIONS, COMPARISON)
SIMULATE = "`python mlops_pipeline/src/model_monitoring.py simulate`"
EMPTY_STORE_MESSAGE = (
    f"Todavía no hay historial de monitoreo. Genere tráfico simulado con {SIMULATE}, o envíe "
    "predicciones a la API y pulse **Ejecutar monitoreo ahora** en la barra lateral."
)
NO_MODEL_MESSAGE = (
    "Todavía no hay ningún modelo entrenado ni historial de monitoreo. Entrene con "
    "`python mlops_pipeline/src/model_training_evaluation.py` y después genere tráfico simulado con "
    f"{SIMULATE} (o envíe predicciones a la API)."
)
NO_RUNS_MESSAGE = (
    "Hay predicciones registradas pero ningún monitoreo para esta versión del modelo: pulse "
    "**Ejecutar monitoreo ahora** en la barra lateral "
    "(o `python mlops_pipeline/src/model_monitoring.py run --backfill`)."
)


@dataclass(frozen=True)
class Controls:
    """What the sidebar selected."""

    page: str
    version: str | None
    monitored: bool  # the version has monitoring history (perhaps outside the date range)
    run: dict | None  # the chosen window's run (``monitoring_history.RUN_COLUMNS``)
    run_now: bool


# ----------------------------------------------------------------------------- cached loaders
@st.cache_resource
def get_engine(db_url: str) -> Engine:
    """One engine per store URL for the whole server; creates missing tables (never drops)."""
    return store.open_store(db_url)


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_runs(db_url: str, model_version: str | None = None) -> pd.DataFrame:
    """Every monitoring run (of one version), oldest window first."""
    return monitoring_history.read_runs(get_engine(db_url), model_version)


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_history(db_url: str, model_version: str) -> pd.DataFrame:
    """The per-feature drift results of every window of one version."""
    return monitoring_history.read_drift_history(get_engine(db_url), model_version=model_version)


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_changes(
    db_url: str, model_version: str, run_ids: tuple[int, ...], windows: int, p_value: float
) -> pd.DataFrame:
    """The drift history of the runs ``run_ids`` with the trend and jump flags of
    ``calibration.detect_changes``."""
    history = load_history(db_url, model_version)
    return calibration.detect_changes(history[history["run_id"].isin(run_ids)], windows, p_value)


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_time_range(db_url: str, model_version: str | None = None) -> tuple:
    """First and last prediction time in the log (None, None when it is empty)."""
    return store.prediction_time_range(get_engine(db_url), model_version)


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_recent_predictions(db_url: str, model_version: str, limit: int = RECENT_LIMIT) -> pd.DataFrame:
    """The latest ``limit`` predictions of a version with their feedback, newest first."""
    recent = store.recent_predictions(get_engine(db_url), model_version, limit)
    return recent.drop(columns=["request_id", "model_version"]).reset_index(drop=True)


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_comparisons(db_url: str) -> pd.DataFrame:
    """Every stored shadow comparison, newest first."""
    return shadow.read_comparisons(get_engine(db_url))


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_promotions(db_url: str) -> pd.DataFrame:
    """The promotion audit, newest first."""
    return shadow.read_promotions(get_engine(db_url))


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_window_sample(
    db_url: str,
    models_dir: str,
    version: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    size: int,
    seed: int,
    bins: int,
) -> pd.DataFrame:
    """The same sample of a window the monitoring job drew, cleaned as the job cleans it."""
    sample, _ = store.sample_predictions(
        get_engine(db_url), start, end, size, seed=seed, model_version=version
    )
    if sample.empty:
        return sample
    profile = drift.load_or_build_profile(Path(models_dir), version, bins)
    metadata = registry.load_metadata(Path(models_dir), version)
    return drift.clean_current(sample, profile, metadata)


def window_sample(db_url: str, models_dir: str, monitoring: MonitoringConfig, run: Mapping) -> pd.DataFrame:
    """`load_window_sample` of a run's window with the configured sample size, seed and bins."""
    return load_window_sample(
        db_url,
        models_dir,
        run["model_version"],
        run["window_start"],
        run["window_end"],
        monitoring.sample_size,
        monitoring.seed,
        monitoring.bins,
    )


@st.cache_data(show_spinner=False)
def load_reference(models_dir: str, version: str) -> pd.DataFrame | None:
    """The version's saved reference sample, or None when the version is not on disk."""
    try:
        return registry.load_reference(Path(models_dir), version)
    except (registry.ModelNotFoundError, FileNotFoundError):
        return None


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_metadata(models_dir: str, version: str) -> registry.ModelMetadata | None:
    """A version's metadata, or None when it is not on disk."""
    try:
        return registry.load_metadata(Path(models_dir), version)
    except (registry.ModelNotFoundError, FileNotFoundError):
        return None


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_versions(models_dir: str) -> tuple[list[str], str | None]:
    """Saved versions and the champion."""
    return registry.list_versions(Path(models_dir)), registry.champion_version(Path(models_dir))


def run_monitoring(settings: Settings, version: str) -> int:
    """Run the monitoring job over the whole log of a version, window by window (as
    ``model_monitoring.py run --backfill``); returns the number of windows stored."""
    engine = get_engine(settings.db_url)
    return len(
        model_monitoring.run_backfill(engine, settings.models_dir, settings.config.monitoring, version)
    )


# ----------------------------------------------------------------------------- sidebar
def page_ui() -> str:
    return st.sidebar.radio("Página", PAGES, key="page")


def version_ui(versions: list[str], default: str | None) -> str | None:
    """Model version to watch (default: the champion, else the latest monitored one)."""
    if not versions:
        return None
    index = versions.index(default) if default in versions else len(versions) - 1
    return st.sidebar.selectbox("Versión del modelo", versions, index=index, key="version")


def date_range_ui(runs: pd.DataFrame, version: str | None) -> tuple[date | None, date | None]:
    """Date range of the windows to show (default: all of them); one widget per model version."""
    if runs.empty:
        return None, None
    first, last = runs["window_start"].min().date(), runs["window_start"].max().date()
    chosen = st.sidebar.date_input(
        "Rango de fechas",
        (first, last),
        min_value=first,
        max_value=last,
        format="DD/MM/YYYY",
        key=f"dates_{version}",
    )
    chosen = tuple(chosen) if isinstance(chosen, (tuple, list)) else (chosen,)
    return (chosen[0], chosen[-1]) if chosen else (first, last)


def window_ui(runs: pd.DataFrame, version: str | None) -> int | None:
    """Monitoring window to inspect (default: ``default_window``, the latest complete one with a
    verdict); one widget per model version."""
    if runs.empty:
        return None
    labels = {int(run["id"]): window_label(run) for run in runs.to_dict("records")}
    options = list(labels)
    index = options.index(default_window(runs))
    return st.sidebar.selectbox(
        "Ventana", options, index=index, format_func=labels.get, key=f"window_{version}"
    )


def sidebar_ui(db_url: str, models_dir: str) -> tuple[Controls, pd.DataFrame]:
    """Page, model version, date range and window; returns them with the version's runs in range."""
    page = page_ui()
    all_runs = load_runs(db_url)
    saved, champion = load_versions(models_dir)
    monitored_versions = set(all_runs["model_version"])
    versions = sorted(set(saved) | monitored_versions)
    default = (
        champion if champion in monitored_versions or all_runs.empty else all_runs["model_version"].iloc[-1]
    )
    version = version_ui(versions, default)
    runs = all_runs[all_runs["model_version"] == version]
    start, end = date_range_ui(runs, version)
    if start is not None:
        days = runs["window_start"].dt.date
        runs = runs[(days >= start) & (days <= end)]
    run_id = window_ui(runs, version)
    run = next((r for r in runs.to_dict("records") if r["id"] == run_id), None)
    st.sidebar.divider()
    run_now = st.sidebar.button(
        "Ejecutar monitoreo ahora",
        disabled=version is None,
        key="run_now",
        help="Calcula la deriva de cada ventana del registro de predicciones y guarda el historial.",
    )
    return Controls(page, version, version in monitored_versions, run, run_now), runs.reset_index(drop=True)


# ----------------------------------------------------------------------------- pages
def run_thresholds(run: Mapping, monitoring: MonitoringConfig) -> Mapping:
    """The thresholds a run was judged with (as it stored them), else the configured ones."""
    return (run["summary"] or {}).get("thresholds") or monitoring.thresholds


def window_rows(settings: Settings, run: Mapping) -> tuple[pd.DataFrame, Mapping]:
    """A run's drift rows and the limits they were judged by (``run_limits``)."""
    history = load_history(settings.db_url, run["model_version"])
    limits = run_limits(run["summary"], run_thresholds(run, settings.config.monitoring))
    return history[history["run_id"] == run["id"]], limits


def show_drift(settings: Settings, run: Mapping) -> None:
    """The drift page of a window: its drift rows, the version's reference and the window's sample."""
    db_url, models_dir, version = settings.db_url, str(settings.models_dir), run["model_version"]
    metadata, reference = load_metadata(models_dir, version), load_reference(models_dir, version)
    on_disk = metadata is not None and reference is not None
    sample = window_sample(db_url, models_dir, settings.config.monitoring, run) if on_disk else pd.DataFrame()
    window, limits = window_rows(settings, run)
    dashboard_drift.drift_page(run, window, limits, metadata, reference, sample)


def show_over_time(settings: Settings, runs: pd.DataFrame) -> None:
    """The over-time page of the windows in range: their history with its trend and jump marks."""
    monitoring, version = settings.config.monitoring, runs["model_version"].iloc[-1]
    thresholds = run_thresholds(runs.iloc[-1], monitoring)
    changes = load_changes(
        settings.db_url, version, tuple(runs["id"]), monitoring.trend_windows, monitoring.change_p_value
    )
    metadata = load_metadata(str(settings.models_dir), version)
    dashboard_history.over_time_page(changes, runs, thresholds, monitoring.p_value, metadata)


def show_predictions(settings: Settings, version: str, run: Mapping | None) -> None:
    """The predictions page of a version, with the chosen window's sample when there is one."""
    db_url, models_dir = settings.db_url, str(settings.models_dir)
    metadata = load_metadata(models_dir, version)
    has_window = run is not None and metadata is not None
    sample = (
        window_sample(db_url, models_dir, settings.config.monitoring, run) if has_window else pd.DataFrame()
    )
    recent = load_recent_predictions(db_url, version)
    api = dashboard_predictions.api_settings(settings)
    stored = dashboard_predictions.predictions_page(
        version, metadata, recent, load_reference(models_dir, version), sample, api
    )
    if stored:  # the table above was drawn before the API stored it: draw the page again
        load_recent_predictions.clear()
        st.rerun()


def empty_message(db_url: str, controls: Controls) -> str:
    """What to tell the user when there is no window to show."""
    if controls.monitored:
        return "No hay ventanas monitoreadas en el rango de fechas elegido."
    first, _ = load_time_range(db_url, controls.version)
    return NO_RUNS_MESSAGE if first is not None else EMPTY_STORE_MESSAGE


def show_page(settings: Settings, controls: Controls, runs: pd.DataFrame) -> None:
    """Load what the chosen page shows and draw it."""
    st.header(controls.page)
    if controls.page == PREDICTIONS:
        show_predictions(settings, controls.version, controls.run)
    elif controls.page == COMPARISON:
        dashboard_comparison.comparison_page(
            load_comparisons(settings.db_url), load_promotions(settings.db_url)
        )
    elif controls.run is None:
        st.info(empty_message(settings.db_url, controls))
    elif controls.page == OVERVIEW:
        metadata = load_metadata(str(settings.models_dir), controls.version)
        window, limits = window_rows(settings, controls.run)
        dashboard_overview.overview_page(controls.run, window, limits, metadata)
    elif controls.page == DRIFT:
        show_drift(settings, controls.run)
    else:
        show_over_time(settings, runs)


def run_now(settings: Settings, version: str) -> None:
    """The sidebar button: monitor every window of the version, then reload with fresh caches."""
    with st.spinner("Ejecutando el monitoreo..."):
        try:
            run_monitoring(settings, version)
        except (registry.ModelNotFoundError, ValueError) as exc:
            st.sidebar.error(f"No se pudo ejecutar el monitoreo: {exc}")
            return
    st.cache_data.clear()
    st.rerun()


def main() -> None:
    """The dashboard: a sidebar with the page and the controls, then the chosen page."""
    st.set_page_config(page_title="Monitoreo del modelo", page_icon="🚦", layout="wide")
    st.title("Monitoreo del modelo")
    try:
        settings = get_settings()
        db_url, models_dir = settings.db_url, str(settings.models_dir)
    except (ConfigError, ValueError) as exc:
        st.error(f"Error de configuración: {exc}")
        return
    controls, runs = sidebar_ui(db_url, models_dir)
    if controls.version is None:
        st.info(NO_MODEL_MESSAGE)
        return
    if controls.run_now:
        run_now(settings, controls.version)
    show_page(settings, controls, runs)


def _launch(argv: list[str]) -> None:
    """``python dashboard.py [streamlit options]`` outside Streamlit becomes ``streamlit run`` here."""
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(Path(__file__).resolve()), *argv])


if __name__ == "__main__":
    if st.runtime.exists():
        main()
    else:
        _launch(sys.argv[1:])
