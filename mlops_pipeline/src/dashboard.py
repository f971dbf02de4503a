"""Monitoring dashboard (Streamlit) over the drift history the monitoring job stores.

Run it with::

    streamlit run mlops_pipeline/src/dashboard.py

It reads the ``monitoring_runs`` / ``drift_results`` history and the prediction log of the store
that the settings point at (``MLOPS_CONFIG``, ``MLOPS_ARTIFACTS_DIR``, ``DATABASE_URL``); it never
recomputes drift on a rerun. Loaders are cached with a TTL and take every input as an argument.
The prediction page talks to the API at ``MLOPS_API_URL`` (default ``http://127.0.0.1:8000``),
sending ``X-API-Key`` when ``API_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType

import httpx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from sqlalchemy.engine import Engine

import drift
import model_monitoring
import registry
import store
from settings import ConfigError, MonitoringConfig, Settings, get_settings

# Cache lifetimes in seconds: the history changes once per monitoring window, the log constantly.
HISTORY_TTL = 300
LOG_TTL = 30
RECENT_LIMIT = 200
DEFAULT_API_URL = "http://127.0.0.1:8000"

PAGES = ("Resumen", "Deriva por variable", "Evolución temporal", "Predicciones")
STATUS_ORDER = ("red", "yellow", "green", "no_data")
STATUS_LABELS = MappingProxyType(
    {"green": "Verde", "yellow": "Amarillo", "red": "Rojo", "no_data": "Sin datos"}
)
STATUS_BADGES = MappingProxyType({"green": "green", "yellow": "orange", "red": "red", "no_data": "gray"})
STATUS_COLORS = MappingProxyType(
    {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828", "no_data": "#9e9e9e"}
)
VERDICTS = MappingProxyType(
    {
        "green": "Sin deriva relevante: el modelo trabaja con datos parecidos a los de entrenamiento.",
        "yellow": "Deriva moderada: vigile las variables en amarillo.",
        "red": "Deriva importante: revise las alertas y recomendaciones.",
        "no_data": "Sin datos en esta ventana.",
    }
)
ACTION_LABELS = MappingProxyType(
    {
        "retrain": "Reentrenar",
        "review_feature": "Revisar variable",
        "check_pipeline": "Revisar el pipeline de datos",
    }
)
TEST_METHODS = frozenset(s.name for s in drift.STATISTICS if s.decides == "p_value")
OUTPUT_COLUMNS = frozenset({drift.SCORE_COLUMN, drift.PREDICTION_COLUMN})
MISSING_LABEL = "(faltante)"
EMPTY_STORE_MESSAGE = (
    "Todavía no hay historial de monitoreo. Genere tráfico simulado con "
    "`python mlops_pipeline/src/model_monitoring.py simulate`, o envíe predicciones a la API y "
    "pulse **Ejecutar monitoreo ahora** en la barra lateral."
)
NO_MODEL_MESSAGE = (
    "Todavía no hay ningún modelo entrenado ni historial de monitoreo. Entrene con "
    "`python mlops_pipeline/src/model_training_evaluation.py` y después genere tráfico simulado con "
    "`python mlops_pipeline/src/model_monitoring.py simulate` (o envíe predicciones a la API)."
)
NO_PREDICTIONS_MESSAGE = (
    "No hay predicciones registradas para esta versión: use el formulario de abajo, envíe tráfico a la "
    "API o simúlelo con `python mlops_pipeline/src/model_monitoring.py simulate`."
)
NO_RUNS_MESSAGE = (
    "Hay predicciones registradas pero ningún monitoreo para esta versión del modelo: pulse "
    "**Ejecutar monitoreo ahora** en la barra lateral (o `python mlops_pipeline/src/model_monitoring.py run --backfill`)."
)


@dataclass(frozen=True)
class Controls:
    """What the sidebar selected."""

    page: str
    version: str | None
    monitored: bool  # the version has monitoring history (perhaps outside the date range)
    run: dict | None  # the chosen window's run (``store.RUN_COLUMNS``)
    run_now: bool


# ----------------------------------------------------------------------------- plain logic
def traffic_light(summary: Mapping) -> tuple[str, dict[str, int]]:
    """Overall status of a monitoring window and how many input features are in each status.

    The overall status is the one the monitoring job decided (the worst status over the features
    and the model output, red when the model's metrics dropped below their test values).

    Args:
        summary: a run's ``summary`` (``status``, ``features``: {feature: status}).

    Returns:
        (status, counts): status is green / yellow / red / no_data; counts maps green, yellow,
        red and no_data to the number of input features (the model output is not counted).
    """
    statuses = dict(summary.get("features") or {})
    overall = summary.get("status") or drift.worst_status(list(statuses.values()))
    inputs = [status for feature, status in statuses.items() if feature not in OUTPUT_COLUMNS]
    return overall, {status: inputs.count(status) for status in ("green", "yellow", "red", "no_data")}


def risk_ratio(rows: pd.DataFrame, thresholds: Mapping[str, Iterable[float]]) -> float:
    """A feature's risk: its largest effect size as a share of that statistic's red threshold
    (1.0 means it reached red); NaN when no effect size was computed."""
    red = {method: float(tuple(limits)[1]) for method, limits in thresholds.items()}
    ratios = [
        value / red[method]
        for method, value in zip(rows["method"], rows["statistic"], strict=True)
        if red.get(method, 0) > 0 and pd.notna(value)
    ]
    return float(max(ratios)) if ratios else float("nan")


def feature_table(window: pd.DataFrame, thresholds: Mapping[str, Iterable[float]]) -> pd.DataFrame:
    """One row per feature of a window's drift rows: status, risk, each statistic and each test's p-value.

    Columns: ``feature``, ``status``, ``risk``, then one column per method (its statistic) and
    ``<method>_p`` for the tests; sorted from the riskiest feature down.
    """
    if window.empty:
        return pd.DataFrame(columns=["feature", "status", "risk"])
    per_feature = drift.feature_status(window).set_index("feature")
    values = window.pivot_table(
        index="feature", columns="method", values="statistic", aggfunc="first", dropna=False
    )
    p_values = window[window["method"].isin(TEST_METHODS)].pivot_table(
        index="feature", columns="method", values="p_value", aggfunc="first", dropna=False
    )
    methods = [s.name for s in drift.STATISTICS if s.name in values.columns]
    table = values[methods].join(p_values.add_suffix("_p"))
    risk = {feature: risk_ratio(rows, thresholds) for feature, rows in window.groupby("feature")}
    table.insert(0, "risk", table.index.map(risk))
    table.insert(0, "status", per_feature["status"].reindex(table.index))
    severity = table["status"].map({s: i for i, s in enumerate(STATUS_ORDER)})
    table = table.assign(_severity=severity).sort_values(
        ["_severity", "risk"], ascending=[True, False], na_position="last"
    )
    return table.drop(columns="_severity").rename_axis("feature").reset_index()


def category_shares(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Share of each category (missing as ``MISSING_LABEL``) in the reference and the current window.

    Returns:
        Columns ``category``, ``reference``, ``current``, ``unseen`` (a category the reference
        never had); reference categories first.
    """
    ref = (
        reference.astype("object")
        .where(reference.notna(), MISSING_LABEL)
        .astype(str)
        .value_counts(normalize=True)
    )
    cur = (
        current.astype("object")
        .where(current.notna(), MISSING_LABEL)
        .astype(str)
        .value_counts(normalize=True)
    )
    categories = [*ref.index, *[c for c in cur.index if c not in ref.index]]
    return pd.DataFrame(
        {
            "category": categories,
            "reference": ref.reindex(categories, fill_value=0.0).to_numpy(),
            "current": cur.reindex(categories, fill_value=0.0).to_numpy(),
            "unseen": [c not in ref.index and c != MISSING_LABEL for c in categories],
        }
    )


def shares(reference: pd.Series, current: pd.Series, kind: str) -> dict[str, float]:
    """Missing share of both samples, and the current share unseen (categorical) or outside the
    reference range (numeric)."""
    out = {
        "missing_reference": float(reference.isna().mean()) if len(reference) else float("nan"),
        "missing_current": float(current.isna().mean()) if len(current) else float("nan"),
    }
    present = current.dropna()
    if kind == "numeric":
        ref = pd.to_numeric(reference, errors="coerce").dropna()
        values = pd.to_numeric(present, errors="coerce")
        outside = (
            ((values < ref.min()) | (values > ref.max())).mean() if len(values) and len(ref) else float("nan")
        )
        out["outside_current"] = float(outside)
    else:
        known = set(reference.dropna().astype(str))
        out["outside_current"] = (
            float((~present.astype(str).isin(known)).mean()) if len(present) else float("nan")
        )
    return out


def performance_history(runs: pd.DataFrame) -> pd.DataFrame:
    """The model's metrics per window where feedback allowed computing them (long format:
    ``window_start``, ``metric``, ``value``, ``n_feedback``)."""
    rows = [
        {
            "window_start": run.window_start,
            "metric": metric,
            "value": float(value),
            "n_feedback": run.summary.get("n_feedback"),
        }
        for run in runs.itertuples()
        for metric, value in ((run.summary or {}).get("performance") or {}).items()
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["window_start", "metric", "value", "n_feedback"])


def metric_panels(performance: pd.DataFrame, unit_scale: float = 1.5) -> list[list[str]]:
    """Metrics grouped into plot panels: those on a 0-1 scale (accuracy, ROC-AUC, R², MAPE...) share
    one; each other metric (an error in the target's units, such as MAE or RMSE) gets its own."""
    largest = performance.groupby("metric", sort=False)["value"].apply(lambda v: v.abs().max())
    shared = [metric for metric, value in largest.items() if value <= unit_scale]
    return ([shared] if shared else []) + [
        [metric] for metric, value in largest.items() if value > unit_scale
    ]


def feature_kinds(metadata: registry.ModelMetadata) -> dict[str, str]:
    """``numeric`` or ``categorical`` for each input feature and the model output columns."""
    categorical, numerical = drift.feature_roles(metadata)
    kinds = {name: "categorical" for name in categorical} | {name: "numeric" for name in numerical}
    return kinds | {drift.SCORE_COLUMN: "numeric", drift.PREDICTION_COLUMN: "categorical"}


def holdout_metrics(metadata: registry.ModelMetadata | None) -> dict[str, float]:
    """A version's test-set metrics from its metadata ({} when unknown)."""
    return metadata.test_metrics if metadata else {}


def window_label(run: Mapping) -> str:
    """How a monitoring window is named in the selector (with its traffic-light color)."""
    start, end = pd.Timestamp(run["window_start"]), pd.Timestamp(run["window_end"])
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC · {status_text(traffic_light(run['summary'] or {})[0])}"


def status_text(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def status_badge(status: str) -> str:
    """A status as a colored Streamlit-markdown badge."""
    return f":{STATUS_BADGES.get(status, 'gray')}-badge[{status_text(status)}]"


def api_settings(settings: Settings) -> tuple[str, dict[str, str]]:
    """The API base URL (``MLOPS_API_URL``) and the headers to send (``X-API-Key`` when configured)."""
    url = os.environ.get("MLOPS_API_URL", DEFAULT_API_URL).rstrip("/")
    key = settings.effective_api_key
    return url, ({"X-API-Key": key} if key else {})


def send_prediction(url: str, headers: Mapping[str, str], record: Mapping, version: str | None) -> dict:
    """POST one record to ``/predict``; returns its prediction (id, prediction, score...).

    Raises:
        RuntimeError: with a message for the user when the API cannot be reached or refuses.
    """
    params = {"model": version} if version else {}
    body = _api_call("post", f"{url}/predict", headers, json=dict(record), params=params)
    return body["predictions"][0]


def send_feedback(url: str, headers: Mapping[str, str], prediction_id: str, actual: object) -> int:
    """POST the true outcome of one prediction to ``/feedback``; returns how many were stored."""
    body = _api_call(
        "post", f"{url}/feedback", headers, json=[{"prediction_id": prediction_id, "actual": actual}]
    )
    return int(body["stored"])


def _api_call(method: str, url: str, headers: Mapping[str, str], **kwargs) -> dict:
    try:
        response = httpx.request(method, url, headers=dict(headers), timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"No se pudo conectar con la API en {url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise RuntimeError(f"La API respondió {response.status_code}: {detail}")
    return response.json()


# ----------------------------------------------------------------------------- cached loaders
@st.cache_resource
def get_engine(db_url: str) -> Engine:
    """One engine per store URL for the whole server; creates missing tables (never drops)."""
    return store.open_store(db_url)


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_runs(db_url: str, model_version: str | None = None) -> pd.DataFrame:
    """Every monitoring run (of one version), oldest window first."""
    return store.read_runs(get_engine(db_url), model_version)


@st.cache_data(ttl=HISTORY_TTL, show_spinner=False)
def load_history(db_url: str, model_version: str) -> pd.DataFrame:
    """The per-feature drift results of every window of one version."""
    return store.read_drift_history(get_engine(db_url), model_version=model_version)


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_time_range(db_url: str, model_version: str | None = None) -> tuple:
    """First and last prediction time in the log (None, None when it is empty)."""
    return store.prediction_time_range(get_engine(db_url), model_version)


@st.cache_data(ttl=LOG_TTL, show_spinner=False)
def load_recent_predictions(db_url: str, model_version: str, limit: int = RECENT_LIMIT) -> pd.DataFrame:
    """The latest ``limit`` predictions of a version with their feedback, newest first."""
    recent = store.recent_predictions(get_engine(db_url), model_version, limit)
    return recent.drop(columns=["request_id", "model_version"]).reset_index(drop=True)


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
def load_metadata(models_dir: str, version: str) -> dict | None:
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


# ----------------------------------------------------------------------------- widgets
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
        "Rango de fechas", (first, last), min_value=first, max_value=last, key=f"dates_{version}"
    )
    chosen = tuple(chosen) if isinstance(chosen, (tuple, list)) else (chosen,)
    return (chosen[0], chosen[-1]) if chosen else (first, last)


def window_ui(runs: pd.DataFrame, version: str | None) -> int | None:
    """Monitoring window to inspect (default: the latest); one widget per model version."""
    if runs.empty:
        return None
    labels = {int(run["id"]): window_label(run) for run in runs.to_dict("records")}
    options = list(labels)
    return st.sidebar.selectbox(
        "Ventana", options, index=len(options) - 1, format_func=labels.get, key=f"window_{version}"
    )


def feature_ui(features: list[str], label: str, key: str) -> str | None:
    if not features:
        return None
    return st.selectbox(label, features, format_func=model_monitoring.feature_label, key=key)


def prediction_form_ui(features: list[dict]) -> dict | None:
    """A form with one input per model feature (from the metadata); the record when submitted."""
    with st.form("prediction_form"):
        st.markdown("Complete los datos de un caso (vacío = faltante) y envíelo a la API.")
        columns = st.columns(3)
        record = {}
        for i, feature in enumerate(features):
            with columns[i % 3]:
                record[feature.name] = _feature_input(feature)
        submitted = st.form_submit_button("Predecir")
    return record if submitted else None


def _feature_input(feature: dict) -> object:
    name, example = feature.name, feature.example
    if feature.kind == "numeric":
        value = example if isinstance(example, (int, float)) and not pd.isna(example) else None
        step = 1.0 if feature.dtype == "integer" else None
        number = st.number_input(
            name, value=None if value is None else float(value), step=step, key=f"form_{name}"
        )
        return (
            None if number is None else (int(number) if feature.dtype == "integer" else float(number))
        )
    options = ["", *[str(c) for c in feature.categories or []]]
    index = options.index(str(example)) if example is not None and str(example) in options else 0
    choice = st.selectbox(name, options, index=index, key=f"form_{name}")
    return choice or None


def feedback_ui(metadata: registry.ModelMetadata, prediction: Mapping) -> object | None:
    """A form for the true outcome of the last prediction; the value when submitted."""
    with st.form("feedback_form"):
        st.markdown(f"Resultado real de la predicción `{prediction['id']}`")
        if metadata.task == "classification":
            actual = st.selectbox(
                "Resultado real", [str(c) for c in metadata.classes], key="feedback_actual"
            )
        else:
            actual = st.number_input(
                "Valor real", value=float(prediction["prediction"]), key="feedback_actual"
            )
        submitted = st.form_submit_button("Enviar resultado real")
    return actual if submitted else None


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


# ----------------------------------------------------------------------------- drawing
def draw_traffic_light(
    status: str, counts: Mapping[str, int], run: Mapping, output_status: str | None
) -> None:
    """The overall traffic light (the lit lamp is the status), the verdict and the counts."""
    color = STATUS_COLORS.get(status, STATUS_COLORS["no_data"])
    lamps = "".join(
        f'<span style="display:inline-block;width:2.2rem;height:2.2rem;border-radius:50%;margin:0 .25rem;'
        f"background:{STATUS_COLORS[lamp]};opacity:{1 if lamp == status else 0.18};"
        f'box-shadow:{"0 0 12px " + STATUS_COLORS[lamp] if lamp == status else "none"}"></span>'
        for lamp in ("red", "yellow", "green")
    )
    st.markdown(
        f'<div id="semaforo" style="display:flex;align-items:center;gap:1.25rem;border:3px solid {color};'
        f'border-radius:14px;padding:.9rem 1.4rem">'
        f'<div style="background:#263238;border-radius:2rem;padding:.45rem .4rem;white-space:nowrap">{lamps}</div>'
        f'<div><div style="font-size:1.6rem;font-weight:700;color:{color}">Semáforo general: {status_text(status).upper()}</div>'
        f'<div style="font-size:1rem">{VERDICTS.get(status, "")}</div></div></div>',
        unsafe_allow_html=True,
    )
    st.write("")
    cols = st.columns(5)
    cols[0].metric("Variables en verde", counts["green"])
    cols[1].metric("Variables en amarillo", counts["yellow"])
    cols[2].metric("Variables en rojo", counts["red"])
    cols[3].metric("Salida del modelo", status_text(output_status) if output_status else "—")
    cols[4].metric(
        "Predicciones en la ventana",
        f"{int(run['n_rows']):,}".replace(",", "."),
        help=f"Muestra analizada: {int(run['n_sampled'])} filas",
    )


def draw_feature_statuses(statuses: Mapping[str, str]) -> None:
    """Features grouped by status, the worst first."""
    for status in STATUS_ORDER:
        names = [model_monitoring.feature_label(f) for f, s in statuses.items() if s == status]
        if names:
            st.markdown(f"{status_badge(status)} " + ", ".join(f"**{n}**" for n in names))


def draw_recommendations(recommendations: list[Mapping]) -> None:
    st.subheader("Recomendaciones")
    if not recommendations:
        st.markdown("Ninguna: siga monitoreando.")
    for item in recommendations:
        st.markdown(f"- **{ACTION_LABELS.get(item.get('action'), item.get('action'))}**: {item['message']}")


def draw_alerts(alerts: list[Mapping]) -> None:
    """Red alerts in full; yellow ones (and notes) in an expander, open when nothing is red."""
    st.subheader("Alertas")
    if not alerts:
        st.success("Sin alertas en esta ventana.")
    red = [a for a in alerts if a.get("level") == "red"]
    for alert in red:
        st.error(alert["message"])
    others = [a for a in alerts if a.get("level") != "red"]
    if others:
        with st.expander(f"Alertas en amarillo y avisos ({len(others)})", expanded=not red):
            for alert in others:
                (st.warning if alert.get("level") == "yellow" else st.info)(alert["message"])


def draw_performance_now(summary: Mapping, metadata: registry.ModelMetadata | None) -> None:
    performance = summary.get("performance")
    if not performance:
        return
    st.subheader("Desempeño con resultados reales")
    test = holdout_metrics(metadata)
    cols = st.columns(min(len(performance), 6))
    for col, (metric, value) in zip(cols, list(performance.items())[:6], strict=False):
        reference = test.get(metric)
        delta = f"{value - reference:+.3f} vs prueba" if isinstance(reference, (int, float)) else None
        col.metric(metric, f"{value:.3f}", delta)
    st.caption(f"Calculado sobre {summary.get('n_feedback', 0)} predicciones con resultado real.")


def draw_feature_table(table: pd.DataFrame) -> None:
    """The per-feature statistics with a colored status and a risk bar; every column sortable."""
    shown = table.assign(
        Variable=table["feature"].map(model_monitoring.feature_label),
        Estado=table["status"].map(status_text),
    )
    methods = [c for c in table.columns if c in model_monitoring.METHOD_LABELS]
    p_columns = [f"{m}_p" for m in methods if f"{m}_p" in table.columns]
    names = {m: model_monitoring.METHOD_LABELS[m] for m in methods} | {
        f"{m}_p": f"p-valor {model_monitoring.METHOD_LABELS[m]}" for m in methods
    }
    shown = shown[["Variable", "Estado", "risk", *methods, *p_columns]].rename(
        columns={"risk": "Riesgo", **names}
    )
    st.dataframe(
        _colored_status(shown),
        hide_index=True,
        width="stretch",
        column_config={
            "Riesgo": st.column_config.ProgressColumn(
                "Riesgo",
                help="Mayor efecto (PSI, Jensen-Shannon, % faltantes...) dividido por su umbral rojo: 1 = rojo.",
                min_value=0.0,
                max_value=1.0,
                format="%.2f",
            ),
            **{name: st.column_config.NumberColumn(name, format="%.3g") for name in names.values()},
        },
    )


def _colored_status(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    """The ``Estado`` column painted in its status color."""
    colors = {status_text(s): STATUS_COLORS[s] for s in STATUS_COLORS}
    return frame.style.map(
        lambda v: f"background-color: {colors[v]}; color: white" if v in colors else "", subset=["Estado"]
    )


def draw_risk_bars(table: pd.DataFrame, axis_max: float = 3.0) -> None:
    """Risk per feature as colored bars; the axis stops at ``axis_max`` times the red threshold and
    each bar is labelled with its value, so one huge drift does not flatten the others."""
    data = table.dropna(subset=["risk"]).sort_values("risk")
    top = max(min(float(data["risk"].max()) if len(data) else 1.0, axis_max), 1.2)
    figure = go.Figure(
        go.Bar(
            x=data["risk"].clip(upper=top),
            y=data["feature"].map(model_monitoring.feature_label),
            orientation="h",
            marker_color=[STATUS_COLORS.get(s, STATUS_COLORS["no_data"]) for s in data["status"]],
            text=[f"{v:.2f}" for v in data["risk"]],
            textposition="auto",
            customdata=data["risk"],
            hovertemplate="%{y}: %{customdata:.2f}<extra></extra>",
        )
    )
    figure.add_vline(
        x=1.0,
        line_dash="dash",
        line_color=STATUS_COLORS["red"],
        annotation_text="umbral rojo",
        annotation_position="bottom right",
    )
    figure.update_layout(
        title="Riesgo por variable",
        xaxis_title="efecto / umbral rojo",
        height=max(300, 28 * len(data)),
        xaxis_range=[0, top * 1.05],
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    st.plotly_chart(figure, width="stretch")


def draw_distribution(reference: pd.Series, current: pd.Series, feature: str, kind: str) -> None:
    """Reference vs current: overlaid histograms (numeric) or side-by-side bars (categorical)."""
    label = model_monitoring.feature_label(feature)
    if kind == "numeric":
        ref = pd.to_numeric(reference, errors="coerce").dropna()
        cur = pd.to_numeric(current, errors="coerce").dropna()
        edges = (
            np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(dtype=float), bins=30)
            if len(ref) + len(cur)
            else None
        )
        bins = (
            {"start": edges[0], "end": edges[-1], "size": edges[1] - edges[0]}
            if edges is not None and edges[-1] > edges[0]
            else None
        )
        figure = go.Figure()
        for values, name, color in (
            (ref, "Referencia (entrenamiento)", "#1f77b4"),
            (cur, "Ventana actual", "#d62728"),
        ):
            figure.add_trace(
                go.Histogram(
                    x=values, name=name, histnorm="probability", opacity=0.55, marker_color=color, xbins=bins
                )
            )
        figure.update_layout(barmode="overlay", yaxis_title="proporción", xaxis_title=label)
    else:
        data = category_shares(reference, current)
        names = [
            f"{c} (nueva)" if unseen else c
            for c, unseen in zip(data["category"], data["unseen"], strict=True)
        ]
        figure = go.Figure(
            [
                go.Bar(
                    x=names, y=data["reference"], name="Referencia (entrenamiento)", marker_color="#1f77b4"
                ),
                go.Bar(x=names, y=data["current"], name="Ventana actual", marker_color="#d62728"),
            ]
        )
        figure.update_layout(barmode="group", yaxis_title="proporción", xaxis_title=label)
    figure.update_layout(
        title=f"Distribución de {label}: referencia vs ventana actual",
        height=380,
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 50, "b": 10},
    )
    st.plotly_chart(figure, width="stretch")
    numbers = shares(reference, current, kind)
    cols = st.columns(3)
    change = numbers["missing_current"] - numbers["missing_reference"]
    cols[0].metric("% faltantes (referencia)", _percent(numbers["missing_reference"]))
    cols[1].metric(
        "% faltantes (actual)",
        _percent(numbers["missing_current"]),
        None if pd.isna(change) or abs(change) < 0.0005 else f"{change:+.1%}",
        delta_color="inverse",
    )
    outside = "% fuera del rango de entrenamiento" if kind == "numeric" else "% categorías no vistas"
    cols[2].metric(f"{outside} (actual)", _percent(numbers["outside_current"]))


def _percent(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


def draw_feature_detail(rows: pd.DataFrame) -> None:
    detail = pd.DataFrame(
        {
            "Estadístico": rows["method"].map(model_monitoring.METHOD_LABELS),
            "Valor": rows["statistic"],
            "p-valor": rows["p_value"],
            "Estado": rows["status"].map(status_text),
            "Detalle": rows["detail"].fillna(""),
        }
    )
    st.dataframe(
        _colored_status(detail),
        hide_index=True,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(name, format="%.3g") for name in ("Valor", "p-valor")
        },
    )


def draw_history(
    changes: pd.DataFrame, methods: list[str], thresholds: Mapping, alpha: float, feature: str
) -> None:
    """One panel per statistic across windows, with the green/yellow/red bands and the trend
    (▲) and abrupt-change (✖) marks; tests are drawn as p-values against the significance level."""
    figure = make_subplots(
        rows=len(methods),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[_panel_title(m) for m in methods],
    )
    for row, method in enumerate(methods, start=1):
        data = changes[changes["method"] == method]
        is_test = method in TEST_METHODS
        y = data["p_value"] if is_test else data["statistic"]
        figure.add_trace(
            go.Scatter(
                x=data["window_start"],
                y=y,
                mode="lines+markers",
                name=_panel_title(method),
                line_color="#37474f",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        top = float(np.nanmax([*y.to_numpy(dtype=float), 0.0]))
        if is_test:
            figure.add_hrect(
                y0=0, y1=alpha, fillcolor=STATUS_COLORS["yellow"], opacity=0.2, line_width=0, row=row, col=1
            )
        elif method in thresholds:
            yellow, red = (float(v) for v in thresholds[method])
            for y0, y1, status in (
                (0, yellow, "green"),
                (yellow, red, "yellow"),
                (red, max(top, red) * 1.15, "red"),
            ):
                figure.add_hrect(
                    y0=y0, y1=y1, fillcolor=STATUS_COLORS[status], opacity=0.15, line_width=0, row=row, col=1
                )
        for flag, symbol, name in (("trend", "triangle-up", "Tendencia"), ("abrupt", "x", "Salto brusco")):
            marked = data[data[flag]] if flag in data else data.iloc[0:0]
            if not marked.empty:
                figure.add_trace(
                    go.Scatter(
                        x=marked["window_start"],
                        y=marked["statistic"],
                        mode="markers",
                        name=name,
                        marker={"symbol": symbol, "size": 14, "color": STATUS_COLORS["red"]},
                        legendgroup=flag,
                        showlegend=row == 1 or name not in _legend_names(figure),
                    ),
                    row=row,
                    col=1,
                )
    figure.update_layout(
        height=230 * len(methods) + 60,
        title=f"Evolución de {model_monitoring.feature_label(feature)}",
        margin={"t": 70, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    st.plotly_chart(figure, width="stretch")


def _panel_title(method: str) -> str:
    label = model_monitoring.METHOD_LABELS.get(method, method)
    return f"p-valor {label}" if method in TEST_METHODS else label


def _legend_names(figure: go.Figure) -> set[str]:
    return {trace.name for trace in figure.data if trace.showlegend}


def draw_status_heatmap(history: pd.DataFrame) -> None:
    """Worst status per feature and window, as a colored grid."""
    per_window = (
        history.groupby(["feature", "window_start"], sort=True)["status"]
        .agg(drift.worst_status)
        .reset_index()
    )
    grid = per_window.pivot(index="feature", columns="window_start", values="status").reindex(
        pd.unique(history["feature"])
    )
    levels = list(reversed(STATUS_ORDER))
    z = grid.apply(lambda column: column.map(levels.index)).to_numpy(dtype=float)
    scale = [[i / (len(levels) - 1), STATUS_COLORS[s]] for i, s in enumerate(levels)]
    text = grid.apply(lambda column: column.map(lambda s: STATUS_LABELS.get(s, ""))).to_numpy()
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=grid.columns,
            y=[model_monitoring.feature_label(f) for f in grid.index],
            colorscale=scale,
            zmin=0,
            zmax=len(levels) - 1,
            showscale=False,
            text=text,
            hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    figure.update_layout(
        title="Estado por variable y ventana",
        height=max(300, 26 * len(grid)),
        margin={"t": 40, "b": 10},
        yaxis_autorange="reversed",
    )
    st.plotly_chart(figure, width="stretch")


def draw_performance_history(performance: pd.DataFrame, metadata: registry.ModelMetadata | None) -> None:
    st.subheader("Desempeño del modelo en el tiempo")
    if performance.empty:
        st.info("Aún no hay suficientes resultados reales (feedback) para calcular métricas por ventana.")
        return
    test = holdout_metrics(metadata)
    panels = metric_panels(performance)
    figure = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[", ".join(panel) for panel in panels],
    )
    for row, panel in enumerate(panels, start=1):
        for metric in panel:
            data = performance[performance["metric"] == metric]
            figure.add_trace(
                go.Scatter(x=data["window_start"], y=data["value"], mode="lines+markers", name=metric),
                row=row,
                col=1,
            )
            if isinstance(test.get(metric), (int, float)):
                figure.add_hline(
                    y=test[metric],
                    line_dash="dot",
                    line_color="#9e9e9e",
                    annotation_text=f"{metric} en prueba",
                    row=row,
                    col=1,
                )
    figure.update_layout(height=max(380, 220 * len(panels) + 60), margin={"t": 40, "b": 10})
    st.plotly_chart(figure, width="stretch")


def draw_recent_predictions(recent: pd.DataFrame) -> None:
    st.subheader("Predicciones recientes")
    st.dataframe(
        recent.rename(
            columns={"created_at": "fecha", "prediction": "predicción", "actual": "resultado real"}
        ),
        hide_index=True,
        width="stretch",
        height=300,
    )


def draw_score_distribution(reference: pd.DataFrame | None, sample: pd.DataFrame, metadata: registry.ModelMetadata) -> None:
    column, kind = drift.output_feature(metadata)
    if column not in sample:
        return
    st.subheader("Distribución de la salida del modelo")
    if reference is None or column not in reference:
        st.caption(
            "La referencia de esta versión no guarda la salida del modelo: se muestra solo la ventana actual."
        )
        reference = pd.DataFrame({column: pd.Series(dtype=float)})
    draw_distribution(reference[column], sample[column], column, kind)


def class_probabilities(prediction: Mapping, metadata: registry.ModelMetadata) -> dict[str, float] | None:
    """Every class's probability: the API's ``probabilities`` (multiclass), or for a binary
    prediction its ``score`` for the positive class and the rest for the other; None for regression."""
    if prediction.get("probabilities"):
        return dict(prediction["probabilities"])
    positive, classes = metadata.positive_class, metadata.classes or []
    if prediction.get("threshold") is None or positive not in classes or len(classes) != 2:
        return None
    score = float(prediction["score"])
    return {label: score if label == positive else 1 - score for label in classes}


def draw_prediction_result(prediction: Mapping, metadata: registry.ModelMetadata) -> None:
    cols = st.columns(3)
    cols[0].metric("Predicción", str(prediction["prediction"]))
    cols[1].metric("Score", f"{float(prediction['score']):.3f}")
    if prediction.get("threshold") is not None:
        cols[2].metric("Umbral", f"{float(prediction['threshold']):.3f}")
    if prediction.get("lower") is not None:
        cols[2].metric(
            "Intervalo de predicción", f"{float(prediction['lower']):.4g} a {float(prediction['upper']):.4g}"
        )
    probabilities = class_probabilities(prediction, metadata)
    if probabilities:
        figure = go.Figure(
            go.Bar(x=list(probabilities), y=list(probabilities.values()), marker_color="#1f77b4")
        )
        figure.update_layout(
            title="Probabilidad por clase", yaxis_range=[0, 1], height=280, margin={"t": 40, "b": 10}
        )
        st.plotly_chart(figure, width="stretch")
    st.caption(f"Id de la predicción: `{prediction['id']}` (versión {prediction['model_version']})")


# ----------------------------------------------------------------------------- pages
def overview_page(run: Mapping, metadata: registry.ModelMetadata | None) -> None:
    summary = run["summary"] or {}
    status, counts = traffic_light(summary)
    output = summary.get("output")
    st.caption(
        f"Modelo vigilado: **{run['model_version']}** · Ventana: **{window_label(run)}** · "
        f"Calculado: {pd.Timestamp(run['created_at']):%Y-%m-%d %H:%M} UTC"
    )
    draw_traffic_light(status, counts, run, (summary.get("features") or {}).get(output) if output else None)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Estado por variable")
        draw_feature_statuses(summary.get("features") or {})
        draw_recommendations(summary.get("recommendations") or [])
    with right:
        draw_alerts(summary.get("alerts") or [])
    draw_performance_now(summary, metadata)


def drift_page(db_url: str, models_dir: str, settings: Settings, run: Mapping) -> None:
    history = load_history(db_url, run["model_version"])
    window = history[history["run_id"] == run["id"]]
    if window.empty:
        st.info("Esta ventana no tiene resultados por variable (no hubo predicciones en ella).")
        return
    thresholds = (run["summary"] or {}).get("thresholds") or settings.config.monitoring.thresholds
    table = feature_table(window, thresholds)
    st.caption(
        f"Ventana {window_label(run)} · muestra de {int(run['n_sampled'])} de {int(run['n_rows'])} predicciones"
    )
    draw_feature_table(table)
    draw_risk_bars(table)
    st.subheader("Referencia vs ventana actual")
    feature = feature_ui(table["feature"].tolist(), "Variable", key="drift_feature")
    metadata = load_metadata(models_dir, run["model_version"])
    reference = load_reference(models_dir, run["model_version"])
    if feature is None or metadata is None or reference is None:
        st.warning(
            "La versión del modelo no está en la carpeta de artefactos: no se pueden dibujar las distribuciones."
        )
        return
    sample = window_sample(db_url, models_dir, settings.config.monitoring, run)
    kind = feature_kinds(metadata).get(feature, "numeric")
    reference_values = reference[feature] if feature in reference else pd.Series(dtype=float)
    current_values = sample[feature] if feature in sample else pd.Series(dtype=float)
    draw_distribution(reference_values, current_values, feature, kind)
    draw_feature_detail(window[window["feature"] == feature])


def over_time_page(db_url: str, models_dir: str, settings: Settings, runs: pd.DataFrame) -> None:
    version = runs["model_version"].iloc[-1]
    history = load_history(db_url, version)
    history = history[history["run_id"].isin(runs["id"])]
    if history.empty:
        st.info("No hay resultados por variable en el rango elegido.")
        return
    monitoring = settings.config.monitoring
    thresholds = (runs["summary"].iloc[-1] or {}).get("thresholds") or monitoring.thresholds
    draw_status_heatmap(history)
    latest = feature_table(history[history["run_id"] == history["run_id"].iloc[-1]], thresholds)
    features = [*latest["feature"], *sorted(set(history["feature"]) - set(latest["feature"]))]
    feature = feature_ui(features, "Variable", key="time_feature")
    rows = history[history["feature"] == feature]
    available = [s.name for s in drift.STATISTICS if s.name in set(rows["method"])]
    methods = st.multiselect(
        "Estadísticos", available, default=available, format_func=_panel_title, key="time_methods"
    )
    if methods:
        changes = model_monitoring.detect_changes(
            rows, {k: tuple(v) for k, v in thresholds.items()}, monitoring.trend_windows
        )
        draw_history(changes, methods, thresholds, monitoring.p_value, feature)
    draw_performance_history(performance_history(runs), load_metadata(models_dir, version))


def predictions_page(
    db_url: str, models_dir: str, settings: Settings, version: str, run: Mapping | None
) -> None:
    metadata = load_metadata(models_dir, version)
    recent = load_recent_predictions(db_url, version)
    if recent.empty:
        st.info(NO_PREDICTIONS_MESSAGE)
    else:
        draw_recent_predictions(recent)
    if run is not None and metadata is not None:
        sample = window_sample(db_url, models_dir, settings.config.monitoring, run)
        if not sample.empty:
            draw_score_distribution(load_reference(models_dir, version), sample, metadata)
    st.subheader("Probar el modelo")
    if metadata is None:
        st.warning("No hay un modelo entrenado para esta versión en la carpeta de artefactos.")
        return
    url, headers = api_settings(settings)
    st.caption(f"API: {url}")
    record = prediction_form_ui(metadata.features)
    if record is not None:
        try:
            st.session_state["last_prediction"] = send_prediction(url, headers, record, version)
        except RuntimeError as exc:
            st.error(str(exc))
    prediction = st.session_state.get("last_prediction")
    if prediction is None:
        return
    draw_prediction_result(prediction, metadata)
    actual = feedback_ui(metadata, prediction)
    if actual is not None:
        try:
            send_feedback(url, headers, prediction["id"], actual)
        except RuntimeError as exc:
            st.error(str(exc))
        else:
            st.success(f"Resultado real «{actual}» registrado para la predicción {prediction['id']}.")
            load_recent_predictions.clear()


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
        with st.spinner("Ejecutando el monitoreo..."):
            try:
                run_monitoring(settings, controls.version)
            except (registry.ModelNotFoundError, ValueError) as exc:
                st.sidebar.error(f"No se pudo ejecutar el monitoreo: {exc}")
            else:
                st.cache_data.clear()
                st.rerun()
    run = controls.run
    st.header(controls.page)
    if controls.page == "Predicciones":
        predictions_page(db_url, models_dir, settings, controls.version, run)
        return
    if run is None:
        st.info(empty_message(db_url, controls))
        return
    if controls.page == "Resumen":
        overview_page(run, load_metadata(models_dir, controls.version))
    elif controls.page == "Deriva por variable":
        drift_page(db_url, models_dir, settings, run)
    else:
        over_time_page(db_url, models_dir, settings, runs)


def empty_message(db_url: str, controls: Controls) -> str:
    """What to tell the user when there is no window to show."""
    if controls.monitored:
        return "No hay ventanas monitoreadas en el rango de fechas elegido."
    first, _ = load_time_range(db_url, controls.version)
    return NO_RUNS_MESSAGE if first is not None else EMPTY_STORE_MESSAGE


def _launch(argv: list[str]) -> None:
    """``python dashboard.py [streamlit options]`` outside Streamlit becomes ``streamlit run`` on this file."""
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(Path(__file__).resolve()), *argv])


if __name__ == "__main__":
    if st.runtime.exists():
        main()
    else:
        _launch(sys.argv[1:])
