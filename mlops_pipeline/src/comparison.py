"""Shadow comparison: would a challenger version have done better than the champion on the logged
inputs whose true outcome is known?

Both versions score the same rows (`scoring.predict_frame`); every metric of the task
(`metrics.metric_table`) is computed for each, plus, for binary tasks, the expected cost of
their decisions. The difference is always *challenger minus champion, signed so that positive
means the challenger is better* (for errors and costs, lower is better, so the sign flips). Its
95% interval is a paired percentile bootstrap: the same resampled rows score both versions, so
the interval reflects the difference between the models, not the luck of the sample. Every
metric uses the same resamples; a resample on which a metric is undefined (ROC-AUC of one
class) is left out of that metric's interval, and the table says how many were used.

`is_worse` is the promotion guard: the challenger is worse on a metric when the whole interval
lies below zero.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sklearn

import metrics
import registry
import scoring
from settings import Costs

EXPECTED_COST = "expected_cost"
LEVEL = 0.95
TABLE_COLUMNS = [
    "champion",
    "challenger",
    "difference",
    "low",
    "high",
    "verdict",
    "greater_is_better",
    "resamples",
]
"""One row per metric: both values, the signed difference and its interval, the verdict
(``better``, ``worse`` or ``inconclusive``: the interval above, below or around zero), the
metric's direction and how many bootstrap resamples defined it."""


def costs_of(metadata: registry.ModelMetadata) -> Costs:
    """The decision costs a version was trained with (``training.costs``), else 1 and 1."""
    recorded = (metadata.config.get("training") or {}).get("costs") or {}
    return Costs(**{"false_negative": 1.0, "false_positive": 1.0, **recorded})


@dataclass(frozen=True)
class Outputs:
    """What the metrics read from one version on the compared rows: labels or values, and scores
    (the positive-class probability, the class-probability matrix, or None for regression)."""

    y_pred: np.ndarray
    y_score: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Outputs:
        return Outputs(self.y_pred[rows], None if self.y_score is None else self.y_score[rows])


@dataclass(frozen=True)
class Comparison:
    """A challenger against the champion on the same rows (`TABLE_COLUMNS`, one row per metric)."""

    champion: str
    challenger: str
    primary: str
    rows: int
    n_boot: int
    seed: int
    level: float
    table: pd.DataFrame


def _value(metric: metrics.Metric, y_true: np.ndarray, outputs: Outputs) -> float:
    """A metric, NaN where the rows cannot define it (one class only, a zero for MAPE...); the
    warnings scikit-learn gives on such rows are silenced, as the NaN says it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = metric(y_true, outputs.y_pred, outputs.y_score)
        except ValueError:
            return math.nan
    return value if math.isfinite(value) else math.nan


def _signed_difference(metric, y_true, champion: Outputs, challenger: Outputs) -> float:
    sign = 1.0 if metric.greater_is_better else -1.0
    return sign * (_value(metric, y_true, challenger) - _value(metric, y_true, champion))


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    return "worse" if high < 0 else "inconclusive"


def compare_outputs(
    table: dict[str, metrics.Metric],
    y_true: np.ndarray,
    champion: Outputs,
    challenger: Outputs,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Each metric of ``table`` for two versions' outputs on the same rows, with the paired
    bootstrap interval of the signed difference (`TABLE_COLUMNS`).

    Args:
        table: metric name -> `metrics.Metric`.
        y_true: the true labels or values.
        champion, challenger: each version's outputs on those rows, in the same order.
        n_boot: bootstrap resamples (rows drawn with replacement, the same for both versions).
        seed: seeds the resamples: the same seed gives the same intervals.
        level: the interval's coverage (0.95: the 2.5% and 97.5% percentiles).
    """
    y_true = np.asarray(y_true)
    resamples = np.random.default_rng(seed).integers(0, len(y_true), size=(n_boot, len(y_true)))
    tail = 100 * (1 - level) / 2
    rows = {}
    for name, metric in table.items():
        # scikit-learn checked these inputs in the first call; the resamples skip its checks (25% faster)
        difference = _signed_difference(metric, y_true, champion, challenger)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            boot = np.array(
                [
                    _signed_difference(metric, y_true[sample], champion.take(sample), challenger.take(sample))
                    for sample in resamples
                ]
            )
        defined = boot[np.isfinite(boot)]
        low, high = np.percentile(defined, [tail, 100 - tail]) if len(defined) else (math.nan, math.nan)
        rows[name] = {
            "champion": _value(metric, y_true, champion),
            "challenger": _value(metric, y_true, challenger),
            "difference": difference,
            "low": float(low),
            "high": float(high),
            "verdict": _verdict(low, high),
            "greater_is_better": metric.greater_is_better,
            "resamples": len(defined),
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=TABLE_COLUMNS)


def check_comparable(champion: registry.LoadedModel, challenger: registry.LoadedModel) -> None:
    """Raise ValueError unless both versions predict the same thing (task, classes, positive class)."""
    first, second = champion.metadata, challenger.metadata
    same = (first.task, first.classes, first.positive_class) == (
        second.task,
        second.classes,
        second.positive_class,
    )
    if not same:
        raise ValueError(
            f"cannot compare {challenger.version} with {champion.version}: they predict different things "
            f"({second.task} {second.classes} vs {first.task} {first.classes})"
        )


def _known_outcomes(actual: pd.Series, metadata: registry.ModelMetadata) -> tuple[np.ndarray, np.ndarray]:
    """Which rows have a usable true outcome, and those outcomes (class codes, or floats)."""
    if metadata.task == "regression":
        values = pd.to_numeric(actual, errors="coerce").to_numpy(dtype=float)
        known = np.isfinite(values)
        return known, values[known]
    codes = pd.Categorical(actual.astype("string"), categories=metadata.classes).codes
    return codes >= 0, codes[codes >= 0]


def _outputs(model: registry.LoadedModel, features: pd.DataFrame) -> Outputs:
    """A version's outputs in the form the metrics read: class codes and probabilities, or values."""
    scored = scoring.predict_frame(model, features, flat=True)
    metadata = model.metadata
    if metadata.task == "regression":
        return Outputs(scored["prediction"].to_numpy(dtype=float))
    codes = pd.Categorical(scored["prediction"].astype(str), categories=metadata.classes).codes
    proba = scored[[scoring.PROBABILITY_PREFIX + label for label in metadata.classes]].to_numpy(dtype=float)
    if metadata.is_binary:
        return Outputs(codes, proba[:, metadata.classes.index(metadata.positive_class)])
    return Outputs(codes, proba)


def _metric_table(metadata: registry.ModelMetadata, costs: Costs) -> dict[str, metrics.Metric]:
    """The task's metrics over class codes, plus the expected cost for a binary task."""
    kind = metrics.task_kind(metadata.task, metadata.classes)
    codes = list(range(len(metadata.classes)))
    if kind != "binary":
        return metrics.metric_table(kind, codes)
    positive = metadata.classes.index(metadata.positive_class)
    cost = metrics.Metric(
        metrics.expected_cost, greater_is_better=False, kwargs={"pos_label": positive, "costs": costs}
    )
    return metrics.metric_table(kind, codes, positive) | {EXPECTED_COST: cost}


def primary_metric(metadata: registry.ModelMetadata) -> str:
    """The metric a comparison is judged on: the champion's training primary metric, else the task's."""
    return (
        metadata.primary_metric or metrics.DEFAULT_PRIMARY[metrics.task_kind(metadata.task, metadata.classes)]
    )


def compare_models(
    champion: registry.LoadedModel,
    challenger: registry.LoadedModel,
    features: pd.DataFrame,
    actual: pd.Series,
    *,
    names: list[str] | None = None,
    costs: Costs | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> Comparison:
    """Score the same logged inputs with both versions and compare them on every metric.

    Args:
        champion, challenger: two versions of the same task (same classes and positive class).
        features: the logged raw inputs (extra columns, such as the log's own, are ignored).
        actual: their true outcomes, aligned with ``features``; rows whose outcome is missing or not
            one of the classes are left out.
        names: the metrics to compare (default: the task's whole `metrics.metric_table`, plus
            ``expected_cost`` for a binary task).
        costs: the decision costs of ``expected_cost`` (default: the champion's ``training.costs``,
            else 1 and 1).
        n_boot, seed, level: the bootstrap (see `compare_outputs`).

    Returns:
        The comparison; its primary metric is the champion's (else the task's default).

    Raises:
        ValueError: for versions of different tasks, inputs without a feature the versions read,
            no row with a known outcome, or an unknown metric name.
    """
    check_comparable(champion, challenger)
    absent = sorted({*champion.feature_names, *challenger.feature_names} - set(features.columns))
    if absent:
        raise ValueError(f"the logged inputs lack features the versions read: {absent}")
    metadata = champion.metadata
    known, y_true = _known_outcomes(pd.Series(actual).reset_index(drop=True), metadata)
    if not known.any():
        raise ValueError("no logged prediction has a known outcome (feedback) to compare on")
    table = _metric_table(metadata, costs or costs_of(metadata))
    unknown = sorted(set(names or []) - set(table))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(table)}")
    table = {name: table[name] for name in names} if names else table
    rows = features.iloc[np.flatnonzero(known)]
    result = compare_outputs(
        table,
        y_true,
        _outputs(champion, rows),
        _outputs(challenger, rows),
        n_boot=n_boot,
        seed=seed,
        level=level,
    )
    return Comparison(
        champion.version, challenger.version, primary_metric(metadata), len(rows), n_boot, seed, level, result
    )


def is_worse(comparison: Comparison, primary: str | None = None) -> bool:
    """Whether the challenger is worse on the primary metric: its whole interval below zero."""
    metric = primary or comparison.primary
    if metric not in comparison.table.index:
        raise ValueError(f"the comparison has no metric '{metric}'; it has {list(comparison.table.index)}")
    return comparison.table.loc[metric, "verdict"] == "worse"
