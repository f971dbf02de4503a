"""Retraining: the log's labelled rows join the training data, the newest ones are the holdout, the
new versions are registered without promotion and a report compares them with the champion."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ft_engineering
import metrics
import model_training_evaluation
import registry
import retraining
import simulation
import store
from conftest import fast_bootstrap
from settings import DEFAULT_CONFIG, RetrainConfig, Settings, load_config

RETRAIN = RetrainConfig(holdout_share=0.5, min_holdout_rows=10)
DATASET = load_config(DEFAULT_CONFIG).dataset


@pytest.fixture(scope="module")
def credit_data() -> ft_engineering.Dataset:
    """The shipped dataset, loaded."""
    return ft_engineering.load_data(DATASET)


def log_frame(rows: int, start: str = "2026-01-01") -> pd.DataFrame:
    """A log as `store.read_predictions` gives it: features, ``created_at``, ``actual``."""
    rng = np.random.default_rng(0)
    times = pd.date_range(start, periods=rows, freq="h", tz="UTC")
    frame = pd.DataFrame(
        {
            "id": [f"b-{i}" for i in range(rows)],
            "created_at": times[::-1],  # newest first: the function must sort
            "prediction": "good",
            "score": rng.random(rows),
            "actual": np.where(np.arange(rows) % 2 == 0, "bad", "good"),
        }
    )
    features = {
        "Seniority": rng.integers(0, 20, rows).astype(object),
        "Home": "ignore",
        "Time": 36,
        "Age": 30,
        "Marital": "married",
        "Records": "no",
        "Job": "fixed",
        "Expenses": 50,
        "Income": "130",  # text numbers, as JSON may carry them
        "Assets": 0,
        "Debt": 0,
        "Amount": 1000,
        "Price": 1200,
    }
    return frame.assign(**features)


def test_labelled_rows_keep_known_outcomes_cleaned_and_in_time_order(
    credit_data: ft_engineering.Dataset,
) -> None:
    log = log_frame(6)
    log.loc[0, "actual"] = None  # no feedback yet
    log.loc[1, "actual"] = "maybe"  # not a class
    log = log.rename(columns={"Time": "feature_Time"})  # a feature named like a log column
    rows = retraining.labelled_rows(log, credit_data, DATASET)
    assert len(rows) == 4 and rows["created_at"].is_monotonic_increasing
    assert list(rows.columns) == [*credit_data.roles.features, "Status", "created_at"]
    assert rows["Home"].isna().all()  # "ignore" is a missing token of the config
    assert rows["Income"].dtype == float and (rows["Income"] == 130).all()
    assert (rows["Time"] == 36).all() and set(rows["Status"]) <= {"bad", "good"}


def test_time_holdout_is_the_newest_labelled_rows(credit_data: ft_engineering.Dataset) -> None:
    labelled = pd.DataFrame(
        {
            **{c: credit_data.X[c].iloc[:30].to_numpy() for c in credit_data.roles.features},
            "Status": ["bad", "good"] * 15,
            "created_at": pd.date_range("2026-01-01", periods=30, freq="D", tz="UTC"),
        }
    )
    split = retraining.time_holdout(credit_data, labelled, RETRAIN)
    assert len(split.X_test) == 15 and len(split.X_train) == len(credit_data.frame) + 15
    assert split.X_train.index.is_unique and not set(split.X_train.index) & set(split.X_test.index)
    pd.testing.assert_frame_equal(
        split.X_test.reset_index(drop=True),
        labelled[credit_data.roles.features].iloc[15:].reset_index(drop=True),
    )
    sources = retraining.sources(credit_data, labelled, split)
    assert sources["log_train_rows"] == sources["holdout_rows"] == 15
    assert sources["holdout_from"] == labelled["created_at"].iloc[15].isoformat()


def test_time_holdout_refuses_too_few_or_one_class_rows(credit_data: ft_engineering.Dataset) -> None:
    few = pd.DataFrame({**{c: [] for c in credit_data.roles.features}, "Status": [], "created_at": []})
    with pytest.raises(ValueError, match="tiene 0 filas con resultado real y --retrain necesita al menos 20"):
        retraining.time_holdout(credit_data, few, RETRAIN)
    one_class = pd.DataFrame(
        {**{c: credit_data.X[c].iloc[:30].to_numpy() for c in credit_data.roles.features}, "Status": "good",
         "created_at": pd.date_range("2026-01-01", periods=30, freq="D", tz="UTC")}
    )  # fmt: skip
    with pytest.raises(ValueError, match="son todas de la clase 'good'"):
        retraining.time_holdout(credit_data, one_class, RETRAIN)


def test_retrain_on_a_drifted_log_with_feedback_registers_versions_and_writes_the_report(
    trained_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fast_bootstrap(trained_settings)  # the report's shadow comparison: the fewest resamples
    champion = registry.champion_version(settings.models_dir)
    before = set(registry.list_versions(settings.models_dir))
    engine = store.create_db_engine(settings.db_url)
    store.init_db(engine)
    scenario = simulation.DriftScenario(start_day=4, shift={"Income": 1.0}, missing={"Assets": 0.3})
    simulation.simulate_traffic(
        settings, engine, days=8, rows_per_day=100, scenario=scenario, feedback_share=0.6, seed=1
    )
    labelled = int(store.read_predictions(engine)["actual"].notna().sum())
    engine.dispose()

    argv = ["--config", str(settings.mlops_config), "--artifacts", str(settings.artifacts_dir), "--quiet"]
    assert model_training_evaluation.main([*argv, "--retrain"]) == 0
    out = capsys.readouterr().out
    assert registry.champion_version(settings.models_dir) == champion  # nothing promoted
    new = sorted(set(registry.list_versions(settings.models_dir)) - before)
    assert len(new) == 3  # dummy, logistic_regression, random_forest
    holdout = -(-labelled * 3 // 10)  # ceil(0.3 * labelled)
    for version in new:
        metadata = registry.load_metadata(settings.models_dir, version)
        assert metadata.selection["is_champion"] is False
        assert metadata.dataset["retrain"]["holdout_rows"] == holdout
        assert metadata.split == {"train_rows": 600 + labelled - holdout, "test_rows": holdout}
    reports = list(settings.reports_dir.glob("retrain_*.md"))
    assert len(reports) == 1 and reports[0].stem.removeprefix("retrain_") in new
    text = reports[0].read_text(encoding="utf-8")
    assert f"el campeón sigue siendo `{champion}`" in text
    assert text in out and "Reporte:" in out

    # the champion's holdout ROC-AUC in the report is its score on the newest labelled rows
    log = retraining.read_log(settings.db_url)
    data, _ = ft_engineering.load_project_data(settings.config)
    rows = retraining.labelled_rows(log, data, settings.config.dataset).iloc[-holdout:]
    model = registry.load_model(settings.models_dir, champion)
    score = model.pipeline.predict_proba(rows[model.feature_names])[
        :, list(model.pipeline.classes_).index("bad")
    ]
    champion_auc = metrics.roc_auc(rows["Status"], score, pos_label="bad")
    assert re.search(rf"\| campeón actual +\| {champion} +\| +{champion_auc:.4f} \|", text), text


def test_retrain_without_a_champion_or_feedback_says_so_in_one_line(
    small_settings: Settings, trained_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(small_settings.mlops_config), "--quiet", "--retrain"]
    assert model_training_evaluation.main([*argv, "--artifacts", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().out.strip().startswith("Error: no hay un modelo campeón en ")
    assert model_training_evaluation.main([*argv, "--artifacts", str(trained_settings.artifacts_dir)]) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("Error: el registro de predicciones tiene 0 filas con resultado real")
    assert "\n" not in out


def test_labelled_rows_of_a_regression_keep_numeric_outcomes(credit_data: ft_engineering.Dataset) -> None:
    regression = ft_engineering.Dataset(
        credit_data.frame, credit_data.roles, "Status", "regression", [], None, []
    )
    log = log_frame(3).assign(actual=["1250.5", "unknown", "90"])
    rows = retraining.labelled_rows(log, regression, DATASET)
    assert sorted(rows["Status"]) == [90.0, 1250.5]


def test_the_verdict_follows_the_metric_direction() -> None:
    from reports import verdict

    assert verdict("ridge", "rmse", 10.0, 12.0, greater_is_better=False).endswith("(mejor)")
    assert verdict("xgboost", "roc_auc", 0.70, 0.75, greater_is_better=True) == (
        "xgboost tiene roc_auc 0.7000 frente a 0.7500 del campeón (peor)"
    )
