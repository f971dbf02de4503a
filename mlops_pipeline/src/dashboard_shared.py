"""What the dashboard pages share: status colors and badges, the traffic light, the default window,
the per-feature table, the risk chart and the reference-vs-current distribution chart.

The plain functions (``traffic_light``, ``default_window``, ``feature_table``, ``category_shares``...)
take data and return data, so tests call them directly; the ``draw_*`` ones take data and draw it.
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
import performance
import registry

STATUS_ORDER = ("red", "yellow", "green", "insufficient_data", "no_data")
"""Statuses from the most severe down, as tables and lists show them."""
JUDGED = ("red", "yellow", "green")
STATUS_BADGES = MappingProxyType(
    {"green": "green", "yellow": "orange", "red": "red", "insufficient_data": "gray", "no_data": "gray"}
)
STATUS_COLORS = MappingProxyType(
    {
        "green": "#2e7d32",
        "yellow": "#f9a825",
        "red": "#c62828",
        "insufficient_data": "#78909c",
        "no_data": "#9e9e9e",
    }
)
REFERENCE_COLOR, CURRENT_COLOR = "#1f77b4", "#d62728"
MISSING_LABEL = "(faltante)"
AXIS_DATE, HOVER_DATE = "%d/%m", "%d/%m/%Y %H:%M"
"""Dates on charts as numbers (21/11), so no English month name shows."""
TABLE_COLUMNS = {
    "feature": "Variable",
    "status": "Estado",
    "risk": "Riesgo",
    "test_p": "p-valor (KS / chi²)",
    "test": "KS / chi²",
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon",
    "missing_share": "Δ % faltantes",
    "outside": "% fuera de rango o nuevas",
}
"""The per-feature table's columns, in order, with their Spanish names."""


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


def run_limits(summary: Mapping, thresholds: Mapping[str, Iterable[float]]) -> dict[str, dict[str, list]]:
    """The limits a window's effect sizes were judged by (its summary's ``limits``); windows stored
    before limits existed get the configured thresholds for every feature (key ``*``)."""
    limits = (summary or {}).get("limits")
    return dict(limits) if limits else {"*": {method: list(v) for method, v in thresholds.items()}}


def _red_limit(limits: Mapping, feature: str, method: str) -> float:
    values = (limits.get(feature) or limits.get("*") or {}).get(method)
    return float(list(values)[1]) if values else float("nan")


def risk_ratio(rows: pd.DataFrame, limits: Mapping) -> float:
    """A feature's risk: its largest effect size as a share of that statistic's red limit in the
    window (1.0 means it reached red); NaN when no effect size was computed."""
    ratios = [
        value / red
        for feature, method, value in zip(rows["feature"], rows["method"], rows["statistic"], strict=True)
        if method in drift.EFFECT_METHODS
        and (red := _red_limit(limits, feature, method)) > 0
        and pd.notna(value)
    ]
    return float(max(ratios)) if ratios else float("nan")


def _pivot(window: pd.DataFrame, methods: Iterable[str], column: str) -> pd.Series:
    """One value per feature of ``column`` over the rows of any of ``methods`` (NaN when none)."""
    rows = window[window["method"].isin(list(methods))]
    return rows.groupby("feature", sort=False)[column].first()


def feature_table(window: pd.DataFrame, limits: Mapping) -> pd.DataFrame:
    """One row per feature of a window's drift rows: status, risk, its test's p-value and statistic
    (KS or chi-squared), PSI, Jensen-Shannon, the missing-share change and the share out of range
    or unseen; sorted from the most severe status and the riskiest feature down.

    Args:
        window: the window's rows (``monitoring_history.read_drift_history`` of one run).
        limits: ``run_limits`` of the run.
    """
    if window.empty:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    statuses = drift.feature_status(window).set_index("feature")["status"]
    table = pd.DataFrame(index=statuses.index)
    table["status"] = statuses
    table["risk"] = pd.Series({f: risk_ratio(rows, limits) for f, rows in window.groupby("feature")})
    table["test_p"] = _pivot(window, drift.TEST_METHODS, "p_value")
    table["test"] = _pivot(window, drift.TEST_METHODS, "statistic")
    for method in ("psi", "jensen_shannon", "missing_share"):
        table[method] = _pivot(window, [method], "statistic")
    table["outside"] = _pivot(window, ["out_of_range_share", "unseen_share"], "statistic")
    severity = table["status"].map({s: i for i, s in enumerate(STATUS_ORDER)})
    table = table.assign(_severity=severity).sort_values(
        ["_severity", "risk"], ascending=[True, False], na_position="last"
    )
    return table.drop(columns="_severity").rename_axis("feature").reset_index()[list(TABLE_COLUMNS)]


def default_window(runs: pd.DataFrame, now: pd.Timestamp | None = None) -> int | None:
    """The window a page opens on: the latest complete one with a verdict (it ended before ``now``
    and has a colour), else the one with most predictions; None without runs. Today's window, still
    filling up with a few hand-sent predictions, is then never the default."""
    if runs.empty:
        return None
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    complete = runs[(runs["window_end"] <= now) & runs["status"].isin(JUDGED)]
    chosen = complete.iloc[-1] if len(complete) else runs.loc[runs["n_rows"].astype(int).idxmax()]
    return int(chosen["id"])


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


def expected_metrics(metadata: registry.ModelMetadata | None) -> dict[str, float]:
    """What each metric should be without drift: the version's out-of-fold CV mean (else its test
    value), as the monitoring job judges performance ({} when the version is unknown)."""
    if metadata is None:
        return {}
    names = {*(metadata.metrics.get("cv") or {}), *metadata.test_metrics}
    values = {name: performance.expected_value(metadata, name)[0] for name in sorted(names)}
    return {name: value for name, value in values.items() if value is not None}


def window_label(run: Mapping) -> str:
    """How a monitoring window is named in the selector (with its traffic-light color)."""
    start, end = pd.Timestamp(run["window_start"]), pd.Timestamp(run["window_end"])
    status = messages.status_text(traffic_light(run["summary"] or {})[0])
    return f"{start:%d/%m/%Y %H:%M} → {end:%d/%m/%Y %H:%M} UTC · {status}"


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


def _text_where_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns with a missing value as text ("—" there, 3 significant digits elsewhere):
    ``st.dataframe`` shows a missing number as "None" whatever the formatting says."""
    out = frame.reset_index(drop=True)
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values) and values.isna().any():
            out[column] = [f"{v:.3g}" if pd.notna(v) else "—" for v in values]
        elif not pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype(object).where(values.notna(), "—")
    return out


def styled(frame: pd.DataFrame, statuses: pd.Series, painted: list[str]) -> pd.io.formats.style.Styler:
    """A table for ``st.dataframe``: the ``painted`` columns in each row's status color (``statuses``,
    aligned with the rows), numbers with 3 significant digits and "—" where there is no value."""
    colors = [STATUS_COLORS.get(s, STATUS_COLORS["no_data"]) for s in statuses]
    shown = _text_where_missing(frame)
    numbers = [c for c in shown.columns if pd.api.types.is_numeric_dtype(shown[c])]
    return shown.style.apply(
        lambda column: [f"background-color: {color}; color: white" for color in colors],
        subset=[c for c in painted if c in shown.columns],
    ).format("{:.3g}", subset=numbers)


def spanish_dates(figure: go.Figure) -> go.Figure:
    """Date axes as day/month numbers (no English month names), hover with the full date."""
    return figure.update_xaxes(tickformat=AXIS_DATE, hoverformat=HOVER_DATE)


def draw_risk_bars(table: pd.DataFrame, axis_max: float = 3.0, title: str = "Riesgo por variable") -> None:
    """Risk per feature (``feature_table``) as bars in each feature's status color; the axis stops at
    ``axis_max`` times the red limit and each bar shows its value, so one huge drift does not
    flatten the others."""
    data = table.dropna(subset=["risk"]).sort_values("risk")
    top = max(min(float(data["risk"].max()) if len(data) else 1.0, axis_max), 1.2)
    figure = go.Figure(
        go.Bar(
            x=data["risk"].clip(upper=top),
            y=data["feature"].map(messages.feature_label),
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
        annotation_text="límite rojo",
        annotation_position="bottom right",
    )
    figure.update_layout(
        title=title,
        xaxis_title="efecto / límite rojo de la ventana",
        height=max(300, 28 * len(data)),
        xaxis_range=[0, top * 1.05],
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    st.plotly_chart(figure, width="stretch")


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
