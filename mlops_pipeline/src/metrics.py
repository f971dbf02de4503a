"""Metrics: one table of named metric functions, shared by training (CV, test, selection) and
monitoring (performance of logged predictions once their outcomes arrive)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    make_scorer,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.preprocessing import label_binarize

import registry


def _is_positive(y_true, pos_label) -> np.ndarray:
    return np.asarray(y_true) == pos_label


def roc_auc(y_true, y_score, *, pos_label) -> float:
    """Binary ROC-AUC of the positive-class probability."""
    return roc_auc_score(_is_positive(y_true, pos_label), y_score)


def pr_auc(y_true, y_score, *, pos_label) -> float:
    """Binary PR-AUC (average precision) of the positive-class probability."""
    return average_precision_score(_is_positive(y_true, pos_label), y_score)


def binary_log_loss(y_true, y_score, *, pos_label) -> float:
    """Log loss of the positive-class probability."""
    return log_loss(_is_positive(y_true, pos_label), y_score, labels=[False, True])


def binary_brier(y_true, y_score, *, pos_label) -> float:
    """Brier score (mean squared error) of the positive-class probability."""
    return brier_score_loss(_is_positive(y_true, pos_label), y_score)


def roc_auc_ovr(y_true, y_score, *, labels) -> float:
    """Multiclass ROC-AUC, one-vs-rest, macro average over classes."""
    return roc_auc_score(y_true, y_score, multi_class="ovr", average="macro", labels=labels)


def pr_auc_macro(y_true, y_score, *, labels) -> float:
    """Multiclass PR-AUC, one-vs-rest, macro average over classes."""
    return average_precision_score(label_binarize(y_true, classes=labels), y_score, average="macro")


def multiclass_log_loss(y_true, y_score, *, labels) -> float:
    """Log loss of the class-probability matrix."""
    return log_loss(y_true, y_score, labels=labels)


def multiclass_brier(y_true, y_score, *, labels) -> float:
    """Multiclass Brier score of the class-probability matrix."""
    return brier_score_loss(y_true, y_score, labels=labels)


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error; NaN when some true value is zero (undefined)."""
    if np.any(np.asarray(y_true, dtype=float) == 0):
        return math.nan
    return mean_absolute_percentage_error(y_true, y_pred)


@dataclass(frozen=True)
class Metric:
    """A metric function, what it scores (labels or probabilities), and its direction."""

    func: Callable[..., float]
    response: str = "predict"
    greater_is_better: bool = True
    kwargs: dict = field(default_factory=dict)

    def __call__(self, y_true, y_pred, y_score=None) -> float:
        values = y_score if self.response == "predict_proba" else y_pred
        return float(self.func(y_true, values, **self.kwargs))

    def scorer(self):
        """The same metric as a scikit-learn scorer (raw values, higher or lower is better)."""
        return make_scorer(self.func, response_method=self.response, **self.kwargs)


def metric_table(kind: str, labels: list | None = None, pos_label: Any = None) -> dict[str, Metric]:
    """The metrics of a task kind ("binary", "multiclass", "regression"), by name."""
    if kind == "regression":
        return {
            "mae": Metric(mean_absolute_error, greater_is_better=False),
            "rmse": Metric(root_mean_squared_error, greater_is_better=False),
            "r2": Metric(r2_score),
            "mape": Metric(mape, greater_is_better=False),
        }
    common = {"accuracy": Metric(accuracy_score), "balanced_accuracy": Metric(balanced_accuracy_score)}
    if kind == "binary":
        label = {"pos_label": pos_label, "zero_division": 0}
        proba = {"pos_label": pos_label}
        return common | {
            "precision": Metric(precision_score, kwargs=label),
            "recall": Metric(recall_score, kwargs=label),
            "f1": Metric(f1_score, kwargs=label),
            "roc_auc": Metric(roc_auc, "predict_proba", kwargs=proba),
            "pr_auc": Metric(pr_auc, "predict_proba", kwargs=proba),
            "log_loss": Metric(binary_log_loss, "predict_proba", False, proba),
            "brier": Metric(binary_brier, "predict_proba", False, proba),
        }
    macro = {"average": "macro", "zero_division": 0, "labels": labels}
    weighted = {"average": "weighted", "zero_division": 0, "labels": labels}
    proba = {"labels": labels}
    return common | {
        "precision_macro": Metric(precision_score, kwargs=macro),
        "recall_macro": Metric(recall_score, kwargs=macro),
        "f1_macro": Metric(f1_score, kwargs=macro),
        "f1_weighted": Metric(f1_score, kwargs=weighted),
        "roc_auc_ovr": Metric(roc_auc_ovr, "predict_proba", kwargs=proba),
        "pr_auc_macro": Metric(pr_auc_macro, "predict_proba", kwargs=proba),
        "log_loss": Metric(multiclass_log_loss, "predict_proba", False, proba),
        "brier": Metric(multiclass_brier, "predict_proba", False, proba),
    }


DEFAULT_PRIMARY = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "rmse"}


def performance_metrics(outcomes: pd.DataFrame, metadata: registry.ModelMetadata) -> dict[str, float]:
    """The task's metrics on predictions with known outcomes (``prediction``, ``score``, ``actual``)."""
    from sklearn import metrics

    if metadata.task == "regression":
        y_true = pd.to_numeric(outcomes["actual"], errors="coerce")
        y_pred = pd.to_numeric(outcomes["prediction"], errors="coerce")
        keep = y_true.notna() & y_pred.notna()
        y_true, y_pred = y_true[keep], y_pred[keep]
        result = {
            "mae": metrics.mean_absolute_error(y_true, y_pred),
            "rmse": metrics.root_mean_squared_error(y_true, y_pred),
        }
        if len(y_true) > 1:
            result["r2"] = metrics.r2_score(y_true, y_pred)
        if not (y_true == 0).any():  # MAPE is undefined when a true value is zero, as in training
            result["mape"] = metrics.mean_absolute_percentage_error(y_true, y_pred)
        return {k: float(v) for k, v in result.items()}
    # Integer class codes: sklearn is much faster on them than on text labels.
    classes = [str(c) for c in metadata.classes]
    y_true = pd.Categorical(outcomes["actual"].astype(str), categories=classes).codes
    y_pred = pd.Categorical(outcomes["prediction"].astype(str), categories=classes).codes
    known = (y_true >= 0) & (y_pred >= 0)
    if not known.any():
        return {}
    y_true, y_pred, score = y_true[known], y_pred[known], outcomes["score"].to_numpy(dtype=float)[known]
    result = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
    }
    positive = metadata.positive_class
    if positive in classes:
        code = classes.index(positive)
        result |= {
            "f1": metrics.f1_score(y_true, y_pred, pos_label=code, zero_division=0),
            "precision": metrics.precision_score(y_true, y_pred, pos_label=code, zero_division=0),
            "recall": metrics.recall_score(y_true, y_pred, pos_label=code, zero_division=0),
        }
        if len(np.unique(y_true)) == 2 and not np.isnan(score).any():
            result["roc_auc"] = metrics.roc_auc_score(y_true == code, score)
    else:
        labels = list(range(len(classes)))
        result["f1_macro"] = metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {k: float(v) for k, v in result.items()}


LOWER_IS_BETTER = {"mae", "rmse", "mse", "mape", "log_loss", "brier"}


def primary_metric(metadata: registry.ModelMetadata, available: dict[str, float]) -> str | None:
    """The metric that decides a performance alert: training's primary metric when the window has it."""
    for name in (
        metadata.primary_metric,
        "roc_auc",
        "f1_macro",
        "balanced_accuracy",
        "rmse",
    ):
        if name in available:
            return name
    return None


def performance_drops(
    current: dict[str, float], reference: dict[str, float], tolerance: float, names: list[str] | None = None
) -> dict[str, float]:
    """Metrics worse than at test time by more than ``tolerance``: {metric: worsening}.

    The tolerance is absolute for scores (accuracy, ROC-AUC...) and relative for errors (MAE, RMSE).
    ``names`` restricts the check (default: every metric in both).
    """
    drops = {}
    for name, value in current.items():
        if (
            (names is None or name in names)
            and name in reference
            and isinstance(reference[name], (int, float))
        ):
            worsening = (value - reference[name]) if name in LOWER_IS_BETTER else (reference[name] - value)
            scale = abs(reference[name]) if name in LOWER_IS_BETTER else 1.0
            if worsening > tolerance * scale:
                drops[name] = float(worsening)
    return drops
