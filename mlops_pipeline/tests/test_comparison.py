"""Shadow comparison: hand cases, the bootstrap against scipy's, its symmetry and determinism, and
the dummy challenger reported worse on a simulated prediction log (binary), and on the multiclass
and regression examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx
from scipy import stats

import comparison
import metrics
import registry
import simulation
import store
from conftest import isolated, run_artifacts
from model_training_evaluation import TrainingResult
from settings import Costs, Settings
from test_explain import example_project, fit_version

BINARY = metrics.metric_table("binary", [0, 1], 1)
ACCURACY = {"accuracy": BINARY["accuracy"]}
CHEAP = {name: BINARY[name] for name in ("accuracy", "brier")}  # defined on any rows, fast


def binary_outputs(y_true: np.ndarray, right: np.ndarray) -> comparison.Outputs:
    """Labels that are right where ``right`` says, with a matching positive-class probability."""
    y_pred = np.where(right, y_true, 1 - y_true)
    return comparison.Outputs(y_pred, np.where(y_pred == 1, 0.8, 0.2))


# ----------------------------------------------------------------------------- hand cases
def test_expected_cost_counts_each_error_at_its_price() -> None:
    costs = Costs(false_negative=5, false_positive=1)
    y_true, y_pred = ["bad", "bad", "good", "good"], ["bad", "good", "bad", "good"]
    assert metrics.expected_cost(y_true, y_pred, "bad", costs) == (5 + 1) / 4
    assert metrics.expected_cost(y_true, y_true, "bad", costs) == 0


def test_costs_come_from_the_training_config_else_one_and_one() -> None:
    metadata = registry.ModelMetadata(task="classification", features=[])
    assert comparison.costs_of(metadata) == Costs(false_negative=1.0, false_positive=1.0)
    configured = metadata.model_copy(
        update={"config": {"training": {"costs": {"false_negative": 5, "false_positive": 2}}}}
    )
    assert comparison.costs_of(configured) == Costs(false_negative=5.0, false_positive=2.0)


def test_a_challenger_right_everywhere_is_better_on_every_resample() -> None:
    y_true = np.array([0, 1] * 20)
    champion = binary_outputs(y_true, np.zeros(40, dtype=bool))
    challenger = binary_outputs(y_true, np.ones(40, dtype=bool))
    result = comparison.compare_outputs(BINARY, y_true, champion, challenger, n_boot=5)  # any count holds
    assert result.loc["accuracy", ["champion", "challenger", "difference", "low", "high"]].tolist() == [
        0.0,
        1.0,
        1.0,
        1.0,
        1.0,
    ]
    assert result.loc["brier", "champion"] == approx(0.64) and result.loc["brier", "challenger"] == approx(
        0.04
    )
    assert result.loc["brier", "difference"] == approx(0.6)  # lower is better: the sign flips
    assert (result["verdict"] == "better").all() and (result["resamples"] == 5).all()
    swapped = comparison.compare_outputs(BINARY, y_true, challenger, champion, n_boot=5)
    assert (swapped["verdict"] == "worse").all()


def test_lower_is_better_metrics_count_a_smaller_error_as_positive() -> None:
    y_true = np.arange(30, dtype=float)
    table = metrics.metric_table("regression")
    champion, challenger = comparison.Outputs(y_true + 2.0), comparison.Outputs(y_true + 1.0)
    result = comparison.compare_outputs(table, y_true, champion, challenger, n_boot=20)
    assert result.loc["mae", ["champion", "challenger", "difference"]].tolist() == [2.0, 1.0, 1.0]
    assert result.loc["mae", "verdict"] == "better"


def test_a_resample_that_cannot_define_a_metric_is_left_out() -> None:
    y_true = np.array([0] * 29 + [1])  # many resamples hold no positive row: no ROC-AUC there
    outputs = comparison.Outputs(np.zeros(30, dtype=int), np.linspace(0, 1, 30))
    table = {"roc_auc": BINARY["roc_auc"]}
    result = comparison.compare_outputs(table, y_true, outputs, outputs, n_boot=200)
    assert 0 < result.loc["roc_auc", "resamples"] < 200
    assert result.loc["roc_auc", ["low", "high"]].tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- the bootstrap
def test_the_interval_matches_scipys_paired_percentile_bootstrap() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, 300)
    champion = binary_outputs(y_true, rng.random(300) < 0.7)
    challenger = binary_outputs(y_true, rng.random(300) < 0.75)
    ours = comparison.compare_outputs(ACCURACY, y_true, champion, challenger, n_boot=1000, seed=3)

    def difference(truth, first, second, axis=-1):
        return np.mean(second == truth, axis=axis) - np.mean(first == truth, axis=axis)

    reference = stats.bootstrap(
        (y_true, champion.y_pred, challenger.y_pred),
        difference,
        paired=True,
        vectorized=True,
        n_resamples=1000,
        method="percentile",
        random_state=np.random.default_rng(4),
    ).confidence_interval
    assert ours.loc["accuracy", "low"] == approx(reference.low, abs=0.01)
    assert ours.loc["accuracy", "high"] == approx(reference.high, abs=0.01)


def test_the_same_seed_gives_the_same_intervals() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 2, 80)
    champion, challenger = (binary_outputs(y_true, rng.random(80) < share) for share in (0.6, 0.7))
    runs = [
        comparison.compare_outputs(ACCURACY, y_true, champion, challenger, n_boot=100, seed=seed)
        for seed in (7, 7, 8)
    ]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert runs[0].loc["accuracy", "low"] != runs[2].loc["accuracy", "low"]


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.booleans(), min_size=10, max_size=60),
    st.lists(st.booleans(), min_size=60, max_size=60),
    st.lists(st.booleans(), min_size=60, max_size=60),
    st.integers(0, 1000),
)
def test_identical_models_give_an_interval_around_zero_and_swapping_mirrors_it(
    labels: list[bool], first: list[bool], second: list[bool], seed: int
) -> None:
    y_true = np.array(labels, dtype=int)
    n = len(y_true)
    champion, challenger = (
        binary_outputs(y_true, np.array(first[:n])),
        binary_outputs(y_true, np.array(second[:n])),
    )
    same = comparison.compare_outputs(CHEAP, y_true, champion, champion, n_boot=10, seed=seed)
    assert (same["difference"] == 0).all()
    assert ((same["low"] <= 0) & (same["high"] >= 0)).all()
    assert (same["verdict"] == "inconclusive").all()
    forward = comparison.compare_outputs(CHEAP, y_true, champion, challenger, n_boot=10, seed=seed)
    backward = comparison.compare_outputs(CHEAP, y_true, challenger, champion, n_boot=10, seed=seed)
    np.testing.assert_allclose(forward["difference"], -backward["difference"], atol=1e-12)
    np.testing.assert_allclose(forward["low"], -backward["high"], atol=1e-12)


# ----------------------------------------------------------------------------- on a simulated log
@pytest.fixture(scope="module")
def simulated_log(
    small_credit_config: Path, small_training_run: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """The champion's simulated traffic (3 days, 200 rows a day) with every outcome fed back,
    built once for this module (read only: tests copy what they change)."""
    folder = tmp_path_factory.mktemp("simulated_log")
    with isolated(folder):
        settings = Settings(
            mlops_config=small_credit_config, mlops_artifacts_dir=run_artifacts(small_training_run)
        )
        engine = store.create_db_engine(f"sqlite:///{folder / 'log.db'}")
        store.init_db(engine)
        simulation.simulate_traffic(settings, engine, days=3, rows_per_day=200, feedback_share=1.0)
        log = store.read_predictions(engine)
        engine.dispose()
    return log


def version_of(settings: Settings, model_name: str) -> registry.LoadedModel:
    (version,) = [v for v in registry.list_versions(settings.models_dir) if v.endswith(f"-{model_name}")]
    return registry.load_model(settings.models_dir, version)


def test_the_dummy_challenger_is_reported_worse(
    trained_settings: Settings, simulated_log: pd.DataFrame
) -> None:
    champion = registry.load_model(trained_settings.models_dir)
    dummy = version_of(trained_settings, "dummy")
    result = comparison.compare_models(champion, dummy, simulated_log, simulated_log["actual"], n_boot=40)
    assert result.primary == "roc_auc" and result.rows == 600
    assert result.table.loc["roc_auc", "challenger"] == approx(0.5)
    assert result.table.loc["roc_auc", "high"] < 0
    assert comparison.is_worse(result)
    assert comparison.EXPECTED_COST in result.table.index
    promoted = comparison.compare_models(
        dummy, champion, simulated_log, simulated_log["actual"], names=["roc_auc"], n_boot=40
    )
    assert not comparison.is_worse(promoted) and promoted.table.loc["roc_auc", "verdict"] == "better"


def test_a_version_against_itself_is_never_worse(
    trained_settings: Settings, simulated_log: pd.DataFrame
) -> None:
    champion = registry.load_model(trained_settings.models_dir)
    result = comparison.compare_models(
        champion, champion, simulated_log, simulated_log["actual"], names=["roc_auc", "f1"], n_boot=50
    )
    assert list(result.table.index) == ["roc_auc", "f1"]
    assert (result.table["difference"] == 0).all() and not comparison.is_worse(result)


def test_rows_without_a_usable_outcome_are_left_out(
    trained_settings: Settings, simulated_log: pd.DataFrame
) -> None:
    champion = registry.load_model(trained_settings.models_dir)
    actual = simulated_log["actual"].copy()
    actual.iloc[:50] = None
    actual.iloc[50:60] = "maybe"
    result = comparison.compare_models(
        champion, champion, simulated_log, actual, names=["accuracy"], n_boot=10
    )
    assert result.rows == len(simulated_log) - 60


def test_bad_requests_are_clear_errors(trained_settings: Settings, simulated_log: pd.DataFrame) -> None:
    champion = registry.load_model(trained_settings.models_dir)
    actual = simulated_log["actual"]
    other = registry.LoadedModel(
        "other", champion.pipeline, champion.metadata.model_copy(update={"classes": ["no", "yes"]})
    )
    with pytest.raises(ValueError, match="predict different things"):
        comparison.compare_models(champion, other, simulated_log, actual)
    with pytest.raises(ValueError, match=r"lack features .*'Income'"):
        comparison.compare_models(champion, champion, simulated_log.drop(columns="Income"), actual)
    with pytest.raises(ValueError, match="no logged prediction has a known outcome"):
        comparison.compare_models(champion, champion, simulated_log, actual.map(lambda _: None))
    with pytest.raises(ValueError, match="unknown metrics"):
        comparison.compare_models(champion, champion, simulated_log, actual, names=["auc"])
    result = comparison.compare_models(champion, champion, simulated_log, actual, names=["f1"], n_boot=5)
    with pytest.raises(ValueError, match="has no metric 'roc_auc'"):
        comparison.is_worse(result)


# ----------------------------------------------------------------------------- multiclass and regression
@pytest.mark.parametrize(("example", "real", "primary"), [
    pytest.param("penguins", "logistic_regression", "roc_auc_ovr", marks=pytest.mark.e2e),  # ~1 s of fitting
    ("saratoga_houses", "ridge", "rmse"),
])  # fmt: skip
def test_the_dummy_is_worse_on_the_examples(tmp_path: Path, example: str, real: str, primary: str) -> None:
    project = example_project(example, tmp_path)
    champion, dummy = fit_version(project, real), fit_version(project, "dummy")
    rows = project.data.frame.sample(150, random_state=0)
    actual = rows[project.data.target].astype(str)  # the log stores outcomes as text
    result = comparison.compare_models(champion, dummy, rows, actual, n_boot=30)
    assert result.primary == primary and comparison.is_worse(result)
    assert comparison.EXPECTED_COST not in result.table.index
