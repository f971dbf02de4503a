"""Dashboard page "Evolución temporal": the status of every feature per window, each statistic of
one feature over time with the limits it was judged by and its trend and jump marks, and the
model's performance over time (realized, estimated without labels and expected)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

import drift
import messages
import registry
from dashboard_shared import (
    JUDGED,
    STATUS_COLORS,
    STATUS_ORDER,
    expected_metrics,
    feature_table,
    feature_ui,
    run_limits,
    spanish_dates,
)

MARKS = (("trend", "triangle-up", "Tendencia"), ("abrupt", "x", "Salto brusco"))
"""The change flags of ``calibration.detect_changes``: column, marker symbol, legend name."""
SOURCES = {
    "real": ("Real (con resultados)", "#37474f"),
    "estimado": ("Estimado sin etiquetas (CBPE)", "#1f77b4"),
}


# ----------------------------------------------------------------------------- plain logic
def performance_history(runs: pd.DataFrame) -> pd.DataFrame:
    """The model's metrics per window, long format: ``window_start``, ``metric``, ``source``
    (``real`` where feedback allowed computing them, ``estimado`` for CBPE), ``value`` and, for the
    realized primary metric, its interval ``low`` / ``high``."""
    rows = []
    for run in runs.itertuples():
        summary = run.summary or {}
        realized = summary.get("realized") or {}
        for metric, value in (summary.get("performance") or {}).items():
            interval = metric == realized.get("primary")
            low, high = (realized.get("low"), realized.get("high")) if interval else (None, None)
            rows.append((run.window_start, metric, "real", value, low, high))
        estimated = summary.get("estimated") or {}
        for metric, value in (estimated.get("metrics") or {}).items():
            rows.append((run.window_start, metric, "estimado", value, None, None))
    columns = ["window_start", "metric", "source", "value", "low", "high"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.dropna(subset=["value"]).astype({"value": float, "low": float, "high": float})


def limits_history(runs: pd.DataFrame, thresholds: Mapping) -> pd.DataFrame:
    """The (yellow, red) limits of every feature and effect size per judged window (``run_limits``):
    ``window_start``, ``feature``, ``method``, ``yellow``, ``red``; ``*`` stands for every feature
    of a window stored before limits existed."""
    rows = [
        (run.window_start, feature, method, float(values[0]), float(values[1]))
        for run in runs[runs["status"].isin(JUDGED)].itertuples()
        for feature, methods in run_limits(run.summary, thresholds).items()
        for method, values in methods.items()
    ]
    return pd.DataFrame(rows, columns=["window_start", "feature", "method", "yellow", "red"])


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
            hovertemplate="%{y}<br>%{x|%d/%m/%Y}<br>%{text}<extra></extra>",
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
    st.plotly_chart(spanish_dates(figure), width="stretch")


def _add_limits(figure: go.Figure, row: int, method: str, limits: pd.DataFrame, alpha: float) -> None:
    """The significance level of a test, or the yellow and red limits of an effect size in each window."""
    if method in drift.TEST_METHODS:
        figure.add_hrect(
            y0=0, y1=alpha, fillcolor=STATUS_COLORS["yellow"], opacity=0.2, line_width=0, row=row, col=1
        )
        return
    in_legend = {trace.name for trace in figure.data if trace.showlegend is not False}
    for status in ("yellow", "red"):
        name = f"límite {messages.status_text(status).lower()}"
        figure.add_trace(
            go.Scatter(
                x=limits["window_start"],
                y=limits[status],
                mode="lines",
                line={"color": STATUS_COLORS[status], "dash": "dash", "shape": "hv"},
                name=name,
                legendgroup=status,
                showlegend=name not in in_legend,
            ),
            row=row,
            col=1,
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
                showlegend=name not in shown,
            ),
            row=row,
            col=1,
        )


def _feature_limits(limits: pd.DataFrame, feature: str, method: str) -> pd.DataFrame:
    """One feature's limits of ``method`` per window (a legacy window's ``*`` limits included)."""
    rows = limits[limits["feature"].isin([feature, "*"]) & (limits["method"] == method)]
    return rows.sort_values("window_start").drop_duplicates("window_start", keep="first")


def draw_history(
    changes: pd.DataFrame, limits: pd.DataFrame, methods: list[str], alpha: float, feature: str
) -> None:
    """One panel per statistic across windows, with the yellow and red limits of each window and
    the trend (▲) and abrupt-change (✖) marks; tests are drawn as p-values against the level."""
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
        _add_limits(figure, row, method, _feature_limits(limits, feature, method), alpha)
        _add_marks(figure, row, data)
    figure.update_layout(
        height=230 * len(methods) + 60,
        title=f"Evolución de {messages.feature_label(feature)}",
        margin={"t": 70, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    st.plotly_chart(spanish_dates(figure), width="stretch")


def metric_ui(performance: pd.DataFrame, primary: str | None) -> str | None:
    """The metric the performance chart shows (default: the primary one)."""
    metrics = list(dict.fromkeys(performance["metric"]))
    if not metrics:
        return None
    index = metrics.index(primary) if primary in metrics else 0
    return st.selectbox("Métrica", metrics, index=index, key="performance_metric")


def draw_performance_history(performance: pd.DataFrame, metric: str, expected: float | None) -> None:
    """One metric per window: realized (with its interval where there is one), estimated without
    labels (CBPE) and the expected value (out-of-fold cross-validation)."""
    figure = go.Figure()
    for source, (name, color) in SOURCES.items():
        data = performance[(performance["metric"] == metric) & (performance["source"] == source)]
        if data.empty:
            continue
        error = None
        if data["high"].notna().any():
            error = {"type": "data", "symmetric": False, "color": color}
            error |= {"array": data["high"] - data["value"], "arrayminus": data["value"] - data["low"]}
        figure.add_trace(
            go.Scatter(
                x=data["window_start"],
                y=data["value"],
                mode="lines+markers",
                name=name,
                line={"color": color, "dash": "solid" if source == "real" else "dot"},
                error_y=error,
            )
        )
    if expected is not None:
        figure.add_trace(
            go.Scatter(
                x=performance["window_start"].drop_duplicates().sort_values(),
                y=[expected] * performance["window_start"].nunique(),
                mode="lines",
                name="Esperado (validación cruzada)",
                line={"color": "#9e9e9e", "dash": "dash"},
            )
        )
    figure.update_layout(
        title=f"{metric} por ventana",
        height=380,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    st.plotly_chart(spanish_dates(figure), width="stretch")


# ----------------------------------------------------------------------------- the page
def over_time_page(
    changes: pd.DataFrame,
    runs: pd.DataFrame,
    thresholds: Mapping,
    alpha: float,
    metadata: registry.ModelMetadata | None,
) -> None:
    """The page for the windows ``runs`` of one version: ``changes`` is their drift history with
    the ``trend`` / ``abrupt`` flags of ``calibration.detect_changes``."""
    if changes.empty:
        st.info("No hay resultados por variable en el rango elegido.")
        return
    draw_status_heatmap(changes)
    latest_run = runs[runs["id"] == changes["run_id"].iloc[-1]]
    latest_limits = run_limits(latest_run["summary"].iloc[0] if len(latest_run) else {}, thresholds)
    latest = feature_table(changes[changes["run_id"] == changes["run_id"].iloc[-1]], latest_limits)
    features = [*latest["feature"], *sorted(set(changes["feature"]) - set(latest["feature"]))]
    feature = feature_ui(features, "Variable", key="time_feature")
    rows = changes[changes["feature"] == feature]
    available = [s.name for s in drift.STATISTICS if s.name in set(rows["method"])]
    methods = st.multiselect(
        "Estadísticos", available, default=available, format_func=panel_title, key="time_methods"
    )
    if methods:
        draw_history(rows, limits_history(runs, thresholds), methods, alpha, feature)
    st.subheader("Desempeño del modelo en el tiempo")
    performance = performance_history(runs)
    if performance.empty:
        st.info(
            "Aún no hay suficientes resultados reales (feedback) ni estimaciones para mostrar el desempeño."
        )
        return
    metric = metric_ui(performance, metadata.primary_metric if metadata else None)
    draw_performance_history(performance, metric, expected_metrics(metadata).get(metric))
