"""Dashboard page "Deriva por variable": every feature's statistics and risk in one window, and
one feature's reference vs current distribution with its statistics and the limits they met."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

import drift
import messages
import registry
from dashboard_shared import (
    TABLE_COLUMNS,
    draw_distribution,
    draw_risk_bars,
    feature_kinds,
    feature_table,
    feature_ui,
    styled,
    window_label,
)

RISK_HELP = (
    "Mayor efecto (PSI, Jensen-Shannon, % faltantes...) dividido por su límite rojo en esta ventana "
    "(el umbral del config, o más alto si el tamaño de la ventana lo exige): 1 = rojo."
)
P_HELP = "p-valor de la prueba de la variable (KS si es numérica, chi-cuadrado si es categórica), corregido."


def draw_feature_table(table: pd.DataFrame) -> None:
    """The per-feature statistics, status and risk painted in the feature's status color; sortable."""
    shown = table.assign(
        feature=table["feature"].map(messages.feature_label),
        status=table["status"].map(messages.status_text),
    ).rename(columns=TABLE_COLUMNS)
    st.dataframe(
        styled(shown, table["status"], [TABLE_COLUMNS["status"], TABLE_COLUMNS["risk"]]),
        hide_index=True,
        width="stretch",
        column_config={
            TABLE_COLUMNS["risk"]: st.column_config.Column(help=RISK_HELP),
            TABLE_COLUMNS["test_p"]: st.column_config.Column(help=P_HELP),
        },
    )


def detail_table(rows: pd.DataFrame, limits: Mapping) -> pd.DataFrame:
    """One feature's statistics in the window: value, p-value, the limits it was judged by, status
    and the detail note (tests have no limits: their p-value decides)."""
    none = [float("nan"), float("nan")]
    bounds = [
        list((limits.get(feature) or limits.get("*") or {}).get(method) or none)
        for feature, method in zip(rows["feature"], rows["method"], strict=True)
    ]
    return pd.DataFrame(
        {
            "Estadístico": rows["method"].map(messages.method_text).to_numpy(),
            "Valor": rows["statistic"].to_numpy(dtype=float),
            "p-valor": rows["p_value"].to_numpy(dtype=float),
            "Límite amarillo": [b[0] for b in bounds],
            "Límite rojo": [b[1] for b in bounds],
            "Estado": rows["status"].map(messages.status_text).to_numpy(),
            "Detalle": rows["detail"].map(messages.detail_text).to_numpy(),
        }
    )


def draw_feature_detail(rows: pd.DataFrame, limits: Mapping) -> None:
    st.dataframe(
        styled(detail_table(rows, limits), rows["status"].reset_index(drop=True), ["Estado"]),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "p-valor de las pruebas: corregido por comparaciones múltiples; de los demás estadísticos: "
        "la probabilidad de un valor así de alto sin deriva, con ventanas del mismo tamaño."
    )


def drift_page(
    run: Mapping,
    window: pd.DataFrame,
    limits: Mapping,
    metadata: registry.ModelMetadata | None,
    reference: pd.DataFrame | None,
    sample: pd.DataFrame,
) -> None:
    """The page for one window: ``window`` holds its drift rows (``monitoring_history.read_drift_history``),
    ``limits`` the limits they were judged by (``run_limits``), ``sample`` the window's sample as
    the job cleaned it; ``metadata`` and ``reference`` are None when the version is not on disk."""
    if window.empty:
        st.info(messages.VERDICTS.get(run["status"], "Esta ventana no tiene resultados por variable."))
        return
    table = feature_table(window, limits)
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
    rows = window[window["feature"] == feature]
    order = {s.name: i for i, s in enumerate(drift.STATISTICS)}
    draw_feature_detail(rows.sort_values("method", key=lambda m: m.map(order)), limits)
