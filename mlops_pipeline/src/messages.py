"""Spanish text of the codes the monitoring stores: statuses, statistics, features, alerts,
recommendations and result details. The CLI and the dashboard render through these functions.

The history tables hold codes and numbers only (``{"code": "trend", "feature": "Income",
"method": "psi"}``); rows written before that, with Spanish sentences (an alert's ``message``, a
sentence as a detail), and codes this module does not know are shown as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

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
