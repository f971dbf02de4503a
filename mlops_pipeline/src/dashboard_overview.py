"""Dashboard page "Resumen": the window's traffic light and verdict, the features by status,
alerts, recommendations and the model's performance with feedback."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

import messages
import registry
from dashboard_shared import (
    STATUS_COLORS,
    STATUS_ORDER,
    holdout_metrics,
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
        action = messages.action_text(item.get("action"))
        st.markdown(f"- **{action}**: {messages.recommendation_text(item)}")


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


def draw_performance_now(summary: Mapping, metadata: registry.ModelMetadata | None) -> None:
    """The window's metrics on predictions with feedback, against the test-set ones."""
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


def overview_page(run: Mapping, metadata: registry.ModelMetadata | None) -> None:
    """The page for one monitoring window (``run``) of a version (``metadata``, None if not on disk)."""
    summary = run["summary"] or {}
    status, counts = traffic_light(summary)
    output = summary.get("output")
    features = summary.get("features") or {}
    st.caption(
        f"Modelo vigilado: **{run['model_version']}** · Ventana: **{window_label(run)}** · "
        f"Calculado: {pd.Timestamp(run['created_at']):%Y-%m-%d %H:%M} UTC"
    )
    draw_traffic_light(status, counts, run, features.get(output) if output else None)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Estado por variable")
        draw_feature_statuses(features)
        draw_recommendations(summary.get("recommendations") or [])
    with right:
        draw_alerts(summary.get("alerts") or [])
    draw_performance_now(summary, metadata)
