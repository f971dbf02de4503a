"""Spanish text of the codes the monitoring stores: statuses, statistics, features, alerts,
recommendations and result details, and of the stored shadow comparisons. The CLI, the dashboard
and the retraining report render through these functions.

The history tables hold codes and numbers only (``{"code": "trend", "feature": "Income",
"method": "psi"}``); rows written before that, with Spanish sentences (an alert's ``message``, a
sentence as a detail), and codes this module does not know are shown as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

import drift

STATUS_LABELS = {
    "green": "Verde",
    "yellow": "Amarillo",
    "red": "Rojo",
    "no_data": "Sin datos",
    "insufficient_data": "Datos insuficientes",
}

VERDICTS = {
    "green": "Sin deriva relevante: el modelo trabaja con datos parecidos a los de entrenamiento.",
    "yellow": "Deriva moderada: vigile las variables en amarillo.",
    "red": "Deriva importante: revise las alertas y recomendaciones.",
    "no_data": "Sin datos en esta ventana.",
    "insufficient_data": "Muy pocas predicciones para juzgar la deriva: la ventana no tiene color.",
}

METHOD_LABELS = {
    "ks": "KS",
    "chi_squared": "chi-cuadrado",
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon",
    "missing_share": "cambio en % de faltantes",
    "out_of_range_share": "% fuera del rango de entrenamiento",
    "unseen_share": "% de categorías nuevas",
}

OUTPUT_LABELS = {
    drift.SCORE_COLUMN: "salida del modelo (score)",
    drift.PREDICTION_COLUMN: "salida del modelo (clase predicha)",
}

ACTION_LABELS = {
    "retrain": "Reentrenar",
    "review_feature": "Revisar variable",
    "check_pipeline": "Revisar el pipeline de datos",
}

DETAILS = {
    "no_current_rows": "sin filas en la ventana",
    "no_reference_rows": "sin filas de referencia",
    "empty_in_reference": "la columna está vacía en la referencia",
    "empty_in_window": "la columna está vacía en la ventana",
    "missing_change": "faltantes {reference:.1%} -> {current:.1%}",
}

ALERTS = {
    "trend": "Tendencia creciente de {method} en {feature} frente a las ventanas anteriores.",
    "jump": "Salto brusco de {method} en {feature} frente a las ventanas anteriores.",
    "performance_drop": (
        "El desempeño cayó: {metric} = {value:.3f} (intervalo de {confidence:.0%}: {low:.3f} a {high:.3f}), "
        "peor que lo esperado ({expected:.3f}, {expected_from}) incluso en el mejor caso del intervalo."
    ),
    "no_data": "Sin datos: no hay predicciones del modelo {version} entre {start} y {end}.",
    "insufficient_data": (
        "Datos insuficientes: {rows} predicciones del modelo {version} entre {start} y {end}; "
        "se necesitan al menos {min_rows} para juzgar la deriva."
    ),
}

EXPECTED_FROM = {"cv": "validación cruzada", "test": "prueba", "none": "sin referencia"}

ESTIMATE_REASONS = {
    "regression": "no disponible en regresión",
    "no_calibration": "la versión se guardó sin calibración (vuelva a entrenar)",
    "no_scores": "la ventana no tiene scores",
    "few_calibration_rows": "calibrada con pocas filas",
    "outside_calibration": "muchos scores fuera del rango calibrado",
    "disagrees_with_realized": "no coincide con el desempeño real (posible deriva de concepto)",
}

RECOMMENDATIONS = {
    "missing_changed": (
        "Revise el pipeline de datos: cambió la proporción de valores faltantes de {feature}."
    ),
    "unseen_categories": (
        "Revise el origen de {feature}: llegan categorías que el modelo no vio al entrenar."
    ),
    "distribution_changed": (
        "Revise la variable {feature}: su distribución cambió respecto al entrenamiento."
    ),
}

RETRAIN_REASONS = {
    "performance_drop": "cayó el desempeño con los resultados reales",
    "output_drift": "cambió la distribución de las predicciones",
    "red_features": "{red_features} variables en rojo",
}

LEGACY_DROP = "El desempeño empeoró: {metric} está {worsening:.3f} peor que en la evaluación de prueba."
"""Performance alerts stored before they carried an interval."""


def status_text(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def method_text(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def feature_label(feature: str) -> str:
    """How users see a feature name (the model output columns get a readable name)."""
    return OUTPUT_LABELS.get(feature, feature)


def action_text(action: str) -> str:
    return ACTION_LABELS.get(action, action)


def _coded(value: Any) -> Any:
    """A stored detail as its code dict: parsed from JSON text; None when empty; else as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def detail_text(detail: Mapping | str | None) -> str:
    """The note of a drift result row: a code dict, its JSON text, or a legacy sentence."""
    detail = _coded(detail)
    if detail is None:
        return ""
    if not isinstance(detail, Mapping):
        return str(detail)
    code = detail.get("code")
    if code == "unseen_values":
        values = ", ".join(f"{value} ({count})" for value, count in detail["values"].items())
        return f"categorías nuevas: {values}"
    return DETAILS[code].format(**detail) if code in DETAILS else str(code)


def _statistics_text(statistics: list[Mapping]) -> str:
    """``PSI = 0.31 (detail); KS = 0.2`` for the statistics that flagged a feature."""
    parts = []
    for item in statistics:
        note = detail_text(item.get("detail"))
        value = item.get("value")
        shown = "—" if value is None else f"{value:.3g}"
        parts.append(f"{method_text(item['method'])} = {shown}" + (f" ({note})" if note else ""))
    return "; ".join(parts)


def alert_text(alert: Mapping) -> str:
    """The Spanish message of a stored alert (legacy alerts keep their ``message``)."""
    code = alert.get("code")
    if code == "feature_drift":
        return f"Deriva en {feature_label(alert['feature'])}: {_statistics_text(alert['statistics'])}"
    if code == "performance_drop" and alert.get("low") is None:
        return LEGACY_DROP.format(**alert)
    if code in ALERTS:
        params = {
            **alert,
            "feature": feature_label(alert.get("feature")),
            "method": method_text(alert.get("method")),
            "expected_from": EXPECTED_FROM.get(alert.get("expected_from"), alert.get("expected_from")),
        }
        return ALERTS[code].format(**params)
    return str(alert.get("message") or code)


RETRAIN_COMMAND = "python mlops_pipeline/src/model_training_evaluation.py --retrain"
"""What the retrain recommendation tells the user to run (it writes reports/retrain_<version>.md)."""


def recommendation_text(recommendation: Mapping) -> str:
    """The Spanish message of a stored recommendation (legacy ones keep their ``message``)."""
    code = recommendation.get("code")
    if code == "retrain":
        reasons = [RETRAIN_REASONS.get(r, r).format(**recommendation) for r in recommendation["reasons"]]
        return (
            "Reentrene el modelo con datos recientes: " + ", ".join(reasons) + ". Comando: " + RETRAIN_COMMAND
        )
    if code in RECOMMENDATIONS:
        return RECOMMENDATIONS[code].format(feature=feature_label(recommendation.get("feature")))
    return str(recommendation.get("message") or code)


def _number(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def realized_text(realized: Mapping | None) -> str:
    """``roc_auc 0.842 (intervalo de 95 %: 0.801 a 0.879; esperado 0.841)`` for a window with feedback."""
    if not realized or realized.get("primary") is None:
        return "sin resultados reales suficientes"
    interval = ""
    if realized.get("low") is not None:
        low, high, expected = (_number(realized.get(key)) for key in ("low", "high", "expected"))
        interval = f" (intervalo de {realized['confidence']:.0%}: {low} a {high}; esperado {expected})"
    value = f"{realized['primary']} {_number(realized.get('value'))}{interval}"
    return f"{value} con {realized['n']} resultados llegados en la ventana"


def estimate_text(estimated: Mapping | None, metric: str | None = None) -> str:
    """The CBPE estimate of a window, or why there is none / why it is not trustworthy."""
    if not estimated:
        return "no calculada"
    reasons = ", ".join(ESTIMATE_REASONS.get(r, r) for r in estimated.get("reasons", []))
    if not estimated.get("available"):
        return f"no disponible: {reasons}"
    values = estimated["metrics"]
    name = metric if metric in values else next(iter(values))
    text = f"{name} {_number(values[name])}"
    return f"{text} (poco fiable: {reasons})" if reasons else text


def performance_lines(summary: Mapping) -> list[str]:
    """The performance lines of a window's report: realized with its interval, and estimated."""
    realized, estimated = summary.get("realized"), summary.get("estimated")
    if realized is None and estimated is None:
        return []
    primary = (realized or {}).get("primary") or "roc_auc"
    return [
        f"desempeño real: {realized_text(realized)}",
        f"desempeño estimado sin etiquetas (CBPE): {estimate_text(estimated, primary)}",
    ]


# ----------------------------------------------------------------------------- shadow comparison
COMPARISON_VERDICTS = {"better": "mejor", "worse": "peor", "inconclusive": "no concluyente"}
COMPARISON_HEADERS = {
    "metric": "métrica",
    "champion": "campeón",
    "challenger": "retador",
    "difference": "diferencia",
    "interval": "intervalo {level:g} %",
    "verdict": "veredicto",
}
"""The columns of a comparison table, in order (the difference is challenger minus champion, signed
so that positive is better for the challenger)."""

CONCLUSIONS = {
    "worse": (
        "El retador es peor en {metric}: no lo promueva "
        '(PUT /models/default lo rechaza salvo con "force": true).'
    ),
    "better": "El retador es mejor en {metric}: puede promoverlo con PUT /models/default.",
    "inconclusive": (
        "Sin diferencia demostrada en {metric} (el intervalo contiene el 0): se puede promover, "
        "pero no está probado que mejore."
    ),
}

COMPARE_ERRORS = {
    "unknown_version": "la versión '{version}' no existe; versiones guardadas: {available}",
    "no_labelled_rows": (
        "no hay entradas registradas con resultado real{since}: envíe resultados con POST /feedback "
        "(o simule tráfico con python mlops_pipeline/src/model_monitoring.py simulate)"
    ),
    "incomparable": (
        "no se pueden comparar {challenger} y {champion}: no predicen lo mismo "
        "({challenger_task} {challenger_classes} frente a {champion_task} {champion_classes})"
    ),
    "cannot_compare": "no se pudo comparar {challenger} con {champion}: {detail}",
}


COMPARISON_SOURCES = {"cli": "CLI", "api": "API (al promover)", "retrain": "reentrenamiento"}
PROMOTION_OUTCOMES = {"promoted": "promovido", "refused": "rechazado"}
PROMOTION_EVIDENCE = {
    "compared": "comparación",
    "no_evidence": "sin resultados reales",
    "same_version": "ya era el campeón",
    "no_champion": "sin campeón",
    "incomparable": "no comparables",
}
"""What a promotion relied on (`shadow.EVIDENCE`), as the dashboard's audit table says it."""


def since_text(since: Any) -> str:
    """`` desde el 01/12/2026`` for a comparison restricted to rows logged since a date, else ``""``."""
    return "" if since is None or pd.isna(since) else f" desde el {pd.Timestamp(since):%d/%m/%Y}"


def compare_error_text(code: str, params: Mapping) -> str:
    """The Spanish one-line message of why a comparison could not run (`shadow.CannotCompare`)."""
    values = {**params, "since": since_text(params.get("since"))}
    return COMPARE_ERRORS[code].format(**values) if code in COMPARE_ERRORS else str(code)


def interval_text(low: Any, high: Any) -> str:
    return f"[{_signed(low)}; {_signed(high)}]"


def _signed(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:+.4f}"


def comparison_table(rows: list[Mapping], level: float) -> pd.DataFrame:
    """A stored comparison's per-metric rows as the Spanish table (`COMPARISON_HEADERS`): both values
    and the difference as numbers, the interval and the verdict as text."""
    table = pd.DataFrame(list(rows)).reindex(columns=["metric", "champion", "challenger", "difference"])
    table[["champion", "challenger", "difference"]] = table[["champion", "challenger", "difference"]].astype(
        float
    )
    table["interval"] = [interval_text(row.get("low"), row.get("high")) for row in rows]
    table["verdict"] = [COMPARISON_VERDICTS.get(row.get("verdict"), row.get("verdict")) for row in rows]
    headers = {key: label.format(level=100 * level) for key, label in COMPARISON_HEADERS.items()}
    return table.rename(columns=headers)


def comparison_header(row: Mapping) -> str:
    """Which versions a stored comparison compared, on how many rows, and how."""
    return (
        f"Comparación n.º {row['id']}: retador {row['challenger_version']} frente al campeón "
        f"{row['champion_version']}, sobre {row['n_rows']} entradas registradas con resultado real"
        f"{since_text(row.get('since'))}; bootstrap pareado de {row['resamples']} remuestras "
        f"(semilla {row['seed']})."
    )


def comparison_conclusion(row: Mapping) -> str:
    """What a stored comparison says about promoting the challenger: its primary metric's verdict,
    difference and interval."""
    metric = row["primary_metric"]
    primary = next((item for item in row["metrics"] if item["metric"] == metric), {})
    verdict = row["primary_verdict"]
    text = CONCLUSIONS.get(verdict, "{metric}: " + str(verdict)).format(metric=metric)
    interval = interval_text(primary.get("low"), primary.get("high"))
    level = f"{100 * row['level']:g} %"
    return f"{text} Diferencia {_signed(primary.get('difference'))}, intervalo {level} {interval}."
