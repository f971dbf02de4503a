"""Dashboard page "Deriva por variable": every feature's statistics and risk in one window, and
one feature's reference vs current distribution with its statistics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import messages
import registry
from dashboard_shared import (
    STATUS_COLORS,
    colored_status,
    draw_distribution,
    feature_kinds,
    feature_table,
    feature_ui,
    window_label,
)

RISK_HELP = "Mayor efecto (PSI, Jensen-Shannon, % faltantes...) dividido por su umbral rojo: 1 = rojo."


def draw_feature_table(table: pd.DataFrame) -> None:
    """The per-feature statistics with a colored status and a risk bar; every column sortable."""
    shown = table.assign(
        Variable=table["feature"].map(messages.feature_label),
        Estado=table["status"].map(messages.status_text),
    )
    methods = [c for c in table.columns if c in messages.METHOD_LABELS]
    p_columns = [f"{m}_p" for m in methods if f"{m}_p" in table.columns]
    names = {m: messages.METHOD_LABELS[m] for m in methods} | {
        f"{m}_p": f"p-valor {messages.METHOD_LABELS[m]}" for m in methods
    }
    shown = shown[["Variable", "Estado", "risk", *methods, *p_columns]].rename(
        columns={"risk": "Riesgo", **names}
    )
    risk = st.column_config.ProgressColumn(
        "Riesgo", help=RISK_HELP, min_value=0.0, max_value=1.0, format="%.2f"
    )
    st.dataframe(
        colored_status(shown),
        hide_index=True,
        width="stretch",
        column_config={
            "Riesgo": risk,
            **{name: st.column_config.NumberColumn(name, format="%.3g") for name in names.values()},
        },
    )


def draw_risk_bars(table: pd.DataFrame, axis_max: float = 3.0) -> None:
    """Risk per feature as colored bars; the axis stops at ``axis_max`` times the red threshold and
    each bar is labelled with its value, so one huge drift does not flatten the others."""
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


def draw_feature_detail(rows: pd.DataFrame) -> None:
    """One feature's statistics in the window: value, p-value, status and the detail note."""
    detail = pd.DataFrame(
        {
            "Estadístico": rows["method"].map(messages.method_text),
            "Valor": rows["statistic"],
            "p-valor": rows["p_value"],
            "Estado": rows["status"].map(messages.status_text),
            "Detalle": rows["detail"].map(messages.detail_text),
        }
    )
    st.dataframe(
        colored_status(detail),
        hide_index=True,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(name, format="%.3g") for name in ("Valor", "p-valor")
        },
    )


def drift_page(
    run: Mapping,
    window: pd.DataFrame,
    thresholds: Mapping[str, Iterable[float]],
    metadata: registry.ModelMetadata | None,
    reference: pd.DataFrame | None,
    sample: pd.DataFrame,
) -> None:
    """The page for one window: ``window`` holds its drift rows (``store.read_drift_history``),
    ``sample`` the window's sample as the job cleaned it; ``metadata`` and ``reference`` are None
    when the version is not on disk."""
    if window.empty:
        st.info("Esta ventana no tiene resultados por variable (no hubo predicciones en ella).")
        return
    table = feature_table(window, thresholds)
    sampled = f"muestra de {int(run['n_sampled'])} de {int(run['n_rows'])} predicciones"
    st.caption(f"Ventana {window_label(run)} · {sampled}")
    draw_feature_table(table)
    draw_risk_bars(table)
    st.subheader("Referencia vs ventana actual")
    feature = feature_ui(table["feature"].tolist(), "Variable", key="drift_feature")
    if feature is None or metadata is None or reference is None:
        st.warning(
            "La versión del modelo no está en la carpeta de artefactos: "
            "no se pueden dibujar las distribuciones."
        )
        return
    kind = feature_kinds(metadata).get(feature, "numeric")
    reference_values = reference[feature] if feature in reference else pd.Series(dtype=float)
    current_values = sample[feature] if feature in sample else pd.Series(dtype=float)
    draw_distribution(reference_values, current_values, feature, kind)
    draw_feature_detail(window[window["feature"] == feature])
