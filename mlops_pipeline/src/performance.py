"""The model's performance in a monitoring window: realized, with a confidence interval, where
outcomes exist; estimated without them (CBPE) from the logged scores.

Realized (``realized_performance``): the task's metrics on the window's labelled predictions
(``metrics.performance_metrics``) and an interval of the primary metric (DeLong's for ROC-AUC, a
percentile bootstrap for the others). A
window is red for performance only when the whole interval is worse than the **expected** value by
more than ``monitoring.performance_drop`` (absolute for scores such as ROC-AUC, relative for
errors such as RMSE). The expected value is the version's out-of-fold cross-validation mean, not
its single test split, which is optimistic for the model that won the selection on it.

Estimated (``estimate``), confidence-based performance estimation (CBPE, as NannyML names it):
training saves, per version, an isotonic calibration of the out-of-fold scores
(``save_calibration``: for a binary task the chance that the positive class is true given the
positive-class score; for a multiclass one the chance that the predicted class is right given its
probability). A window's scores, counted on the reference's value grid, then give an expected
confusion matrix and expected ROC curve: each prediction counts as positive with weight p and as
negative with weight 1 - p (binary: accuracy, precision, recall, F1 at the version's threshold and
ROC-AUC; multiclass: accuracy). It assumes no concept drift (the calibration still holds); the
estimate says why it is not trustworthy when it is not: scores outside the calibrated range, a
calibration on too few rows, or an estimate outside the realized interval (then concept drift is
the likely reason). Regression has no estimate (``{"available": False, "reasons": ["regression"]}``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

import drift
import metrics
import registry

CALIBRATION_FILE = "performance_calibration.json"
CALIBRATION_FORMAT = 1
MIN_CALIBRATION_ROWS = 200
"""Below this many out-of-fold rows an estimate is flagged ``few_calibration_rows``."""
MAX_OUTSIDE_SHARE = 0.05
"""Above this share of window scores outside the calibrated range, ``outside_calibration``."""


# ----------------------------------------------------------------------------- realized
def _labelled(outcomes: pd.DataFrame, metadata: registry.ModelMetadata) -> tuple[np.ndarray, ...]:
    """(true, predicted, score) arrays of the rows whose outcome is readable, coded as
    ``metrics.performance_metrics`` codes them (class positions; numbers for regression)."""
    if metadata.task == "regression":
        y_true = pd.to_numeric(outcomes["actual"], errors="coerce").to_numpy(dtype=float)
        y_pred = pd.to_numeric(outcomes["prediction"], errors="coerce").to_numpy(dtype=float)
        known = ~(np.isnan(y_true) | np.isnan(y_pred))
        return y_true[known], y_pred[known], y_pred[known]
    y_true = pd.Categorical(outcomes["actual"].astype(str), categories=metadata.classes).codes
    y_pred = pd.Categorical(outcomes["prediction"].astype(str), categories=metadata.classes).codes
    known = (y_true >= 0) & (y_pred >= 0)
    return y_true[known], y_pred[known], outcomes["score"].to_numpy(dtype=float)[known]


def _metric(metadata: registry.ModelMetadata, name: str) -> metrics.Metric:
    """The metric ``name`` of the version's task, over class codes as ``_labelled`` gives them."""
    kind = metrics.task_kind(metadata.task, metadata.classes)
    codes = list(range(len(metadata.classes)))
    positive = metadata.classes.index(metadata.positive_class) if kind == "binary" else None
    return metrics.metric_table(kind, codes, positive)[name]


def bootstrap_interval(
    metric: metrics.Metric, arrays: tuple[np.ndarray, ...], level: float, draws: int, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over labelled rows (resampled with replacement;
    resamples where the metric is undefined, e.g. one class only for ROC-AUC, are left out)."""
    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for _ in range(draws):
            rows = rng.integers(0, size, size)
            try:
                values.append(metric(*(array[rows] for array in arrays)))
            except ValueError:
                continue
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def delong_interval(positive: np.ndarray, scores: np.ndarray, level: float) -> tuple[float, float]:
    """DeLong's interval of the ROC-AUC: AUC +- z * its standard error, from each positive's and
    each negative's share of the pairs it wins (ties count half; DeLong, DeLong & Clarke-Pearson,
    1988), clipped to [0, 1]. NaN without both classes."""
    positive = np.asarray(positive, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    ranks = stats.rankdata(scores)
    wins_of_positives = (ranks[positive] - stats.rankdata(scores[positive])) / n
    losses_of_negatives = 1 - (ranks[~positive] - stats.rankdata(scores[~positive])) / m
    auc = float(wins_of_positives.mean())
    variance = wins_of_positives.var(ddof=1) / m if m > 1 else 0.0
    variance += losses_of_negatives.var(ddof=1) / n if n > 1 else 0.0
    half = stats.norm.isf((1 - level) / 2) * math.sqrt(variance)
    return float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def interval(
    metadata: registry.ModelMetadata, name: str, arrays: tuple[np.ndarray, ...], config: Any, seed: int
) -> tuple[float, float]:
    """The ``config.performance_ci`` interval of metric ``name``: DeLong's for a binary ROC-AUC, a
    percentile bootstrap (``config.bootstrap_draws`` resamples) for every other metric."""
    if name == "roc_auc" and metadata.is_binary:
        positive = arrays[0] == metadata.classes.index(metadata.positive_class)
        return delong_interval(positive, arrays[2], config.performance_ci)
    metric = _metric(metadata, name)
    return bootstrap_interval(metric, arrays, config.performance_ci, config.bootstrap_draws, seed)


def expected_value(metadata: registry.ModelMetadata, name: str) -> tuple[float | None, str]:
    """What a metric should be without drift: the out-of-fold CV mean, else the test value."""
    cv = (metadata.metrics.get("cv") or {}).get(name) or {}
    if isinstance(cv.get("mean"), (int, float)) and math.isfinite(cv["mean"]):
        return float(cv["mean"]), "cv"
    test = metadata.test_metrics.get(name)
    return (float(test), "test") if isinstance(test, (int, float)) else (None, "none")


def worse_beyond(name: str, bound: float, expected: float, margin: float) -> float | None:
    """How much worse than ``expected`` the interval's best bound ``bound`` is beyond ``margin``
    (absolute for scores, relative for errors, as ``metrics.performance_drops``); None if not."""
    lower = name in metrics.LOWER_IS_BETTER
    worsening = (bound - expected) if lower else (expected - bound)
    return float(worsening) if worsening > margin * (abs(expected) if lower else 1.0) else None


def realized_performance(
    outcomes: pd.DataFrame, metadata: registry.ModelMetadata, config: Any, seed: int = 0
) -> dict | None:
    """The window's realized performance, or None below ``config.min_feedback`` outcomes.

    Returns:
        ``{"metrics": {name: value}, "primary", "value", "low", "high", "confidence", "expected",
        "expected_from" ("cv" / "test"), "n", "drop"}``; ``drop`` is how much worse than expected
        the interval's best bound is beyond the margin (the window is red), else None.
    """
    if len(outcomes) < config.min_feedback:
        return None
    values = metrics.performance_metrics(outcomes, metadata)
    primary = metrics.primary_metric(metadata, values)
    result: dict[str, Any] = {"metrics": values, "primary": primary, "n": len(outcomes), "drop": None}
    if primary is None:
        return result
    low, high = interval(metadata, primary, _labelled(outcomes, metadata), config, seed)
    expected, source = expected_value(metadata, primary)
    result |= {"value": values[primary], "low": low, "high": high, "confidence": config.performance_ci}
    result |= {"expected": expected, "expected_from": source}
    if expected is not None and np.isfinite([low, high]).all():
        best = low if primary in metrics.LOWER_IS_BETTER else high
        result["drop"] = worse_beyond(primary, best, expected, config.performance_drop)
    return result


# ----------------------------------------------------------------------------- CBPE calibration
def calibration_path(models_dir: Path, version: str) -> Path:
    return models_dir / version / CALIBRATION_FILE


def fit_calibration(scores: np.ndarray, labels: Any, metadata: registry.ModelMetadata) -> dict | None:
    """The isotonic map from a version's out-of-fold scores to the chance of being right.

    Args:
        scores: binary: the positive-class probability; multiclass: the probability matrix (one
            column per class, in ``metadata.classes`` order).
        labels: the true classes of the same rows.
        metadata: the version (its task, classes and positive class).

    Returns:
        ``{"format", "kind", "x", "y", "rows", "score_range"}`` (``x`` -> ``y`` is the step
        function, read with ``np.interp``), or None for regression.
    """
    kind = metrics.task_kind(metadata.task, metadata.classes)
    if kind == "regression":
        return None
    labels = np.asarray(labels).astype(str)
    scores = np.asarray(scores, dtype=float)
    if kind == "binary":
        x, y = scores, (labels == str(metadata.positive_class)).astype(float)
    else:
        classes = np.asarray([str(c) for c in metadata.classes])
        x, y = scores.max(axis=1), (classes[scores.argmax(axis=1)] == labels).astype(float)
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return {
        "format": CALIBRATION_FORMAT,
        "kind": kind,
        "x": isotonic.X_thresholds_.tolist(),
        "y": isotonic.y_thresholds_.tolist(),
        "rows": int(len(x)),
        "score_range": [float(x.min()), float(x.max())],
    }


def save_calibration(
    models_dir: Path, version: str, scores: np.ndarray, labels: Any, metadata: registry.ModelMetadata
) -> Path | None:
    """Fit (``fit_calibration``) and save a version's CBPE calibration; None for regression."""
    calibration = fit_calibration(scores, labels, metadata)
    if calibration is None:
        return None
    path = calibration_path(models_dir, version)
    registry.write_json_atomic(path, calibration)
    return path


def load_calibration(models_dir: Path, version: str) -> dict | None:
    """A version's CBPE calibration, or None when it was saved without one."""
    path = calibration_path(models_dir, version)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# ----------------------------------------------------------------------------- CBPE estimate
def score_cells(entry: dict, grid_counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column's window counts on its profile's value grid as (score, count) per cell:
    a reference value, the midpoint between two, or the end value for counts beyond the range."""
    values = np.asarray(entry["values"], dtype=float)
    counts = np.asarray(grid_counts, dtype=float)
    between = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [values[-1]]])
    cells = np.empty(len(counts))
    cells[0::2], cells[1::2] = between, values
    used = counts > 0
    return cells[used], counts[used]


def _binary_estimate(scores: np.ndarray, weights: np.ndarray, chance: np.ndarray, threshold: float) -> dict:
    """Expected metrics when each prediction is a positive with weight p and a negative with 1 - p."""
    truth = np.r_[np.ones(len(scores)), np.zeros(len(scores))]
    weight = np.r_[weights * chance, weights * (1 - chance)]
    predicted = np.tile(scores >= threshold, 2).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        estimated = {
            "accuracy": accuracy_score(truth, predicted, sample_weight=weight),
            "precision": precision_score(truth, predicted, sample_weight=weight, zero_division=0),
            "recall": recall_score(truth, predicted, sample_weight=weight, zero_division=0),
            "f1": f1_score(truth, predicted, sample_weight=weight, zero_division=0),
        }
        if 0 < weight[: len(scores)].sum() and 0 < weight[len(scores) :].sum():
            estimated["roc_auc"] = roc_auc_score(truth, np.tile(scores, 2), sample_weight=weight)
    return {name: float(value) for name, value in estimated.items()}


def _untrusted(calibration: dict, scores: np.ndarray, weights: np.ndarray) -> list[str]:
    low, high = calibration["score_range"]
    outside = weights[(scores < low) | (scores > high)].sum() / weights.sum()
    reasons = ["few_calibration_rows"] if calibration["rows"] < MIN_CALIBRATION_ROWS else []
    return reasons + (["outside_calibration"] if outside > MAX_OUTSIDE_SHARE else [])


def estimate(profile: dict, counts: dict, calibration: dict | None, metadata: registry.ModelMetadata) -> dict:
    """CBPE of a window from its counts (``drift.current_counts``) of the score column.

    Returns:
        ``{"available", "metrics": {name: value}, "trusted", "reasons": [codes], "rows"}``;
        without an estimate, ``{"available": False, "reasons": [why]}`` (``regression``,
        ``no_calibration``, ``no_scores``).
    """
    if metadata.task == "regression":
        return {"available": False, "reasons": ["regression"]}
    if calibration is None:
        return {"available": False, "reasons": ["no_calibration"]}
    entry = profile["features"].get(drift.SCORE_COLUMN)
    window = counts.get(drift.SCORE_COLUMN)
    if entry is None or window is None or not entry.get("values") or not sum(window["grid"]):
        return {"available": False, "reasons": ["no_scores"]}
    scores, weights = score_cells(entry, window["grid"])
    chance = np.interp(scores, calibration["x"], calibration["y"])
    if calibration["kind"] == "binary":
        estimated = _binary_estimate(scores, weights, chance, float(metadata.threshold or 0.5))
    else:
        estimated = {"accuracy": float(np.average(chance, weights=weights))}
    reasons = _untrusted(calibration, scores, weights)
    return {
        "available": True,
        "metrics": estimated,
        "trusted": not reasons,
        "reasons": reasons,
        "rows": int(weights.sum()),
    }


def compare(estimated: dict, realized: dict | None) -> dict:
    """``estimated`` with ``disagrees_with_realized`` among its reasons when the realized interval
    of the primary metric excludes the estimate (the calibration no longer holds: concept drift)."""
    if not estimated.get("available") or not realized or realized.get("low") is None:
        return estimated
    value = estimated["metrics"].get(realized["primary"])
    if value is None or not np.isfinite([realized["low"], realized["high"]]).all():
        return estimated
    if realized["low"] <= value <= realized["high"]:
        return estimated
    reasons = [*estimated["reasons"], "disagrees_with_realized"]
    return estimated | {"trusted": False, "reasons": reasons}
