"""The one metric table: monitoring's performance metrics, directions and helpers come from it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pytest import approx

import metrics
import registry

BINARY = registry.ModelMetadata(
    task="classification", features=[], classes=["bad", "good"], positive_class="bad", threshold=0.5
)
MULTICLASS = registry.ModelMetadata(task="classification", features=[], classes=["a", "b", "c"])
REGRESSION = registry.ModelMetadata(task="regression", features=[])


def binary_outcomes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction": ["bad", "good", "good", "bad", "good", "bad"],
            "score": [0.9, 0.2, 0.3, 0.6, 0.1, 0.7],
            "actual": ["bad", "good", "bad", "good", "good", "bad"],
        }
    )


def label_metric_names(kind: str) -> set[str]:
    return {name for name, metric in metrics.metric_table(kind).items() if not metric.needs_score}


def test_binary_performance_is_the_training_table_on_logged_labels_and_scores() -> None:
    outcomes = binary_outcomes()
    table = metrics.metric_table("binary", ["bad", "good"], "bad")
    expected = metrics.evaluate(table, outcomes["actual"], outcomes["prediction"], outcomes["score"])
    assert metrics.performance_metrics(outcomes, BINARY) == approx(expected)
    assert set(expected) == set(table)  # label and probability metrics alike


def test_probability_metrics_need_both_classes_and_every_score() -> None:
    one_class = binary_outcomes().assign(actual="bad")
    unscored = binary_outcomes().assign(score=np.nan)
    label_metrics = {
        name for name, metric in metrics.metric_table("binary").items() if not metric.needs_score
    }
    assert set(metrics.performance_metrics(one_class, BINARY)) == label_metrics
    assert set(metrics.performance_metrics(unscored, BINARY)) == label_metrics


def test_multiclass_performance_uses_label_metrics_only() -> None:
    outcomes = pd.DataFrame(
        {"prediction": ["a", "b", "c", "a"], "score": [0.9, 0.5, 0.6, 0.8], "actual": ["a", "b", "b", "c"]}
    )
    result = metrics.performance_metrics(outcomes, MULTICLASS)
    assert set(result) == {
        name for name, m in metrics.metric_table("multiclass").items() if not m.needs_score
    }
    assert result["accuracy"] == approx(0.5) and result["f1_macro"] == approx((2 / 3 + 2 / 3 + 0) / 3)


def test_regression_leaves_out_what_the_window_cannot_define() -> None:
    one_row = pd.DataFrame({"prediction": ["1.0"], "score": [1.0], "actual": ["0"]})
    assert metrics.performance_metrics(one_row, REGRESSION) == {"mae": 1.0, "rmse": 1.0}  # no R², no MAPE
    unreadable = pd.DataFrame({"prediction": ["x"], "score": [1.0], "actual": ["2"]})
    assert metrics.performance_metrics(unreadable, REGRESSION) == {}


def test_lower_is_better_comes_from_the_table() -> None:
    from_table = {
        name
        for kind in metrics.KINDS
        for name, metric in metrics.metric_table(kind).items()
        if not metric.greater_is_better
    }
    assert metrics.LOWER_IS_BETTER == from_table == {"mae", "rmse", "mape", "log_loss", "brier"}
    assert metrics.performance_drops({"brier": 0.3}, {"brier": 0.2}, 0.1) == {"brier": approx(0.1)}
    assert metrics.metric_table("regression")["rmse"].direction == "minimize"


def test_primary_metric_falls_back_to_the_task_default_then_a_label_metric() -> None:
    tuned = BINARY.model_copy(update={"primary_metric": "pr_auc"})
    assert metrics.primary_metric(tuned, {"pr_auc": 0.7, "roc_auc": 0.8}) == "pr_auc"
    assert metrics.primary_metric(tuned, {"roc_auc": 0.8, "accuracy": 0.9}) == "roc_auc"
    assert metrics.primary_metric(MULTICLASS, {"accuracy": 0.9, "f1_macro": 0.5}) == "f1_macro"
    assert metrics.primary_metric(BINARY, {"accuracy": 0.9}) is None


def test_headline_puts_the_primary_metric_first() -> None:
    assert metrics.headline("binary", "f1") == ["f1", "roc_auc", "pr_auc", "balanced_accuracy", "brier"]
    assert all(set(names) <= set(metrics.metric_table(kind)) for kind, names in metrics.HEADLINE.items())


def test_task_kind() -> None:
    assert metrics.task_kind("classification", ["a", "b"]) == "binary"
    assert metrics.task_kind("classification", [1, 2, 3]) == "multiclass"
    assert metrics.task_kind("regression", []) == "regression"


def test_json_safe_gives_strict_json_values() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    value = {"a": np.float64(1.5), 2: [np.int64(3), math.nan, -math.inf], "t": (when, "x")}
    assert registry.json_safe(value) == {"a": 1.5, "2": [3, None, None], "t": [when.isoformat(), "x"]}
    assert type(registry.json_safe(np.int64(3))) is int
