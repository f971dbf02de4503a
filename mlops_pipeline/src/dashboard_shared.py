"""What the dashboard pages share: status colors and badges, the traffic light, the per-feature
table and the reference-vs-current distribution chart.

The plain functions (``traffic_light``, ``feature_table``, ``category_shares``...) take data and
return data, so tests call them directly; the ``draw_*`` ones take data and draw it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import drift
import messages
import registry

STATUS_ORDER = ("red", "yellow", "green", "no_data")
"""Statuses from the most severe down, as tables and lists show them."""
STATUS_BADGES = MappingProxyType({"green": "green", "yellow": "orange", "red": "red", "no_data": "gray"})
STATUS_COLORS = MappingProxyType(
    {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828", "no_data": "#9e9e9e"}
)
REFERENCE_COLOR, CURRENT_COLOR = "#1f77b4", "#d62728"
MISSING_LABEL = "(faltante)"


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
    inputs = [status for feature, status in statuses.items() if feature not in drift.OUTPUT_COLUMNS]
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
    p_values = window[window["method"].isin(drift.TEST_METHODS)].pivot_table(
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


def _category_share(values: pd.Series) -> pd.Series:
    """Share of each category, missing values counted as ``MISSING_LABEL``."""
    labelled = values.astype("object").where(values.notna(), MISSING_LABEL).astype(str)
    return labelled.value_counts(normalize=True)


def category_shares(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Share of each category (missing as ``MISSING_LABEL``) in the reference and the current window.

    Returns:
        Columns ``category``, ``reference``, ``current``, ``unseen`` (a category the reference
        never had); reference categories first.
    """
    ref, cur = _category_share(reference), _category_share(current)
    categories = [*ref.index, *[c for c in cur.index if c not in ref.index]]
    return pd.DataFrame(
        {
            "category": categories,
            "reference": ref.reindex(categories, fill_value=0.0).to_numpy(),
            "current": cur.reindex(categories, fill_value=0.0).to_numpy(),
            "unseen": [c not in ref.index and c != MISSING_LABEL for c in categories],
        }
    )


def _outside_share(reference: pd.Series, present: pd.Series, kind: str) -> float:
    """Share of the present current values outside the reference range (numeric) or unseen."""
    if kind != "numeric":
        known = set(reference.dropna().astype(str))
        return float((~present.astype(str).isin(known)).mean()) if len(present) else float("nan")
    ref = pd.to_numeric(reference, errors="coerce").dropna()
    values = pd.to_numeric(present, errors="coerce")
    if not (len(values) and len(ref)):
        return float("nan")
    return float(((values < ref.min()) | (values > ref.max())).mean())


def shares(reference: pd.Series, current: pd.Series, kind: str) -> dict[str, float]:
    """Missing share of both samples, and the current share unseen (categorical) or outside the
    reference range (numeric)."""
    return {
        "missing_reference": float(reference.isna().mean()) if len(reference) else float("nan"),
        "missing_current": float(current.isna().mean()) if len(current) else float("nan"),
        "outside_current": _outside_share(reference, current.dropna(), kind),
    }


def feature_kinds(metadata: registry.ModelMetadata) -> dict[str, str]:
    """``numeric`` or ``categorical`` for each input feature and the model output columns."""
    kinds = {f.name: "numeric" if f.kind == "numeric" else "categorical" for f in metadata.features}
    return kinds | {drift.SCORE_COLUMN: "numeric", drift.PREDICTION_COLUMN: "categorical"}


def holdout_metrics(metadata: registry.ModelMetadata | None) -> dict[str, float]:
    """A version's test-set metrics from its metadata ({} when unknown)."""
    return metadata.test_metrics if metadata else {}


def window_label(run: Mapping) -> str:
    """How a monitoring window is named in the selector (with its traffic-light color)."""
    start, end = pd.Timestamp(run["window_start"]), pd.Timestamp(run["window_end"])
    status = messages.status_text(traffic_light(run["summary"] or {})[0])
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC · {status}"


def status_badge(status: str) -> str:
    """A status as a colored Streamlit-markdown badge."""
    return f":{STATUS_BADGES.get(status, 'gray')}-badge[{messages.status_text(status)}]"


def _percent(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


# ----------------------------------------------------------------------------- widgets and drawing
def feature_ui(features: list[str], label: str, key: str) -> str | None:
    """A feature selector showing readable names; None when there is nothing to choose."""
    if not features:
        return None
    return st.selectbox(label, features, format_func=messages.feature_label, key=key)


def colored_status(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    """The ``Estado`` column painted in its status color."""
    colors = {messages.status_text(s): STATUS_COLORS[s] for s in STATUS_COLORS}
    return frame.style.map(
        lambda v: f"background-color: {colors[v]}; color: white" if v in colors else "", subset=["Estado"]
    )


def _numeric_figure(reference: pd.Series, current: pd.Series) -> go.Figure:
    """Overlaid histograms of both samples on one set of 30 bins."""
    ref = pd.to_numeric(reference, errors="coerce").dropna()
    cur = pd.to_numeric(current, errors="coerce").dropna()
    bins = None
    if len(ref) + len(cur):
        edges = np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(dtype=float), bins=30)
        if edges[-1] > edges[0]:
            bins = {"start": edges[0], "end": edges[-1], "size": edges[1] - edges[0]}
    figure = go.Figure()
    for values, name, color in (
        (ref, "Referencia (entrenamiento)", REFERENCE_COLOR),
        (cur, "Ventana actual", CURRENT_COLOR),
    ):
        figure.add_trace(
            go.Histogram(
                x=values, name=name, histnorm="probability", opacity=0.55, marker_color=color, xbins=bins
            )
        )
    return figure.update_layout(barmode="overlay")


def _categorical_figure(reference: pd.Series, current: pd.Series) -> go.Figure:
    """Side-by-side bars of each category's share, unseen categories marked."""
    data = category_shares(reference, current)
    names = [
        f"{c} (nueva)" if unseen else c for c, unseen in zip(data["category"], data["unseen"], strict=True)
    ]
    figure = go.Figure(
        [
            go.Bar(
                x=names, y=data["reference"], name="Referencia (entrenamiento)", marker_color=REFERENCE_COLOR
            ),
            go.Bar(x=names, y=data["current"], name="Ventana actual", marker_color=CURRENT_COLOR),
        ]
    )
    return figure.update_layout(barmode="group")


def _draw_shares(reference: pd.Series, current: pd.Series, kind: str) -> None:
    """Missing shares of both samples and the current share outside the reference."""
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


def draw_distribution(reference: pd.Series, current: pd.Series, feature: str, kind: str) -> None:
    """Reference vs current: overlaid histograms (numeric) or side-by-side bars (categorical)."""
    label = messages.feature_label(feature)
    figure = (_numeric_figure if kind == "numeric" else _categorical_figure)(reference, current)
    figure.update_layout(
        title=f"Distribución de {label}: referencia vs ventana actual",
        xaxis_title=label,
        yaxis_title="proporción",
        height=380,
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 50, "b": 10},
    )
    st.plotly_chart(figure, width="stretch")
    _draw_shares(reference, current, kind)
