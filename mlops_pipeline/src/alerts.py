"""A monitored window's verdict, alerts and recommendations, as codes and numbers (pure).

`messages` renders them in Spanish for the CLI and the dashboard.
"""

from __future__ import annotations

import pandas as pd

import drift
from settings import MonitoringConfig

FLAGGED = ("yellow", "red")


RED_ADVICE = (
    ("check_pipeline", "missing_changed", {"missing_share"}),
    ("check_pipeline", "unseen_categories", {"unseen_share"}),
    ("review_feature", "distribution_changed", {"psi", "jensen_shannon", "out_of_range_share"}),
)
"""What to recommend for a feature by the statistics that made it red: action, code, statistics."""


# ----------------------------------------------------------------------------- verdict, alerts, advice
def overall_status(feature_statuses: list[str], performance_drops: dict[str, float]) -> str:
    """A window's verdict: the worst feature status, or red when the model's metrics dropped."""
    return "red" if performance_drops else drift.worst_status(feature_statuses)


def _feature_alerts(results: pd.DataFrame, statuses: pd.DataFrame) -> list[dict]:
    """One alert per yellow or red feature, with the statistics that flagged it."""
    flagged = results[results["status"].isin(FLAGGED)]
    return [
        {
            "level": row.status,
            "code": "feature_drift",
            "feature": row.feature,
            "statistics": [
                {"method": r.method, "value": r.statistic, "detail": r.detail}
                for r in flagged[flagged["feature"] == row.feature].itertuples()
            ],
        }
        for row in statuses[statuses["status"].isin(FLAGGED)].itertuples()
    ]


def _feature_recommendations(results: pd.DataFrame) -> list[dict]:
    """What to check for each feature, by the statistics that made it red (``RED_ADVICE``)."""
    red = results[results["status"] == "red"]
    return [
        {"action": action, "code": code, "feature": feature}
        for feature, methods in red.groupby("feature", sort=False)["method"]
        for action, code, statistics in RED_ADVICE
        if statistics & set(methods)
    ]


def _retrain(statuses: pd.DataFrame, drops: dict[str, float], config: MonitoringConfig) -> list[dict]:
    """The retrain recommendation and its reasons, when there are any."""
    red = set(statuses.loc[statuses["status"] == "red", "feature"])
    reasons = [
        reason
        for reason, applies in (
            ("performance_drop", bool(drops)),
            ("output_drift", bool(red & set(drift.OUTPUT_COLUMNS))),
            ("red_features", len(red) >= config.retrain_red_features),
        )
        if applies
    ]
    if not reasons:
        return []
    return [
        {
            "action": "retrain",
            "code": "retrain",
            "feature": None,
            "reasons": reasons,
            "red_features": len(red),
        }
    ]


def performance_drops(realized: dict | None) -> dict[str, float]:
    """{primary metric: worsening} when the window's interval is worse than expected beyond the margin."""
    return {realized["primary"]: realized["drop"]} if realized and realized.get("drop") is not None else {}


def _performance_alerts(realized: dict | None) -> list[dict]:
    """The red alert of a performance drop, with the interval and the expected value behind it."""
    if not performance_drops(realized):
        return []
    numbers = {
        key: realized[key] for key in ("value", "low", "high", "confidence", "expected", "expected_from")
    }
    return [
        {
            "level": "red",
            "code": "performance_drop",
            "feature": None,
            "metric": realized["primary"],
            "worsening": realized["drop"],
            **numbers,
        }
    ]


def alerts_and_recommendations(
    results: pd.DataFrame,
    changes: pd.DataFrame,
    realized: dict | None,
    config: MonitoringConfig,
) -> tuple[list[dict], list[dict]]:
    """Alerts and recommendations of a window as codes and numbers (``messages`` renders them).

    Args:
        results: the window's drift rows (``drift.drift_from_counts``).
        changes: its trend and jump flags (``calibration.detect_changes``), possibly empty.
        realized: its realized performance (``performance.realized_performance``) or None.
        config: the monitoring settings.

    Returns:
        (alerts, recommendations): alerts have ``level`` (red / yellow), ``code`` (feature_drift,
        trend, jump, performance_drop), ``feature`` and the code's numbers; recommendations have
        ``action`` (retrain / review_feature / check_pipeline), ``code`` and ``feature``.
    """
    statuses = drift.feature_status(results)
    flagged = changes[changes["trend"] | changes["abrupt"]] if not changes.empty else changes
    change_alerts = [
        {
            "level": "yellow",
            "code": "trend" if row.trend else "jump",
            "feature": row.feature,
            "method": row.method,
        }
        for row in flagged.itertuples()
    ]
    alerts = _feature_alerts(results, statuses) + change_alerts + _performance_alerts(realized)
    drops = performance_drops(realized)
    return alerts, _retrain(statuses, drops, config) + _feature_recommendations(results)
