"""Dashboard page "Comparación de modelos": the stored shadow comparisons of a challenger with the
champion (newest first; one chosen from a selector) as a table painted by verdict, with its
conclusion, and the audit of every promotion (``PUT /models/default``) and refusal."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

import messages
from dashboard_shared import styled

VERDICT_STATUS = {"better": "green", "worse": "red", "inconclusive": "insufficient"}
"""The status colour each verdict is painted with (`dashboard_shared.STATUS_COLORS`)."""
COMPARE = "`python mlops_pipeline/src/model_monitoring.py compare --challenger <versión>`"
NO_COMPARISONS_MESSAGE = (
    "Todavía no hay comparaciones guardadas. Genere tráfico con resultados reales "
    "(`python mlops_pipeline/src/model_monitoring.py simulate`, o `POST /feedback`) y compare un retador "
    f"con el campeón: {COMPARE}. `PUT /models/default` y `--retrain` también guardan la suya."
)
NO_PROMOTIONS_MESSAGE = "Nadie ha promovido un modelo con `PUT /models/default` todavía."
PROMOTION_COLUMNS = {
    "created_at": "Fecha (UTC)",
    "version": "Versión",
    "previous_version": "Campeón anterior",
    "outcome": "Resultado",
    "forced": "Forzado",
    "requested_by": "Quién",
    "client": "Cliente",
    "comparison_id": "Comparación n.º",
    "evidence": "Evidencia",
}


def comparison_label(row: Mapping) -> str:
    """How a stored comparison is named in the selector."""
    verdict = messages.COMPARISON_VERDICTS.get(row["primary_verdict"], row["primary_verdict"])
    return (
        f"n.º {row['id']} · {pd.Timestamp(row['created_at']):%d/%m/%Y %H:%M} · {row['challenger_version']} "
        f"frente a {row['champion_version']} · {row['primary_metric']}: {verdict}"
    )


def promotions_table(promotions: pd.DataFrame) -> pd.DataFrame:
    """The audit as the page shows it: Spanish columns and words, dates as day/month/year."""
    table = promotions.reindex(columns=list(PROMOTION_COLUMNS)).copy()
    table["created_at"] = table["created_at"].dt.strftime("%d/%m/%Y %H:%M")
    table["outcome"] = table["outcome"].map(lambda value: messages.PROMOTION_OUTCOMES.get(value, value))
    table["evidence"] = table["evidence"].map(lambda value: messages.PROMOTION_EVIDENCE.get(value, value))
    table["forced"] = table["forced"].map({True: "sí", False: "no"})
    table["comparison_id"] = table["comparison_id"].astype(object).where(table["comparison_id"].notna())
    return table.rename(columns=PROMOTION_COLUMNS)


def comparison_styler(row: Mapping) -> pd.io.formats.style.Styler:
    """A stored comparison's Spanish table (`messages.comparison_table`), each verdict painted in its
    colour (`VERDICT_STATUS`)."""
    table = messages.comparison_table(row["metrics"], row["level"])
    statuses = pd.Series([VERDICT_STATUS.get(item.get("verdict")) for item in row["metrics"]])
    return styled(table, statuses, [messages.COMPARISON_HEADERS["verdict"]])


def comparison_ui(comparisons: pd.DataFrame) -> Mapping:
    """The comparison to show (default: the newest)."""
    rows = {int(row["id"]): row for row in comparisons.to_dict("records")}
    chosen = st.selectbox(
        "Comparación", list(rows), format_func=lambda key: comparison_label(rows[key]), key="comparison"
    )
    return rows[chosen]


def draw_comparison(row: Mapping) -> None:
    """One comparison: what it compared, its table painted by verdict, and the conclusion."""
    source = messages.COMPARISON_SOURCES.get(row["source"], row["source"])
    st.caption(
        f"{messages.comparison_header(row)} Origen: {source}. "
        "Diferencia = retador − campeón, con el signo orientado para que positivo sea mejor para el retador."
    )
    st.dataframe(comparison_styler(row), hide_index=True, width="stretch")
    conclusion = messages.comparison_conclusion(row)
    {"worse": st.error, "better": st.success}.get(row["primary_verdict"], st.info)(conclusion)


def comparison_page(comparisons: pd.DataFrame, promotions: pd.DataFrame) -> None:
    """The page: the chosen stored comparison and the promotion audit (both newest first)."""
    if comparisons.empty:
        st.info(NO_COMPARISONS_MESSAGE)
    else:
        draw_comparison(comparison_ui(comparisons))
    st.subheader("Promociones del modelo por defecto")
    if promotions.empty:
        st.caption(NO_PROMOTIONS_MESSAGE)
        return
    st.dataframe(promotions_table(promotions), hide_index=True, width="stretch")
