"""Dashboard page "Resumen": the window's traffic light and verdict, the risk of every feature in
one chart, the features by status, alerts, recommendations and the model's performance: realized
with feedback (with its interval) next to the estimate without labels (CBPE)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

import messages
import registry
from dashboard_shared import (
    STATUS_COLORS,
    STATUS_ORDER,
    draw_risk_bars,
    expected_metrics,
    feature_table,
    status_badge,
    traffic_light,
    window_label,
)

LAMP_STYLE = "display:inline-block;width:2.2rem;height:2.2rem;border-radius:50%;margin:0 .25rem"


def _lamps(status: str) -> str:
    """The three lamps of the traffic light as HTML, the one of ``status`` lit."""
    return "".join(
        f'<span style="{LAMP_STYLE};background:{STATUS_COLORS[lamp]};opacity:{1 if lamp == status else 0.18};'
        f'box-shadow:{"0 0 12px " + STATUS_COLORS[lamp] if lamp == status else "none"}"></span>'
        for lamp in ("red", "yellow", "green")
    )


def draw_traffic_light(
    status: str, counts: Mapping[str, int], run: Mapping, output_status: str | None
) -> None:
    """The overall traffic light (the lit lamp is the status), the verdict and the counts."""
    color = STATUS_COLORS.get(status, STATUS_COLORS["no_data"])
    title = f"Semáforo general: {messages.status_text(status).upper()}"
    st.markdown(
        f'<div id="semaforo" style="display:flex;align-items:center;gap:1.25rem;border:3px solid {color};'
        f'border-radius:14px;padding:.9rem 1.4rem">'
        f'<div style="background:#263238;border-radius:2rem;padding:.45rem .4rem;white-space:nowrap">'
        f"{_lamps(status)}</div>"
        f'<div><div style="font-size:1.6rem;font-weight:700;color:{color}">{title}</div>'
        f'<div style="font-size:1rem">{messages.VERDICTS.get(status, "")}</div></div></div>',
        unsafe_allow_html=True,
    )
    st.write("")
    cols = st.columns(5)
    cols[0].metric("Variables en verde", counts["green"])
    cols[1].metric("Variables en amarillo", counts["yellow"])
    cols[2].metric("Variables en rojo", counts["red"])
    cols[3].metric("Salida del modelo", messages.status_text(output_status) if output_status else "—")
    cols[4].metric(
        "Predicciones en la ventana",
        f"{int(run['n_rows']):,}".replace(",", "."),
        help=f"Muestra analizada: {int(run['n_sampled'])} filas",
    )


def draw_feature_statuses(statuses: Mapping[str, str]) -> None:
    """Features grouped by status, the worst first."""
    for status in STATUS_ORDER:
        names = [messages.feature_label(f) for f, s in statuses.items() if s == status]
        if names:
            st.markdown(f"{status_badge(status)} " + ", ".join(f"**{n}**" for n in names))


def draw_recommendations(recommendations: list[Mapping]) -> None:
    st.subheader("Recomendaciones")
    if not recommendations:
        st.markdown("Ninguna: siga monitoreando.")
    for item in recommendations:
        st.markdown(f"- {messages.recommendation_text(item)}")


def draw_alerts(alerts: list[Mapping]) -> None:
    """Red alerts in full; yellow ones (and notes) in an expander, open when nothing is red."""
    st.subheader("Alertas")
    if not alerts:
        st.success("Sin alertas en esta ventana.")
    red = [a for a in alerts if a.get("level") == "red"]
    for alert in red:
        st.error(messages.alert_text(alert))
    others = [a for a in alerts if a.get("level") != "red"]
    if others:
        with st.expander(f"Alertas en amarillo y avisos ({len(others)})", expanded=not red):
            for alert in others:
                (st.warning if alert.get("level") == "yellow" else st.info)(messages.alert_text(alert))


def _delta(value: float | None, expected: float | None) -> str | None:
    if value is None or expected is None:
        return None
    return f"{value - expected:+.3f} vs esperado"


def draw_performance_now(summary: Mapping, metadata: registry.ModelMetadata | None) -> None:
    """The window's realized metrics (with the primary one's interval) next to the estimate without
    labels (CBPE), each against its expected value (out-of-fold cross-validation)."""
    realized, estimated = summary.get("realized"), summary.get("estimated") or {}
    performance = summary.get("performance") or {}
    if not performance and not estimated:
        return
    st.subheader("Desempeño del modelo")
    expected, estimates = expected_metrics(metadata), estimated.get("metrics") or {}
    primary = (realized or {}).get("primary") or "roc_auc"
    names = dict.fromkeys([primary, *performance, *estimates])  # the primary metric first
    shown = [name for name in names if name in performance or name in estimates][:5]
    cols = st.columns(max(len(shown), 1))
    for col, metric in zip(cols, shown, strict=False):
        if metric in performance:
            col.metric(
                f"{metric} real",
                f"{performance[metric]:.3f}",
                _delta(performance[metric], expected.get(metric)),
            )
        if metric in estimates:
            col.metric(
                f"{metric} estimado",
                f"{estimates[metric]:.3f}",
                _delta(estimates[metric], expected.get(metric)),
            )
    st.caption(
        f"Real: {messages.realized_text(realized)}. Estimado sin etiquetas (CBPE): "
        f"{messages.estimate_text(estimated, primary)}. "
        "Esperado: la media de validación cruzada del entrenamiento."
    )


def overview_page(
    run: Mapping, window: pd.DataFrame, limits: Mapping, metadata: registry.ModelMetadata | None
) -> None:
    """The page for one monitoring window (``run``; ``window`` its drift rows, ``limits`` the
    limits they were judged by) of a version (``metadata``, None if not on disk)."""
    summary = run["summary"] or {}
    status, counts = traffic_light(summary)
    output = summary.get("output")
    features = summary.get("features") or {}
    st.caption(
        f"Modelo vigilado: **{run['model_version']}** · Ventana: **{window_label(run)}** · "
        f"Calculado: {pd.Timestamp(run['created_at']):%d/%m/%Y %H:%M} UTC"
    )
    draw_traffic_light(status, counts, run, features.get(output) if output else None)
    if not window.empty:
        draw_risk_bars(feature_table(window, limits), title="Riesgo por variable en esta ventana")
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Estado por variable")
        draw_feature_statuses(features)
        draw_recommendations(summary.get("recommendations") or [])
    with right:
        draw_alerts(summary.get("alerts") or [])
    draw_performance_now(summary, metadata)
