"""Dashboard page "Evolución temporal": the status of every feature per window, each statistic of
one feature over time with its bands and its trend and jump marks, and performance over time."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

import drift
import messages
import registry
from dashboard_shared import STATUS_COLORS, STATUS_ORDER, feature_table, feature_ui, holdout_metrics

MARKS = (("trend", "triangle-up", "Tendencia"), ("abrupt", "x", "Salto brusco"))
"""The change flags of ``model_monitoring.detect_changes``: column, marker symbol, legend name."""


# ----------------------------------------------------------------------------- plain logic
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


def panel_title(method: str) -> str:
    """A statistic's panel name; tests are drawn as their p-values."""
    label = messages.method_text(method)
    return f"p-valor {label}" if method in drift.TEST_METHODS else label


# ----------------------------------------------------------------------------- drawing
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
    text = grid.apply(lambda column: column.map(lambda s: messages.STATUS_LABELS.get(s, ""))).to_numpy()
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=grid.columns,
            y=[messages.feature_label(f) for f in grid.index],
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


def _add_bands(
    figure: go.Figure, row: int, method: str, top: float, thresholds: Mapping, alpha: float
) -> None:
    """The significance band of a test, or the green / yellow / red bands of an effect size."""
    if method in drift.TEST_METHODS:
        figure.add_hrect(
            y0=0, y1=alpha, fillcolor=STATUS_COLORS["yellow"], opacity=0.2, line_width=0, row=row, col=1
        )
        return
    if method not in thresholds:
        return
    yellow, red = (float(v) for v in thresholds[method])
    for y0, y1, status in ((0, yellow, "green"), (yellow, red, "yellow"), (red, max(top, red) * 1.15, "red")):
        figure.add_hrect(
            y0=y0, y1=y1, fillcolor=STATUS_COLORS[status], opacity=0.15, line_width=0, row=row, col=1
        )


def _add_marks(figure: go.Figure, row: int, data: pd.DataFrame) -> None:
    """Trend and abrupt-change markers on a panel (one legend entry per kind of mark)."""
    for flag, symbol, name in MARKS:
        marked = data[data[flag]] if flag in data else data.iloc[0:0]
        if marked.empty:
            continue
        shown = {trace.name for trace in figure.data if trace.showlegend}
        figure.add_trace(
            go.Scatter(
                x=marked["window_start"],
                y=marked["statistic"],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 14, "color": STATUS_COLORS["red"]},
                legendgroup=flag,
                showlegend=row == 1 or name not in shown,
            ),
            row=row,
            col=1,
        )


def draw_history(
    changes: pd.DataFrame, methods: list[str], thresholds: Mapping, alpha: float, feature: str
) -> None:
    """One panel per statistic across windows, with the green/yellow/red bands and the trend
    (▲) and abrupt-change (✖) marks; tests are drawn as p-values against the significance level."""
    titles = [panel_title(m) for m in methods]
    figure = make_subplots(
        rows=len(methods), cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=titles
    )
    for row, method in enumerate(methods, start=1):
        data = changes[changes["method"] == method]
        y = data["p_value"] if method in drift.TEST_METHODS else data["statistic"]
        line = go.Scatter(
            x=data["window_start"],
            y=y,
            mode="lines+markers",
            name=titles[row - 1],
            line_color="#37474f",
            showlegend=False,
        )
        figure.add_trace(line, row=row, col=1)
        _add_bands(figure, row, method, float(np.nanmax([*y.to_numpy(dtype=float), 0.0])), thresholds, alpha)
        _add_marks(figure, row, data)
    figure.update_layout(
        height=230 * len(methods) + 60,
        title=f"Evolución de {messages.feature_label(feature)}",
        margin={"t": 70, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    st.plotly_chart(figure, width="stretch")


def draw_performance_history(performance: pd.DataFrame, metadata: registry.ModelMetadata | None) -> None:
    """Each metric per window (errors in the target's units in panels of their own), with its test value."""
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
            line = go.Scatter(x=data["window_start"], y=data["value"], mode="lines+markers", name=metric)
            figure.add_trace(line, row=row, col=1)
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


# ----------------------------------------------------------------------------- the page
def over_time_page(
    changes: pd.DataFrame,
    runs: pd.DataFrame,
    thresholds: Mapping,
    alpha: float,
    metadata: registry.ModelMetadata | None,
) -> None:
    """The page for the windows ``runs`` of one version: ``changes`` is their drift history with
    the ``trend`` / ``abrupt`` flags of ``model_monitoring.detect_changes``."""
    if changes.empty:
        st.info("No hay resultados por variable en el rango elegido.")
        return
    draw_status_heatmap(changes)
    latest = feature_table(changes[changes["run_id"] == changes["run_id"].iloc[-1]], thresholds)
    features = [*latest["feature"], *sorted(set(changes["feature"]) - set(latest["feature"]))]
    feature = feature_ui(features, "Variable", key="time_feature")
    rows = changes[changes["feature"] == feature]
    available = [s.name for s in drift.STATISTICS if s.name in set(rows["method"])]
    methods = st.multiselect(
        "Estadísticos", available, default=available, format_func=panel_title, key="time_methods"
    )
    if methods:
        draw_history(rows, methods, thresholds, alpha, feature)
    draw_performance_history(performance_history(runs), metadata)
