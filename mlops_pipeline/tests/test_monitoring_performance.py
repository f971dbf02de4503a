"""Performance in a window: realized with an interval (DeLong's and the bootstrap against hand
computations and each other), judged against the expected value, and estimated without labels
(CBPE) from calibrated out-of-fold scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

import drift
import metrics
import performance
import registry
from settings import MonitoringConfig

BINARY = registry.ModelMetadata(
    task="classification",
    features=[],
    classes=["bad", "good"],
    positive_class="bad",
    threshold=0.5,
    primary_metric="roc_auc",
    metrics={"cv": {"roc_auc": {"mean": 0.80, "std": 0.02}}, "test": {"roc_auc": 0.86}},
)
MULTICLASS = registry.ModelMetadata(task="classification", features=[], classes=["a", "b", "c"])
CONFIG = MonitoringConfig()


def labelled(n: int, separation: float, seed: int = 0) -> pd.DataFrame:
    """Outcomes whose scores separate the classes by ``separation`` (0: chance)."""
    rng = np.random.default_rng(seed)
    bad = rng.random(n) < 0.3
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * bad - 1)))
    return pd.DataFrame(
        {
            "prediction": np.where(score >= 0.5, "bad", "good"),
            "score": score,
            "actual": np.where(bad, "bad", "good"),
        }
    )


# ----------------------------------------------------------------------------- intervals
def test_delong_matches_a_hand_computed_case() -> None:
    # Positives 0.9, 0.6, 0.4; negatives 0.5, 0.3. Pair wins of each positive: 1, 1, 1/2; of each
    # negative being beaten: 2/3, 1. AUC = 5/6; Var = var(1, 1, .5)/3 + var(2/3, 1)/2 (ddof 1).
    positive = np.array([True, True, True, False, False])
    scores = np.array([0.9, 0.6, 0.4, 0.5, 0.3])
    variance = np.var([1, 1, 0.5], ddof=1) / 3 + np.var([2 / 3, 1], ddof=1) / 2
    half = 1.959963984540054 * np.sqrt(variance)
    low, high = performance.delong_interval(positive, scores, 0.95)
    assert (low, high) == (pytest.approx(5 / 6 - half), 1.0)
    assert roc_auc_score(positive, scores) == pytest.approx(5 / 6)
    assert np.isnan(performance.delong_interval(np.ones(3, dtype=bool), scores[:3], 0.95)).all()


def test_delong_and_the_bootstrap_agree_on_a_large_sample() -> None:
    outcomes = labelled(2000, 1.5)
    positive = outcomes["actual"].eq("bad").to_numpy()
    low, high = performance.delong_interval(positive, outcomes["score"].to_numpy(), 0.95)
    metric = metrics.metric_table("binary", [0, 1], 0)["roc_auc"]
    codes = np.where(positive, 0, 1)
    boot = performance.bootstrap_interval(metric, (codes, codes, outcomes["score"].to_numpy()), 0.95, 400)
    assert low == pytest.approx(boot[0], abs=0.01) and high == pytest.approx(boot[1], abs=0.01)
    assert low < roc_auc_score(positive, outcomes["score"]) < high


def test_bootstrap_interval_is_seeded_and_covers_the_estimate() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 300)
    guess = np.where(rng.random(300) < 0.8, truth, 1 - truth)
    metric = metrics.metric_table("binary", [0, 1], 1)["accuracy"]
    first = performance.bootstrap_interval(metric, (truth, guess, guess), 0.9, 300, seed=4)
    assert first == performance.bootstrap_interval(metric, (truth, guess, guess), 0.9, 300, seed=4)
    assert first[0] < accuracy_score(truth, guess) < first[1]
    # Binomial standard error of 0.8 on 300 rows is 0.023: a 90% interval is about +-0.038.
    assert first[1] - first[0] == pytest.approx(2 * 1.645 * np.sqrt(0.8 * 0.2 / 300), rel=0.2)


# ----------------------------------------------------------------------------- realized
def test_expected_value_is_the_cross_validation_mean() -> None:
    assert performance.expected_value(BINARY, "roc_auc") == (0.80, "cv")
    no_cv = BINARY.model_copy(update={"metrics": {"test": {"roc_auc": 0.86}}})
    assert performance.expected_value(no_cv, "roc_auc") == (0.86, "test")
    assert performance.expected_value(no_cv, "f1") == (None, "none")


def test_a_window_is_red_only_when_its_whole_interval_is_worse_than_expected() -> None:
    assert performance.realized_performance(labelled(29, 1.5), BINARY, CONFIG) is None  # min_feedback 30
    good = performance.realized_performance(labelled(300, 1.5), BINARY, CONFIG)
    assert good["primary"] == "roc_auc" and good["expected"] == 0.80 and good["expected_from"] == "cv"
    assert good["low"] < good["value"] < good["high"] and good["drop"] is None
    assert good["metrics"] == pytest.approx(metrics.performance_metrics(labelled(300, 1.5), BINARY))
    windows = [performance.realized_performance(labelled(30, 1.0, seed=s), BINARY, CONFIG) for s in range(40)]
    below = [w for w in windows if w["value"] < 0.75]
    assert any(w["drop"] is None for w in below)  # below expected, but 30 labels prove nothing...
    for window in windows:  # ...red exactly when even the interval's top is 0.05 below expected
        assert (window["drop"] is not None) == (window["high"] < 0.75)
    broken = performance.realized_performance(labelled(800, 0.0, seed=3), BINARY, CONFIG)
    assert broken["high"] < 0.75 and broken["drop"] == pytest.approx(0.80 - broken["high"])


def test_errors_drop_relatively_and_other_metrics_use_the_bootstrap() -> None:
    regression = registry.ModelMetadata(
        task="regression", features=[], metrics={"cv": {"rmse": {"mean": 1.0}}}
    )
    rng = np.random.default_rng(0)
    truth = rng.normal(size=400)
    outcomes = pd.DataFrame({"actual": truth, "prediction": truth + rng.normal(0, 2.0, 400)}).assign(
        score=0.0
    )
    realized = performance.realized_performance(outcomes, regression, CONFIG)
    assert realized["primary"] == "rmse" and realized["low"] > 1.05
    assert realized["drop"] == pytest.approx(realized["low"] - 1.0)
    assert performance.worse_beyond("rmse", 1.04, 1.0, 0.05) is None
    assert performance.worse_beyond("roc_auc", 0.74, 0.80, 0.05) == pytest.approx(0.06)


# ----------------------------------------------------------------------------- CBPE
def test_calibration_is_sklearns_isotonic_fit_of_the_out_of_fold_scores() -> None:
    outcomes = labelled(500, 1.0)
    fitted = performance.fit_calibration(outcomes["score"], outcomes["actual"], BINARY)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        outcomes["score"], outcomes["actual"].eq("bad")
    )
    grid = np.linspace(0, 1, 101)
    np.testing.assert_allclose(np.interp(grid, fitted["x"], fitted["y"]), reference.predict(grid), atol=1e-12)
    assert fitted["rows"] == 500 and fitted["kind"] == "binary"
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    multi = performance.fit_calibration(proba, ["a", "c", "c", "b"], MULTICLASS)
    assert multi["kind"] == "multiclass" and multi["score_range"] == [0.5, 0.8]
    assert (
        performance.fit_calibration(
            np.zeros(3), [1, 2, 3], registry.ModelMetadata(task="regression", features=[])
        )
        is None
    )


def score_profile(scores: np.ndarray) -> dict:
    return drift.build_reference_profile(pd.DataFrame({drift.SCORE_COLUMN: scores}), [drift.SCORE_COLUMN], [])


def identity_calibration() -> dict:
    return {"kind": "binary", "x": [0.0, 1.0], "y": [0.0, 1.0], "rows": 5000, "score_range": [0.0, 1.0]}


def test_estimate_is_the_expected_confusion_matrix_and_roc_of_calibrated_scores() -> None:
    # Window scores 0.2, 0.6, 0.9 (perfectly calibrated): expected positives 0.2, 0.6, 0.9.
    profile = score_profile(np.array([0.2, 0.6, 0.9]))
    counts = drift.current_counts(profile, pd.DataFrame({drift.SCORE_COLUMN: [0.2, 0.6, 0.9]}))
    estimated = performance.estimate(profile, counts, identity_calibration(), BINARY)
    # Pairs (positive weight i, negative weight j) with s_i > s_j, ties (the same row) count half.
    p, s = np.array([0.2, 0.6, 0.9]), np.array([0.2, 0.6, 0.9])
    wins = sum(p[i] * (1 - p[j]) * ((s[i] > s[j]) + 0.5 * (i == j)) for i in range(3) for j in range(3))
    auc = wins / (p.sum() * (1 - p).sum())
    tp, fp, fn = 0.6 + 0.9, 0.4 + 0.1, 0.2
    assert estimated["metrics"]["roc_auc"] == pytest.approx(auc)
    assert estimated["metrics"]["precision"] == pytest.approx(tp / (tp + fp))
    assert estimated["metrics"]["recall"] == pytest.approx(tp / (tp + fn))
    assert estimated["metrics"]["accuracy"] == pytest.approx((tp + 0.8) / 3)
    assert estimated["trusted"] and estimated["rows"] == 3


def test_estimate_agrees_with_labels_drawn_from_calibrated_probabilities() -> None:
    rng = np.random.default_rng(5)
    reference = rng.beta(2, 5, 4000)
    profile = score_profile(reference)
    scores = rng.beta(2, 5, 3000)
    counts = drift.current_counts(profile, pd.DataFrame({drift.SCORE_COLUMN: scores}))
    estimated = performance.estimate(profile, counts, identity_calibration(), BINARY)["metrics"]
    truth = rng.random(3000) < scores
    assert estimated["roc_auc"] == pytest.approx(roc_auc_score(truth, scores), abs=0.02)
    assert estimated["f1"] == pytest.approx(f1_score(truth, scores >= 0.5), abs=0.03)


def test_estimate_says_when_it_is_missing_or_not_trustworthy() -> None:
    profile = score_profile(np.linspace(0, 1, 50))
    counts = drift.current_counts(profile, pd.DataFrame({drift.SCORE_COLUMN: np.linspace(0, 1, 40)}))
    regression = registry.ModelMetadata(task="regression", features=[])
    assert performance.estimate(profile, counts, None, regression) == {
        "available": False,
        "reasons": ["regression"],
    }
    assert performance.estimate(profile, counts, None, BINARY)["reasons"] == ["no_calibration"]
    narrow = identity_calibration() | {"rows": 50, "score_range": [0.2, 0.8]}
    flagged = performance.estimate(profile, counts, narrow, BINARY)
    assert not flagged["trusted"] and flagged["reasons"] == ["few_calibration_rows", "outside_calibration"]
    realized = {"primary": "roc_auc", "low": 0.0, "high": 0.1}
    assert (
        "disagrees_with_realized"
        in performance.compare(
            performance.estimate(profile, counts, identity_calibration(), BINARY), realized
        )["reasons"]
    )


def test_multiclass_estimates_accuracy_from_the_calibrated_top_class_probability() -> None:
    profile = score_profile(np.array([0.4, 0.6, 0.8]))
    counts = drift.current_counts(profile, pd.DataFrame({drift.SCORE_COLUMN: [0.4, 0.6, 0.6, 0.8]}))
    calibration = {
        "kind": "multiclass",
        "x": [0.4, 0.8],
        "y": [0.3, 0.9],
        "rows": 900,
        "score_range": [0.4, 0.8],
    }
    estimated = performance.estimate(profile, counts, calibration, MULTICLASS)
    assert estimated["metrics"] == {"accuracy": pytest.approx((0.3 + 0.6 + 0.6 + 0.9) / 4)}


def test_score_cells_put_counts_on_reference_values_and_midpoints() -> None:
    entry = {"values": [0.1, 0.5, 0.7], "counts": [1, 1, 1]}
    cells, counts = performance.score_cells(entry, [1, 2, 0, 3, 0, 0, 4])
    assert cells.tolist() == pytest.approx([0.1, 0.1, 0.5, 0.7]) and counts.tolist() == [1, 2, 3, 4]
