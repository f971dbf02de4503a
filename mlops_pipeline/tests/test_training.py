"""Training and evaluation: metric helpers, selection and threshold rules, registry output, reloading."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pytest import approx
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

import candidates
import ft_engineering
import metrics
import model_training_evaluation
import plots
import registry
from conftest import TINY_TRAINING, write_config
from settings import ConfigError, Costs, Settings, TrainingConfig

TIME_COLUMNS = ["fit_time_s", "predict_us_per_row"]


def small_project(
    folder: Path, default_config: dict, frame: pd.DataFrame, training: dict | None = None, **dataset
) -> Settings:
    """Settings over ``frame`` with the shipped config, a tiny training section and ``dataset`` overrides."""
    config = yaml.safe_load(yaml.safe_dump(default_config))
    config["training"].update(training or TINY_TRAINING)
    config["dataset"].update(dataset)
    path = write_config(folder / "project", config, frame)
    return Settings(mlops_config=path, mlops_artifacts_dir=folder / "artifacts")


@pytest.fixture(scope="module")
def binary_run(
    small_training_run: model_training_evaluation.TrainingResult,
) -> model_training_evaluation.TrainingResult:
    """The session's real training run on the small credit sample (conftest), read only."""
    return small_training_run


# ----------------------------------------------------------------------------- metric helpers
def test_summarize_classification_binary_matches_hand_computed_values() -> None:
    # The positive class "bad" sorts first: a helper that ignored pos_label would invert the AUCs.
    y_true = ["good", "bad", "bad", "good", "bad"]
    y_score = [0.1, 0.8, 0.4, 0.6, 0.9]  # P(bad)
    y_pred = ["good", "bad", "good", "bad", "bad"]
    metrics = model_training_evaluation.summarize_classification(
        y_true, y_pred, y_score, labels=["bad", "good"], pos_label="bad"
    )
    expected = {
        "accuracy": 3 / 5,
        "balanced_accuracy": (2 / 3 + 1 / 2) / 2,
        "precision": 2 / 3,
        "recall": 2 / 3,
        "f1": 2 / 3,
        "roc_auc": 5 / 6,
        "pr_auc": 1 / 3 + 1 / 3 + 1 / 3 * 3 / 4,
        "log_loss": -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4) + math.log(0.9)) / 5,
        "brier": (0.01 + 0.04 + 0.36 + 0.36 + 0.01) / 5,
    }
    assert metrics == approx(expected)


def test_summarize_classification_accepts_the_two_column_probability_matrix() -> None:
    y_true, y_pred = ["no", "yes", "yes", "no"], ["no", "yes", "no", "no"]
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    from_matrix = model_training_evaluation.summarize_classification(y_true, y_pred, proba)
    from_column = model_training_evaluation.summarize_classification(
        y_true, y_pred, proba[:, 1], pos_label="yes"
    )
    assert from_matrix == approx(from_column)
    assert from_matrix["roc_auc"] == approx(1.0)


def test_summarize_classification_multiclass_matches_hand_computed_values() -> None:
    y_true = ["a", "b", "c", "a"]
    y_pred = ["a", "b", "b", "a"]
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    metrics = model_training_evaluation.summarize_classification(
        y_true, y_pred, proba, labels=["a", "b", "c"]
    )
    assert metrics["accuracy"] == approx(3 / 4)
    assert metrics["balanced_accuracy"] == approx((1 + 1 + 0) / 3)
    assert metrics["precision_macro"] == approx((1 + 1 / 2 + 0) / 3)
    assert metrics["f1_macro"] == approx((1 + 2 / 3 + 0) / 3)
    assert metrics["f1_weighted"] == approx((2 * 1 + 2 / 3 + 0) / 4)
    assert metrics["roc_auc_ovr"] == approx(1.0)
    assert metrics["log_loss"] == approx(-(math.log(0.7) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4)
    squared = [
        (0.3**2 + 0.2**2 + 0.1**2),
        (0.1**2 + 0.2**2 + 0.1**2),
        (0.2**2 + 0.5**2 + 0.7**2),
        (0.4**2 + 0.3**2 + 0.1**2),
    ]
    assert metrics["brier"] == approx(np.mean(squared))


def test_summarize_regression_matches_hand_computed_values() -> None:
    metrics = model_training_evaluation.summarize_regression([1.0, 2.0, 4.0], [2.0, 2.0, 2.0])
    assert metrics == approx(
        {"mae": 1.0, "rmse": math.sqrt(5 / 3), "r2": 1 - 5 / (14 / 3), "mape": (1 + 0 + 0.5) / 3}
    )


def test_mape_is_undefined_when_a_true_value_is_zero() -> None:
    assert math.isnan(model_training_evaluation.summarize_regression([0.0, 2.0], [1.0, 2.0])["mape"])


def test_scoring_dict_gives_the_same_values_as_summarize(
    credit_sample: pd.DataFrame, default_config_dict: dict, tmp_path: Path
) -> None:
    settings = small_project(tmp_path, default_config_dict, credit_sample)
    data, _ = ft_engineering.load_project_data(settings.config)
    context = model_training_evaluation.make_context(data, settings.config)
    model = model_training_evaluation.build_model(
        LogisticRegression(max_iter=1000), context.preprocessor
    ).fit(data.X, data.y)
    scores = model_training_evaluation.model_scores(model, data.X, "binary", "bad")
    summary = model_training_evaluation.summarize_classification(
        data.y, model.predict(data.X), scores, labels=data.classes, pos_label="bad"
    )
    assert set(context.scoring) == set(summary)
    for name, scorer in context.scoring.items():
        assert scorer(model, data.X, data.y) == approx(summary[name]), name


# ----------------------------------------------------------------------------- build_model
def test_build_model_is_one_unfitted_pipeline_of_preprocessor_and_estimator() -> None:
    roles = ft_engineering.Roles(numeric=["x"], categorical=["c"])
    preprocessor = ft_engineering.build_preprocessor(roles)
    estimator = LogisticRegression()
    model = model_training_evaluation.build_model(estimator, preprocessor)
    assert isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == ["preprocessor", "model"]
    assert model.named_steps["model"] is not estimator  # cloned: the caller's objects stay unfitted
    assert not hasattr(model.named_steps["model"], "coef_")


def test_xgboost_wrapper_answers_with_the_original_string_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["u", "v"], size=300)})
    y = np.where(X["x"] > 0.3, "high", np.where(X["x"] < -0.3, "low", "mid"))
    preprocessor = ft_engineering.build_preprocessor(ft_engineering.Roles(numeric=["x"], categorical=["c"]))
    model = model_training_evaluation.build_model(
        candidates.LabelEncodedClassifier(XGBClassifier(n_estimators=20, n_jobs=1)),
        preprocessor,
    ).fit(X, y)
    assert list(model.classes_) == ["high", "low", "mid"]
    assert set(model.predict(X)) <= {"high", "low", "mid"}
    assert (model.predict(X) == y).mean() > 0.9
    joblib.dump(model, tmp_path / "m.joblib")
    reloaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(reloaded.predict_proba(X), model.predict_proba(X))
    assert clone(model).get_params()["model__estimator__n_estimators"] == 20


def test_versions_pickled_before_the_wrapper_moved_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), np.array(["n", "n", "p", "p"])
    model = candidates.LabelEncodedClassifier(LogisticRegression()).fit(X, y)
    monkeypatch.setattr(candidates.LabelEncodedClassifier, "__module__", "model_training_evaluation")
    old_file = pickle.dumps(model)  # what a version saved by the earlier layout holds
    monkeypatch.undo()
    assert b"model_training_evaluation" in old_file
    np.testing.assert_array_equal(pickle.loads(old_file).predict(X), model.predict(X))


# ----------------------------------------------------------------------------- candidates and config
def test_unknown_or_wrong_task_model_names_are_config_errors() -> None:
    training = TrainingConfig(models={"ridge": {}})
    with pytest.raises(ConfigError, match=r"training\.models.*ridge"):
        candidates.candidate_params("classification", training)
    assert set(candidates.candidate_params("regression", training)) == {"ridge"}
    assert set(candidates.candidate_params("regression", TrainingConfig())) == set(
        candidates.CANDIDATES["regression"]
    )
    with pytest.raises(ConfigError, match=r"training\.search_spaces.*xgb"):
        candidates.candidate_params(
            "regression", TrainingConfig(search_spaces={"xgb": {"max_depth": {"low": 2, "high": 4}}})
        )


def test_a_configured_search_space_replaces_the_default_and_is_validated() -> None:
    training = TrainingConfig.model_validate(
        {"search_spaces": {"xgboost": {"max_depth": {"low": 2, "high": 4}}}}
    )
    space = candidates.search_space("classification", "xgboost", training)
    assert set(space) == {"max_depth"} and isinstance(space["max_depth"].low, int)
    assert set(candidates.search_space("classification", "random_forest", training)) == set(
        candidates.CANDIDATES["classification"]["random_forest"].search_space
    )
    with pytest.raises(ValidationError, match="low"):
        TrainingConfig.model_validate(
            {"search_spaces": {"xgboost": {"learning_rate": {"low": 0.3, "high": 0.1}}}}
        )


def test_a_primary_metric_of_another_task_is_a_config_error(
    credit_sample: pd.DataFrame, default_config_dict: dict, tmp_path: Path
) -> None:
    settings = small_project(tmp_path, default_config_dict, credit_sample)
    data, _ = ft_engineering.load_project_data(settings.config)
    with pytest.raises(
        ConfigError, match=r"^training\.primary_metric: 'rmse' no es una métrica de clasificación binaria; "
    ):
        model_training_evaluation.make_context(data, settings.config, primary_metric="rmse")


# ----------------------------------------------------------------------------- selection rule
def selection_table(means: dict[str, float], stds: dict[str, float], metric: str = "roc_auc") -> pd.DataFrame:
    complexity = {
        "dummy": 0,
        "logistic_regression": 1,
        "logistic_regression_tuned": 1,
        "random_forest": 2,
        "xgboost": 4,
    }
    return pd.DataFrame(
        {
            f"cv_{metric}_mean": means,
            f"cv_{metric}_std": stds,
            "complexity": {n: complexity[n] for n in means},
            "fit_time_s": 1.0,
        }
    )


def test_selection_prefers_a_simpler_model_within_one_standard_deviation() -> None:
    table = selection_table(
        {"dummy": 0.5, "logistic_regression": 0.835, "random_forest": 0.845, "xgboost": 0.85},
        {"dummy": 0.0, "logistic_regression": 0.02, "random_forest": 0.03, "xgboost": 0.01},
    )
    chosen = candidates.select_champion(table, "roc_auc", True, 1.0)
    assert (chosen.best, chosen.champion, chosen.margin) == ("xgboost", "random_forest", approx(0.01))
    assert sorted(chosen.eligible) == ["random_forest", "xgboost"]
    assert "random_forest" in chosen.reason and "xgboost" in chosen.reason
    assert candidates.select_champion(table, "roc_auc", True, 0.0).champion == "xgboost"
    assert candidates.select_champion(table, "roc_auc", True, 2.0).champion == "logistic_regression"


def test_selection_handles_lower_is_better_metrics() -> None:
    table = selection_table(
        {"dummy": 10.0, "logistic_regression": 5.0, "random_forest": 4.5, "xgboost": 4.0},
        {"dummy": 0.1, "logistic_regression": 0.2, "random_forest": 0.3, "xgboost": 0.6},
        metric="rmse",
    )
    chosen = candidates.select_champion(table, "rmse", False, 1.0)
    assert (chosen.best, chosen.champion) == ("xgboost", "random_forest")


def test_selection_prefers_the_untuned_version_of_a_family_on_a_tie() -> None:
    table = selection_table(
        {"logistic_regression_tuned": 0.842, "logistic_regression": 0.840, "xgboost": 0.80},
        {"logistic_regression_tuned": 0.02, "logistic_regression": 0.02, "xgboost": 0.02},
    )
    assert candidates.select_champion(table, "roc_auc", True, 1.0).champion == "logistic_regression"


# ----------------------------------------------------------------------------- threshold
@pytest.mark.parametrize(
    ("rule", "expected"),
    [("f1", 0.6), ("youden", 0.6), ("fixed", 0.5)],
)
def test_threshold_rules_on_hand_checked_scores(rule: str, expected: float) -> None:
    y = ["n", "n", "n", "p", "p"]
    scores = [0.1, 0.2, 0.7, 0.6, 0.9]
    assert metrics.select_threshold(y, scores, rule, "p") == approx(expected)


# ----------------------------------------------------------------------------- decision costs
HAND_Y = ["n", "p", "n", "n", "p"]
HAND_SCORES = [0.1, 0.2, 0.3, 0.4, 0.9]
# (FN, FP) when the threshold is above every score, then at 0.9, 0.4, 0.3, 0.2, 0.1:
# (2, 0), (1, 0), (1, 1), (1, 2), (0, 2), (0, 3)


@pytest.mark.parametrize(
    ("false_negative", "false_positive", "expected", "cost_per_row"),
    [
        (5, 1, 0.2, 2 / 5),  # costs 10, 5, 6, 7, 2, 3: flag the two lowest-scored positives too
        (1, 1, 0.9, 1 / 5),  # costs 2, 1, 2, 3, 2, 3
        (1, 3, 0.9, 1 / 5),  # costs 2, 1, 4, 7, 6, 9
    ],
)
def test_cost_threshold_minimises_expected_cost_on_a_hand_checked_case(
    false_negative: float, false_positive: float, expected: float, cost_per_row: float
) -> None:
    costs = Costs(false_negative=false_negative, false_positive=false_positive)
    threshold = metrics.select_threshold(HAND_Y, HAND_SCORES, "cost", "p", costs=costs)
    assert threshold == approx(expected)
    decided = np.where(np.asarray(HAND_SCORES) >= threshold, "p", "n")
    assert metrics.expected_cost(HAND_Y, decided, "p", costs) == approx(cost_per_row)


def test_cost_threshold_can_flag_nobody() -> None:
    # Above 0.8: one FN (cost 1); at 0.8: FN + FP (2); at 0.3: one FP (1). On a tie the highest wins.
    threshold = metrics.cost_threshold(["p", "n"], [0.3, 0.8], "p", Costs(false_negative=1, false_positive=1))
    assert 0.8 < threshold < 0.8 + 1e-12


@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=40),
    st.floats(0.1, 10),
    st.floats(0.1, 10),
)
def test_cost_threshold_is_the_brute_force_minimum(
    rows, false_negative: float, false_positive: float
) -> None:
    y = ["p" if positive else "n" for positive, _ in rows]
    scores = np.array([step / 20 for _, step in rows])  # ties on purpose
    costs = Costs(false_negative=false_negative, false_positive=false_positive)
    if len(set(y)) < 2:
        return

    def cost_at(threshold: float) -> float:
        return metrics.expected_cost(y, np.where(scores >= threshold, "p", "n"), "p", costs)

    best = min(cost_at(t) for t in [*scores, np.inf])
    assert cost_at(metrics.select_threshold(y, scores, "cost", "p", costs=costs)) == approx(best)


def test_expected_cost_and_error_counts_per_fold() -> None:
    y, decided, costs = ["p", "n", "p", "n"], ["p", "p", "n", "n"], Costs(false_negative=5, false_positive=1)
    assert metrics.error_counts(y, decided, "p") == {"false_negatives": 1, "false_positives": 1}
    assert metrics.expected_cost(y, decided, "p", costs) == approx((5 + 1) / 4)
    np.testing.assert_allclose(metrics.fold_costs(y, decided, [2, 2], "p", costs), [1 / 2, 5 / 2])


def test_the_cost_rule_needs_costs() -> None:
    with pytest.raises(ValidationError, match="costs: {false_negative: 5, false_positive: 1}"):
        TrainingConfig(threshold_rule="cost")
    with pytest.raises(ValueError, match="needs costs"):
        metrics.select_threshold(HAND_Y, HAND_SCORES, "cost", "p")


def test_threshold_and_cv_never_see_test_rows(
    credit_sample: pd.DataFrame, default_config_dict: dict, tmp_path: Path
) -> None:
    settings = small_project(tmp_path, default_config_dict, credit_sample)
    data, _ = ft_engineering.load_project_data(settings.config)
    split = ft_engineering.split_data(data, settings.config.split)
    context = model_training_evaluation.make_context(data, settings.config)
    params = candidates.candidate_params(data.task, settings.config.training)["logistic_regression"]
    original = model_training_evaluation.evaluate_candidate("logistic_regression", params, split, context)
    flipped_y = split.y_test.map({"good": "bad", "bad": "good"})
    shuffled_X = split.X_test.sample(frac=1.0, random_state=1).set_axis(split.X_test.index)
    tampered = model_training_evaluation.evaluate_candidate(
        "logistic_regression",
        params,
        ft_engineering.Split(split.X_train, shuffled_X, split.y_train, flipped_y),
        context,
    )
    assert set(original.oof_index) == set(split.X_train.index)
    assert not set(original.oof_index) & set(split.X_test.index)
    assert tampered.threshold == original.threshold
    training = settings.config.training
    assert training.threshold_rule == "cost"  # the shipped rule
    expected = metrics.select_threshold(
        split.y_train.loc[original.oof_index], original.oof_scores, "cost", "bad", costs=training.costs
    )
    assert original.threshold == expected
    for name in [*context.metrics, "expected_cost"]:
        np.testing.assert_array_equal(tampered.cv_scores[name], original.cv_scores[name])
    assert tampered.test_metrics["roc_auc"] != approx(original.test_metrics["roc_auc"])


# ----------------------------------------------------------------------------- a whole run
def test_run_saves_every_candidate_and_marks_the_champion(
    binary_run: model_training_evaluation.TrainingResult,
) -> None:
    models_dir = binary_run.reports["summary_csv"].parents[1] / "models"
    assert set(registry.list_versions(models_dir)) == set(binary_run.versions.values())
    assert set(binary_run.versions) == {"dummy", "logistic_regression", "random_forest"}
    assert registry.champion_version(models_dir) == binary_run.champion_version
    assert binary_run.versions[binary_run.selection.champion] == binary_run.champion_version
    champion_row = binary_run.summary.loc[binary_run.selection.champion]
    assert bool(champion_row["champion"]) and binary_run.summary["champion"].sum() == 1
    assert binary_run.selection.champion != "dummy"


def test_metadata_has_the_contract_keys(
    binary_run: model_training_evaluation.TrainingResult, credit_sample: pd.DataFrame
) -> None:
    models_dir = binary_run.reports["summary_csv"].parents[1] / "models"
    metadata = registry.load_metadata(models_dir)
    contract = {
        "version",
        "model_name",
        "created_at",
        "task",
        "target",
        "classes",
        "positive_class",
        "threshold",
        "features",
        "roles",
        "metrics",
        "dataset",
        "config",
        "library_versions",
        "selection",
    }
    assert contract <= set(type(metadata).model_fields)
    assert metadata.version == binary_run.champion_version
    assert (metadata.task, metadata.classes, metadata.positive_class) == (
        "classification",
        ["bad", "good"],
        "bad",
    )
    assert 0 < metadata.threshold < 1
    assert metadata.threshold == binary_run.results[metadata.model_name].threshold
    assert [f.name for f in metadata.features] == binary_run.context.data.roles.features
    assert set(metadata.metrics["test"]) == {*binary_run.context.metrics, "expected_cost"}
    assert set(metadata.metrics["cv"]["roc_auc"]) == {"mean", "std"}
    assert metadata.dataset["rows"] == len(credit_sample) and len(metadata.dataset["sha256"]) == 64
    assert metadata.selection["is_champion"] is True and metadata.selection["reason"]
    assert metadata.library_versions["scikit-learn"]
    json.dumps(metadata.model_dump(mode="json"), allow_nan=False)


def test_a_reloaded_version_predicts_exactly_as_before(
    binary_run: model_training_evaluation.TrainingResult,
) -> None:
    models_dir = binary_run.reports["summary_csv"].parents[1] / "models"
    X_test = binary_run.split.X_test
    for name, version in binary_run.versions.items():
        loaded = registry.load_model(models_dir, version)
        np.testing.assert_array_equal(
            loaded.pipeline.predict_proba(X_test), binary_run.results[name].pipeline.predict_proba(X_test)
        )
        assert list(loaded.pipeline.classes_) == ["bad", "good"]


def test_reference_sample_holds_raw_training_rows_and_the_model_outputs(
    binary_run: model_training_evaluation.TrainingResult,
) -> None:
    models_dir = binary_run.reports["summary_csv"].parents[1] / "models"
    loaded = registry.load_model(models_dir)
    reference = registry.load_reference(models_dir)
    features = loaded.feature_names
    assert list(reference.columns) == [*features, "__prediction__", "__score__"]
    assert len(reference) == len(binary_run.split.X_train)
    positive = list(loaded.pipeline.classes_).index("bad")
    scores = loaded.pipeline.predict_proba(reference[features])[:, positive]
    np.testing.assert_allclose(reference["__score__"], scores)
    expected = np.where(scores >= loaded.metadata.threshold, "bad", "good")
    np.testing.assert_array_equal(reference["__prediction__"], expected)


def test_reports_and_summary_table_are_written(binary_run: model_training_evaluation.TrainingResult) -> None:
    for key in [
        "summary_csv",
        "summary_md",
        "selection",
        "metric_bars",
        "roc_pr_curves",
        "confusion_matrix",
        "calibration",
    ]:
        assert binary_run.reports[key].is_file() and binary_run.reports[key].stat().st_size > 0, key
    table = pd.read_csv(binary_run.reports["summary_csv"], index_col="model")
    assert {
        "cv_roc_auc_mean",
        "cv_roc_auc_std",
        "test_roc_auc",
        "fit_time_s",
        "predict_us_per_row",
        "threshold",
    } <= set(table.columns)
    markdown = binary_run.reports["summary_md"].read_text(encoding="utf-8")
    assert "★" in markdown and binary_run.selection.reason in markdown


def test_run_reports_the_expected_cost_of_every_candidate(
    binary_run: model_training_evaluation.TrainingResult,
) -> None:
    costs, split, table = binary_run.context.costs, binary_run.split, binary_run.summary
    assert (costs.false_negative, costs.false_positive) == (5, 1)
    for name, result in binary_run.results.items():
        y_oof = split.y_train.loc[result.oof_index]
        oof_decided = np.where(result.oof_scores >= result.threshold, "bad", "good")
        # 480 training rows in 3 folds of 160: the mean of the fold costs is the pooled cost
        assert table.loc[name, "cv_expected_cost_mean"] == approx(
            metrics.expected_cost(y_oof, oof_decided, "bad", costs)
        )
        for rule in ("f1", "youden"):  # the cost rule's threshold is never costlier on these rows
            other = metrics.select_threshold(y_oof, result.oof_scores, rule, "bad")
            other_decided = np.where(result.oof_scores >= other, "bad", "good")
            assert metrics.expected_cost(y_oof, oof_decided, "bad", costs) <= metrics.expected_cost(
                y_oof, other_decided, "bad", costs
            )
        errors = metrics.error_counts(split.y_test, result.test_predictions, "bad")
        assert table.loc[name, "test_false_negatives"] == errors["false_negatives"]
        assert table.loc[name, "test_expected_cost"] == approx(
            (5 * errors["false_negatives"] + errors["false_positives"]) / len(split.y_test)
        )
    trivial = min(5 * (split.y_test == "bad").mean(), (split.y_test == "good").mean())
    assert table.loc["dummy", "test_expected_cost"] == approx(trivial)  # the dummy picks a trivial policy
    markdown = binary_run.reports["summary_md"].read_text(encoding="utf-8")
    assert "### Costo de las decisiones" in markdown and "Costo esperado prueba" in markdown
    assert "CV expected_cost" in markdown and f"{trivial:.4f}" in markdown


@pytest.mark.e2e
def test_mlflow_runs_record_the_threshold_rule_and_expected_costs(
    binary_run: model_training_evaluation.TrainingResult,
) -> None:
    import mlflow

    artifacts = binary_run.reports["summary_csv"].parents[1]
    settings = Settings(
        mlops_config=artifacts.parent / "project" / "config.yaml", mlops_artifacts_dir=artifacts
    )
    assert model_training_evaluation.track_run(settings, binary_run)
    runs = mlflow.search_runs(search_all_experiments=True).set_index("tags.mlflow.runName")
    parent = runs.loc[runs.index.str.startswith("train-")].iloc[0]
    assert parent["params.threshold_rule"] == "cost" and parent["params.cost_false_negative"] == "5.0"
    for name in binary_run.results:
        row = binary_run.summary.loc[name]
        assert runs.loc[name, "metrics.test_expected_cost"] == approx(row["test_expected_cost"])
        assert runs.loc[name, "metrics.cv_expected_cost_mean"] == approx(row["cv_expected_cost_mean"])


def test_plots_draw_from_plain_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.where(rng.random(80) < 0.3, "bad", "good")
    score = np.clip(rng.random(80) * 0.6 + (y == "bad") * 0.4, 0, 1)
    proba = np.column_stack([score, 1 - score])
    three, three_proba = np.array(["a", "b", "c"] * 20), rng.dirichlet([1, 1, 1], size=60)
    table = pd.DataFrame({"cv_f1_mean": [0.6, 0.0], "cv_f1_std": [0.05, 0.0]}, index=["lr", "dummy"])
    figures = {
        "curves": plots.curves(y, {"lr": score, "dummy": np.full(80, 0.3)}, ["bad", "good"], "bad"),
        "curves_ovr": plots.curves(three, {"lr": three_proba}, ["a", "b", "c"]),
        "bars": plots.metric_bars(table, ["f1"], highlight="lr"),
        "confusion": plots.confusion(y, np.where(score >= 0.5, "bad", "good"), ["bad", "good"], "lr"),
        "calibration": plots.calibration(y, score, "lr", pos_label="bad"),
        "confidence": plots.calibration(y, proba, "lr", y_pred=np.where(score >= 0.5, "bad", "good")),
        "regression": plots.regression(score, score + 0.1, "ridge"),
    }
    for name, figure in figures.items():
        assert plots.save(figure, tmp_path / f"{name}.png").stat().st_size > 0, name
    legend = [text.get_text() for text in figures["curves"].axes[0].get_legend().get_texts()]
    assert legend[0].startswith("lr") and legend[1].startswith("dummy")
    bars = figures["bars"].axes[0].patches
    assert bars[0].get_facecolor() != bars[1].get_facecolor()  # the champion stands out
    timed = {"fit_time_s": 1.0, "predict_us_per_row": 2.0, "threshold": 0.3, "champion": [True, False]}
    shown = plots.comparison_table(table.assign(test_f1=[0.7, math.nan], **timed), ["f1"], threshold=True)
    assert list(shown.iloc[0]) == ["lr", "0.6000 ± 0.0500", "0.7000", "1.00", "2.0", "0.300", "★"]
    assert shown.iloc[1]["Prueba f1"] == "-"


@pytest.mark.e2e
def test_same_seed_gives_the_same_metrics_through_the_cli(
    binary_run: model_training_evaluation.TrainingResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = binary_run.reports["summary_csv"].parents[2] / "project" / "config.yaml"
    code = model_training_evaluation.main(
        ["--config", str(config_path), "--artifacts", str(tmp_path / "again"), "--quiet"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Campeón:" in out and "Regla de selección" in out
    again = pd.read_csv(tmp_path / "again" / "reports" / "summary.csv", index_col="model").drop(
        columns=TIME_COLUMNS
    )
    first = binary_run.summary.drop(columns=TIME_COLUMNS)
    pd.testing.assert_frame_equal(
        again.drop(columns="champion"), first.drop(columns="champion"), check_dtype=False
    )


def test_cli_reports_a_bad_config_without_a_traceback(
    binary_run: model_training_evaluation.TrainingResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = binary_run.reports["summary_csv"].parents[2] / "project" / "config.yaml"
    code = model_training_evaluation.main(
        [
            "--config",
            str(config_path),
            "--artifacts",
            str(tmp_path / "x"),
            "--primary-metric",
            "rmse",
            "--quiet",
        ]
    )
    assert code == 2
    assert "training.primary_metric" in capsys.readouterr().out
    assert model_training_evaluation.main(["--config", str(tmp_path / "missing.yaml"), "--quiet"]) == 2


# ----------------------------------------------------------------------------- other tasks
@pytest.mark.e2e
def test_multiclass_run_with_tuning(
    tmp_path: Path, default_config_dict: dict, credit_sample: pd.DataFrame
) -> None:
    frame = credit_sample[credit_sample["Job"].notna()].drop(columns="Status")
    categorical = ["Home", "Marital", "Records"]
    settings = small_project(
        tmp_path,
        default_config_dict,
        frame,
        training={
            **TINY_TRAINING,
            "models": {"dummy": {}, "xgboost": {"n_estimators": 30}},
            "tuning": {"enabled": True, "top_k": 1, "trials": 2, "timeout_seconds": 60},
        },
        target="Job",
        positive_class=None,
        categorical=categorical,
        validation={
            "categories": {
                c: default_config_dict["dataset"]["validation"]["categories"][c] for c in categorical
            }
        },
    )
    result = model_training_evaluation.train(settings)
    assert result.context.kind == "multiclass" and result.context.primary == "roc_auc_ovr"
    assert set(result.versions) == {"dummy", "xgboost", "xgboost_tuned"}
    loaded = registry.load_model(settings.models_dir)
    assert loaded.metadata.threshold is None and loaded.metadata.positive_class is None
    assert (
        list(loaded.pipeline.classes_)
        == loaded.metadata.classes
        == ["fixed", "freelance", "others", "partime"]
    )
    assert set(loaded.pipeline.predict(result.split.X_test)) <= set(loaded.metadata.classes)
    reference = registry.load_reference(settings.models_dir)
    np.testing.assert_allclose(
        reference["__score__"], loaded.pipeline.predict_proba(reference[loaded.feature_names]).max(axis=1)
    )
    assert {"f1_macro", "roc_auc_ovr", "log_loss"} <= set(loaded.metadata.metrics["test"])
    assert result.reports["confusion_matrix"].is_file()


@pytest.mark.e2e
def test_regression_run_with_mlflow_tracking(
    tmp_path: Path, default_config_dict: dict, credit_sample: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    numeric = [c for c in default_config_dict["dataset"]["numeric"] if c != "Amount"]
    ranges = {
        k: v for k, v in default_config_dict["dataset"]["validation"]["ranges"].items() if k != "Amount"
    }
    settings = small_project(
        tmp_path,
        default_config_dict,
        credit_sample.drop(columns="Status"),
        training={**TINY_TRAINING, "tracking": True, "models": {"dummy": {}, "ridge": {}}},
        target="Amount",
        task="regression",
        positive_class=None,
        numeric=numeric,
        derived={},
        validation={
            "ranges": ranges,
            "categories": default_config_dict["dataset"]["validation"]["categories"],
        },
    )
    result = model_training_evaluation.train(settings)
    assert result.context.primary == "rmse" and not result.selection.greater_is_better
    assert result.selection.champion == "ridge"
    assert result.summary.loc["ridge", "test_rmse"] < result.summary.loc["dummy", "test_rmse"]
    loaded = registry.load_model(settings.models_dir)
    assert loaded.metadata.classes == [] and loaded.metadata.threshold is None
    reference = registry.load_reference(settings.models_dir)
    np.testing.assert_allclose(reference["__score__"], reference["__prediction__"])
    assert result.reports["predicted_vs_actual"].is_file()

    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True)
    assert set(runs["tags.mlflow.runName"]) >= {"dummy", "ridge"}
    champion_run = runs[runs["tags.mlflow.runName"] == "ridge"].iloc[0]
    assert champion_run["metrics.test_rmse"] == approx(result.summary.loc["ridge", "test_rmse"])
    assert champion_run["tags.champion"] == "True"
