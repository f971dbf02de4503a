"""Metrics: one table of named metric functions, shared by training (CV, test, selection) and
monitoring (performance of logged predictions once their outcomes arrive).

`metric_table` is the only place a metric is defined: its function, whether it scores labels or
probabilities, and its direction. Training turns the table into scikit-learn scorers
(`scoring`) and test summaries (`evaluate`); monitoring computes the same table on logged
predictions (`performance_metrics`) and judges a drop by each metric's direction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix_at_thresholds,
    f1_score,
    log_loss,
    make_scorer,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)
from sklearn.preprocessing import label_binarize

import registry
from settings import Costs

KINDS = ("binary", "multiclass", "regression")
INTERVAL_LEVEL = 0.9
DEFAULT_PRIMARY = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "rmse"}
HEADLINE = {  # the few metrics a summary shows first, per kind
    "binary": ["roc_auc", "pr_auc", "f1", "balanced_accuracy", "brier"],
    "multiclass": ["roc_auc_ovr", "f1_macro", "balanced_accuracy", "log_loss"],
    "regression": ["rmse", "mae", "r2", "mape"],
}
# Alert metrics for a window without the primary one (multiclass logs no probability matrix).
LABEL_FALLBACKS = ("f1_macro", "balanced_accuracy")
EXPECTED_COST = "expected_cost"  # the decision cost per row, beside the table's metrics when costs are set


def task_kind(task: str, classes: Sequence) -> str:
    """The kind of a task: ``regression``, ``binary`` (two classes) or ``multiclass``."""
    if task == "regression":
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def headline(kind: str, primary: str) -> list[str]:
    """The metrics a summary of a task kind shows, the primary one first."""
    return [primary, *[name for name in HEADLINE[kind] if name != primary]]


def is_positive(y_true, pos_label) -> np.ndarray:
    """A boolean array: which true labels are the positive class."""
    return np.asarray(y_true) == pos_label


def roc_auc(y_true, y_score, *, pos_label) -> float:
    """Binary ROC-AUC of the positive-class probability."""
    return roc_auc_score(is_positive(y_true, pos_label), y_score)


def pr_auc(y_true, y_score, *, pos_label) -> float:
    """Binary PR-AUC (average precision) of the positive-class probability."""
    return average_precision_score(is_positive(y_true, pos_label), y_score)


def binary_log_loss(y_true, y_score, *, pos_label) -> float:
    """Log loss of the positive-class probability."""
    return log_loss(is_positive(y_true, pos_label), y_score, labels=[False, True])


def binary_brier(y_true, y_score, *, pos_label) -> float:
    """Brier score (mean squared error) of the positive-class probability."""
    return brier_score_loss(is_positive(y_true, pos_label), y_score)


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

    @property
    def needs_score(self) -> bool:
        """Whether it scores probabilities (``y_score``) rather than labels or values (``y_pred``)."""
        return self.response == "predict_proba"

    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize`` (Optuna's words for the direction)."""
        return "maximize" if self.greater_is_better else "minimize"

    def __call__(self, y_true, y_pred, y_score=None) -> float:
        values = y_score if self.needs_score else y_pred
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


LOWER_IS_BETTER = frozenset(
    name for kind in KINDS for name, metric in metric_table(kind).items() if not metric.greater_is_better
)


def scoring(table: dict[str, Metric]) -> dict[str, Any]:
    """The ``scoring`` dict for `cross_validate`: the table's metrics as scorers."""
    return {name: metric.scorer() for name, metric in table.items()}


def evaluate(table: dict[str, Metric], y_true, y_pred, y_score=None) -> dict[str, float]:
    """Every metric of ``table`` on one set of true values, predictions and scores."""
    return {name: metric(y_true, y_pred, y_score) for name, metric in table.items()}


# ----------------------------------------------------------------------------- decision costs
def error_counts(y_true, y_pred, pos_label) -> dict[str, int]:
    """How many positives were predicted negative (false negatives) and negatives positive
    (false positives)."""
    positive, flagged = is_positive(y_true, pos_label), np.asarray(y_pred) == pos_label
    return {
        "false_negatives": int(np.sum(positive & ~flagged)),
        "false_positives": int(np.sum(~positive & flagged)),
    }


def expected_cost(y_true, y_pred, pos_label, costs: Costs) -> float:
    """The mean cost per row of the decisions ``y_pred``: (c_FN * FN + c_FP * FP) / n."""
    errors = error_counts(y_true, y_pred, pos_label)
    fn_cost = costs.false_negative * errors["false_negatives"]
    total = fn_cost + costs.false_positive * errors["false_positives"]
    return float(total / len(y_pred)) if len(y_pred) else math.nan


def fold_costs(y_true, y_pred, fold_sizes: Sequence[int], pos_label, costs: Costs) -> np.ndarray:
    """The expected cost of each block of consecutive rows, ``fold_sizes`` long (one per CV fold)."""
    bounds = np.cumsum(fold_sizes)[:-1]
    blocks = zip(np.split(np.asarray(y_true), bounds), np.split(np.asarray(y_pred), bounds))
    return np.array([expected_cost(y, p, pos_label, costs) for y, p in blocks])


def cost_threshold(y_true, y_score, pos_label, costs: Costs) -> float:
    """The threshold on the positive-class probability with the lowest mean cost on these rows.

    Every distinct score is a candidate (a row is predicted positive when its score is at least
    the threshold), plus one just above the highest score (predict every row negative). On a tie
    the highest threshold wins.
    """
    _, fps, fns, tps, thresholds = confusion_matrix_at_thresholds(is_positive(y_true, pos_label), y_score)
    thresholds = np.concatenate([[np.nextafter(thresholds[0], np.inf)], thresholds])
    fps, fns = np.concatenate([[0], fps]), np.concatenate([[tps[-1]], fns])  # above the top: no positives
    costs_at = costs.false_negative * fns + costs.false_positive * fps
    return float(thresholds[int(np.argmin(costs_at))])


# ----------------------------------------------------------------------------- from out-of-fold predictions
def select_threshold(
    y_true, y_score, rule: str, pos_label: Any, fixed: float = 0.5, costs: Costs | None = None
) -> float:
    """The decision threshold on the positive-class probability, by ``rule``.

    ``f1``: the threshold with the best F1 of the positive class; ``youden``: the one maximising
    TPR - FPR; ``cost``: the one with the lowest expected cost under ``costs`` (`cost_threshold`);
    ``fixed``: ``fixed``. Call it on out-of-fold predictions, never on test rows.
    """
    positive = is_positive(y_true, pos_label)
    if rule == "fixed" or positive.all() or not positive.any():
        return float(fixed)
    if rule == "cost":
        if costs is None:
            raise ValueError("the cost threshold rule needs costs")
        return cost_threshold(y_true, y_score, pos_label, costs)
    if rule == "f1":
        precision, recall, thresholds = precision_recall_curve(positive, y_score)
        precision, recall = precision[:-1], recall[:-1]
        denominator = precision + recall
        f1 = np.divide(
            2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
        )
        return float(thresholds[int(np.argmax(f1))])
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(positive, y_score)
        return float(min(thresholds[int(np.argmax(tpr - fpr))], 1.0))
    raise ValueError(f"threshold rule '{rule}' is not one of f1, youden, cost, fixed")


def prediction_interval(y_true, y_pred, level: float = INTERVAL_LEVEL) -> dict:
    """The half-width of a ``level`` prediction interval from out-of-fold absolute residuals.

    It is the conformal quantile (the ceil((n + 1) * level)-th smallest residual), so
    ``prediction ± half_width`` covers about ``level`` of new true values drawn like the training
    rows, whatever the model (marginal coverage: the same width on every row).
    """
    residuals = np.sort(np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)))
    rank = min(math.ceil((len(residuals) + 1) * level), len(residuals))
    method = "conformal quantile of out-of-fold absolute residuals"
    return {"level": level, "half_width": float(residuals[rank - 1]), "method": method}


# ----------------------------------------------------------------------------- monitoring
def performance_metrics(outcomes: pd.DataFrame, metadata: registry.ModelMetadata) -> dict[str, float]:
    """The task's metrics (`metric_table`) on logged predictions whose outcome is known.

    Args:
        outcomes: ``prediction``, ``score`` and ``actual`` per prediction.
        metadata: the version that made the predictions.

    Returns:
        {metric: value}. Label metrics come from the logged predictions (regression: the predicted
        values); probability metrics from the logged score, for binary tasks only (there it is the
        positive-class probability; multiclass logs only the top class's) and only when the window
        holds both classes. Metrics the window cannot define (R² of one row, MAPE with a zero true
        value) are left out.
    """
    kind = task_kind(metadata.task, metadata.classes)
    if kind == "regression":
        y_true = pd.to_numeric(outcomes["actual"], errors="coerce").to_numpy(dtype=float)
        y_pred = pd.to_numeric(outcomes["prediction"], errors="coerce").to_numpy(dtype=float)
        known = ~(np.isnan(y_true) | np.isnan(y_pred))
        y_true, y_pred, y_score, table = y_true[known], y_pred[known], None, metric_table(kind)
    else:
        y_true, y_pred, y_score = _class_codes(outcomes, metadata.classes)
        table = _classification_table(metadata, y_true, y_score)
    if not len(y_true):
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        values = evaluate(table, y_true, y_pred, y_score)
    return {name: value for name, value in values.items() if math.isfinite(value)}


def _class_codes(outcomes: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and predicted classes as integer codes (sklearn is much faster on them than on text) and
    the scores, for the rows whose two classes are known."""
    y_true = pd.Categorical(outcomes["actual"].astype(str), categories=classes).codes
    y_pred = pd.Categorical(outcomes["prediction"].astype(str), categories=classes).codes
    known = (y_true >= 0) & (y_pred >= 0)
    return y_true[known], y_pred[known], outcomes["score"].to_numpy(dtype=float)[known]


def _classification_table(
    metadata: registry.ModelMetadata, y_true: np.ndarray, y_score: np.ndarray
) -> dict[str, Metric]:
    """The metric table over class codes; without the probability metrics unless the task is binary,
    the window holds both classes and every score is known."""
    codes = list(range(len(metadata.classes)))
    binary = metadata.is_binary and metadata.positive_class in metadata.classes
    if binary:
        table = metric_table("binary", codes, metadata.classes.index(metadata.positive_class))
    else:
        table = metric_table("multiclass", codes)
    if binary and len(np.unique(y_true)) == 2 and np.isfinite(y_score).all():
        return table
    return {name: metric for name, metric in table.items() if not metric.needs_score}


def primary_metric(metadata: registry.ModelMetadata, available: dict[str, float]) -> str | None:
    """The metric that decides a performance alert: training's primary metric when the window has
    it, else the task's default, else a label metric."""
    default = DEFAULT_PRIMARY[task_kind(metadata.task, metadata.classes)]
    for name in (metadata.primary_metric, default, *LABEL_FALLBACKS):
        if name in available:
            return name
    return None


def performance_drops(
    current: dict[str, float], reference: dict[str, float], tolerance: float, names: list[str] | None = None
) -> dict[str, float]:
    """Metrics worse than at test time by more than ``tolerance``: {metric: worsening}.

    The tolerance is absolute for scores (accuracy, ROC-AUC...) and relative for errors (MAE, RMSE),
    as each metric's direction in `metric_table` says. ``names`` restricts the check (default:
    every metric in both).
    """
    drops = {}
    for name, value in current.items():
        before = reference.get(name)
        if (names is None or name in names) and isinstance(before, (int, float)):
            lower = name in LOWER_IS_BETTER
            worsening = (value - before) if lower else (before - value)
            if worsening > tolerance * (abs(before) if lower else 1.0):
                drops[name] = float(worsening)
    return drops
