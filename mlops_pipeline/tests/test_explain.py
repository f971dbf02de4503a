"""Reasons for each prediction: exact sums for the linear model and XGBoost, the replacement method
against a hand computation, every shipped candidate and the multiclass and regression examples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logit
from threadpoolctl import threadpool_limits

import candidates
import explain
import ft_engineering
import registry
from model_training_evaluation import build_model
from settings import DEFAULT_CONFIG, DatasetConfig, Settings, load_config
from test_datasets_e2e import make_example_data

SAMPLE_ROWS = 600
TINY = {
    "random_forest": {"n_estimators": 20},
    "hist_gradient_boosting": {"max_iter": 20},
    "xgboost": {"n_estimators": 20},
}


@dataclasses.dataclass(frozen=True)
class Project:
    """A loaded dataset and the config section that built it."""

    data: ft_engineering.Dataset
    dataset: DatasetConfig


def fit_version(project: Project, name: str) -> registry.LoadedModel:
    """A candidate trained on the whole project data, with the metadata training would save."""
    data = project.data
    params = {**candidates.CANDIDATES[data.task][name].defaults, **TINY.get(name, {})}
    estimator = candidates.make_estimator(data.task, name, params, seed=0)
    preprocessor = ft_engineering.preprocessor_from_config(data.roles, project.dataset)
    pipeline = build_model(estimator, preprocessor).fit(data.X, data.y)
    metadata = ft_engineering.model_metadata(data, data.X)
    return registry.LoadedModel(name, pipeline, metadata)


def example_project(name: str, folder: Path) -> Project:
    config = Settings(mlops_config=make_example_data.write_example(name, folder)).config
    return Project(ft_engineering.load_data(config.dataset), config.dataset)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Histogram gradient boosting's OpenMP threads fight over the shared cores (a tiny fit took 6 s
    instead of 0.3 s on a loaded 2-core machine); one thread each keeps these tests fast."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def credit() -> Project:
    """600 rows of the shipped credit data (binary; positive class "bad", the first of the two)."""
    dataset = load_config(DEFAULT_CONFIG).dataset
    data = ft_engineering.load_data(dataset)
    sample = data.frame.sample(SAMPLE_ROWS, random_state=0).reset_index(drop=True)
    return Project(dataclasses.replace(data, frame=sample), dataset)


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return example_project("penguins", tmp_path_factory.mktemp("penguins"))


@pytest.fixture(scope="module")
def saratoga(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return example_project("saratoga_houses", tmp_path_factory.mktemp("saratoga"))


@pytest.fixture(scope="module")
def credit_models(credit: Project) -> dict[str, registry.LoadedModel]:
    return {name: fit_version(credit, name) for name in candidates.CANDIDATES["classification"]}


def rows_with_missing(project: Project, n: int = 40) -> pd.DataFrame:
    """Raw rows of the project, the first ones with every numeric feature blanked in turn."""
    rows = project.data.X.head(n).reset_index(drop=True).copy()
    for i, column in enumerate(project.data.roles.numeric):
        rows.loc[i, column] = np.nan
    return rows.set_axis(rows.index + 1000)  # not 0..n-1: the index must be kept


def clipped_logit(proba: np.ndarray) -> np.ndarray:
    """The log-odds of probabilities clipped as the replacement method clips them."""
    return logit(np.clip(proba, explain.LOG_ODDS_CLIP, 1 - explain.LOG_ODDS_CLIP))


def xgboost_margins(model: registry.LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """XGBoost's own margins (the scores before the sigmoid or softmax) of the raw rows."""
    return model.pipeline[-1].estimator_.predict(model.pipeline[0].transform(frame), output_margin=True)


def positive_logit(model: registry.LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """The log-odds of the positive class, from the pipeline's own probabilities."""
    position = list(model.pipeline.classes_).index(model.metadata.positive_class)
    return logit(model.pipeline.predict_proba(frame)[:, position])


# ----------------------------------------------------------------------------- which explainer
def test_each_candidate_family_has_its_explainer(credit_models: dict) -> None:
    kinds = {name: explain.explainer_kind(model) for name, model in credit_models.items()}
    assert kinds == {
        "dummy": explain.TYPICAL_VALUE_REPLACEMENT,
        "logistic_regression": explain.LINEAR_EXACT,
        "random_forest": explain.TYPICAL_VALUE_REPLACEMENT,
        "hist_gradient_boosting": explain.TYPICAL_VALUE_REPLACEMENT,
        "xgboost": explain.XGBOOST_TREE_SHAP,
    }
    assert set(explain.EXPLAINERS) == set(kinds.values())


def test_transformed_columns_map_back_to_raw_and_derived_features(credit_models: dict) -> None:
    columns = credit_models["logistic_regression"].pipeline[0][-1]
    sources = dict(zip(columns.get_feature_names_out(), explain.output_sources(columns)))
    assert sources["missingindicator_Income"] == "Income"
    assert sources["Home_owner"] == sources["Home_infrequent_sklearn"] == "Home"
    assert sources["installment_to_income"] == "installment_to_income"  # a derived feature is its own input
    assert sources["missingindicator_installment_to_income"] == "installment_to_income"


# ----------------------------------------------------------------------------- exact methods
def test_linear_contributions_add_up_to_the_logit(credit: Project, credit_models: dict) -> None:
    model, rows = credit_models["logistic_regression"], rows_with_missing(credit)
    result = explain.feature_contributions(model, rows)
    total = result.values.sum(axis=1).to_numpy() + result.base_value
    np.testing.assert_allclose(total, positive_logit(model, rows), rtol=0, atol=1e-8)
    typical = positive_logit(model, explain.typical_row(model.metadata))
    np.testing.assert_allclose(result.base_value, typical[0], rtol=0, atol=1e-8)
    assert list(result.values.index) == list(rows.index)


def test_linear_contribution_is_the_change_when_a_feature_takes_its_typical_value(
    credit: Project, credit_models: dict
) -> None:
    """Independent route: set one input (raw or derived) of the prepared rows to the typical row's
    value and run the pipeline's own ColumnTransformer and model; the logit moves by the contribution."""
    model, rows = credit_models["logistic_regression"], rows_with_missing(credit)
    result = explain.feature_contributions(model, rows)
    prepare, finish = model.pipeline[0][:-1], model.pipeline[1:]
    columns = model.pipeline[0][-1]
    prepared, typical = prepare.transform(rows), prepare.transform(explain.typical_row(model.metadata))
    position = list(model.pipeline.classes_).index("bad")

    def logit_of(frame: pd.DataFrame) -> np.ndarray:
        return logit(finish.predict_proba(columns.transform(frame))[:, position])

    for feature in ["Income", "Home", "installment_to_income", "Records"]:
        changed = prepared.assign(**{feature: typical[feature].iloc[0]})
        expected = logit_of(prepared) - logit_of(changed)
        np.testing.assert_allclose(result.values[feature], expected, rtol=0, atol=1e-8)


def test_xgboost_contributions_add_up_to_the_margin(credit: Project, credit_models: dict) -> None:
    model, rows = credit_models["xgboost"], rows_with_missing(credit)
    result = explain.feature_contributions(model, rows)
    margin = xgboost_margins(model, rows)  # of class 1, "good"
    total = result.values.sum(axis=1).to_numpy() + result.base_value
    np.testing.assert_allclose(total, -margin, rtol=0, atol=1e-5)  # the explained class is "bad"
    np.testing.assert_allclose(total, positive_logit(model, rows), rtol=0, atol=1e-4)
    assert np.ptp(result.base_value) == 0  # XGBoost's expected margin: one value for every row


# ----------------------------------------------------------------------------- the replacement method
def decisive_project(rows: int = 400) -> Project:
    """Synthetic data whose class is decided by ``x > 1`` alone (the typical x, its median, is about 0:
    a "no"); ``noise`` and ``color`` are noise."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "color": rng.choice(["red", "blue"], rows).astype(object),
        }
    )
    frame["y"] = np.where(frame["x"] > 1, "yes", "no").astype(object)
    roles = ft_engineering.Roles(numeric=["x", "noise"], categorical=["color"])
    data = ft_engineering.Dataset(frame, roles, "y", "classification", ["no", "yes"], "yes", [])
    return Project(data, DatasetConfig(path=Path("unused.csv"), target="y"))


@pytest.mark.parametrize("name", ["random_forest", "hist_gradient_boosting"])
def test_replacement_ranks_the_decisive_feature_first(name: str) -> None:
    project = decisive_project()
    model = fit_version(project, name)
    clear = project.data.X[project.data.X["x"] > 1.5]  # "yes" rows, only because of x
    reasons = explain.explain(model, clear, 2)
    assert (reasons["reason_1_feature"] == "x").all()
    assert (reasons["reason_1_contribution"] > 1).all()
    assert reasons["reason_1_value"].astype(float).tolist() == clear["x"].tolist()


def test_replacement_is_the_score_minus_the_score_at_the_typical_value() -> None:
    """Hand computation on raw rows without derived features: one pipeline call per feature."""
    project = decisive_project()
    model = fit_version(project, "hist_gradient_boosting")
    rows = project.data.X.head(25)
    result = explain.feature_contributions(model, rows)
    typical = explain.typical_row(model.metadata)

    def log_odds(frame: pd.DataFrame) -> np.ndarray:
        return clipped_logit(model.pipeline.predict_proba(frame)[:, 1])

    for feature in ["x", "noise", "color"]:
        expected = log_odds(rows) - log_odds(rows.assign(**{feature: typical[feature].iloc[0]}))
        np.testing.assert_allclose(result.values[feature], expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.base_value, log_odds(typical)[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.score, log_odds(rows), rtol=0, atol=1e-10)


def test_replacement_batches_of_any_size_give_the_same_result(
    credit: Project, credit_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, rows = credit_models["random_forest"], rows_with_missing(credit)
    whole = explain.feature_contributions(model, rows)
    monkeypatch.setattr(explain, "MAX_BATCH_ROWS", 50)  # blocks of 2 rows
    blocks = explain.feature_contributions(model, rows)
    pd.testing.assert_frame_equal(whole.values, blocks.values)
    np.testing.assert_array_equal(whole.base_value, blocks.base_value)


def test_a_constant_model_gives_no_reasons(credit: Project, credit_models: dict) -> None:
    reasons = explain.explain(credit_models["dummy"], credit.data.X.head(5), 3)
    assert reasons.drop(columns="base_value").isna().all().all()
    assert reasons["base_value"].notna().all()


# ----------------------------------------------------------------------------- the output table
def test_explain_returns_the_top_reasons_by_absolute_contribution(
    credit: Project, credit_models: dict
) -> None:
    model, rows = credit_models["logistic_regression"], rows_with_missing(credit)
    reasons = explain.explain(model, rows, 3)
    contributions = explain.feature_contributions(model, rows).values
    assert list(reasons.columns) == explain.reason_columns(3)
    assert list(reasons.index) == list(rows.index)
    largest = contributions.abs().apply(lambda row: list(row.nlargest(3).index), axis=1)
    chosen = reasons[[f"reason_{k}_feature" for k in (1, 2, 3)]].to_numpy().tolist()
    assert chosen == largest.tolist()
    row = rows.index[5]
    feature = reasons.loc[row, "reason_1_feature"]
    assert reasons.loc[row, "reason_1_contribution"] == contributions.loc[row, feature]


def test_missing_values_are_reasons_of_their_own_feature(credit: Project, credit_models: dict) -> None:
    model, rows = credit_models["logistic_regression"], rows_with_missing(credit)
    contributions = explain.feature_contributions(model, rows)
    income_missing = rows.index[credit.data.roles.numeric.index("Income")]
    assert np.isnan(contributions.inputs.loc[income_missing, "Income"])
    assert contributions.values.loc[income_missing, "Income"] != 0  # the missing indicator counts


@pytest.mark.parametrize("top_k", [0, 6, 2.0, "3", True, None])
def test_top_k_out_of_range_is_a_clear_error(credit: Project, credit_models: dict, top_k) -> None:
    with pytest.raises(ValueError, match="top_k must be an integer from 1 to 5"):
        explain.explain(credit_models["logistic_regression"], credit.data.X.head(2), top_k)


def test_more_reasons_than_inputs_leaves_the_rest_empty() -> None:
    project = decisive_project(60)
    model = fit_version(project, "logistic_regression")
    reasons = explain.explain(model, project.data.X.head(4), 5)
    assert list(reasons.columns) == explain.reason_columns(5)
    assert reasons[["reason_4_feature", "reason_5_feature", "reason_5_contribution"]].isna().all().all()


def test_an_empty_frame_gives_an_empty_table(credit: Project, credit_models: dict) -> None:
    reasons = explain.explain(credit_models["xgboost"], credit.data.X.head(0), 2)
    assert reasons.empty and list(reasons.columns) == explain.reason_columns(2)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (6, 4), elements=st.floats(-5, 5, allow_nan=False)), st.integers(1, 5))
def test_reasons_are_the_largest_contributions_in_order(values: np.ndarray, top_k: int) -> None:
    frame = pd.DataFrame(values, columns=["a", "b", "c", "d"])
    contributions = explain.Contributions(frame, frame * 10, np.zeros(6), values.sum(axis=1), "test")
    reasons = explain.top_reasons(contributions, top_k)
    for i, row in reasons.iterrows():
        kept = [row[f"reason_{k}_contribution"] for k in range(1, top_k + 1)]
        present = [value for value in kept if not np.isnan(value)]
        expected = sorted((v for v in values[i] if v != 0), key=abs, reverse=True)[:top_k]
        assert sorted(np.abs(present), reverse=True) == np.abs(present).tolist()
        assert sorted(np.abs(present)) == sorted(np.abs(expected))
        for k in range(1, len(present) + 1):
            assert row[f"reason_{k}_value"] == 10 * frame.loc[i, row[f"reason_{k}_feature"]]


# ----------------------------------------------------------------------------- every model and example
def test_every_version_training_saves_explains(
    trained_settings: Settings, credit_frame: pd.DataFrame
) -> None:
    rows = credit_frame.drop(columns="Status").head(30)
    for version in registry.list_versions(trained_settings.models_dir):
        model = registry.load_model(trained_settings.models_dir, version)
        reasons = explain.explain(model, rows, 3)
        assert len(reasons) == len(rows) and reasons["base_value"].notna().all()
        if model.metadata.model_name != "dummy":
            assert reasons["reason_1_feature"].notna().all()


def test_multiclass_reasons_explain_the_predicted_class(penguins: Project) -> None:
    rows = penguins.data.X.sample(40, random_state=1)
    for name in ["logistic_regression", "xgboost"]:
        model = fit_version(penguins, name)
        predicted = model.pipeline.predict_proba(rows).argmax(axis=1)
        if name == "xgboost":
            margins = xgboost_margins(model, rows)
        else:
            margins = model.pipeline.decision_function(rows)
        result = explain.feature_contributions(model, rows)
        total = result.values.sum(axis=1).to_numpy() + result.base_value
        np.testing.assert_allclose(total, margins[np.arange(len(rows)), predicted], rtol=0, atol=1e-5)
    model = fit_version(penguins, "random_forest")
    result = explain.feature_contributions(model, rows)
    proba = model.pipeline.predict_proba(rows).max(axis=1)
    np.testing.assert_allclose(result.score, clipped_logit(proba), rtol=0, atol=1e-10)
    assert explain.explain(model, rows, 3)["reason_1_feature"].isin(model.feature_names).all()


@pytest.mark.parametrize("name", ["ridge", "xgboost"])
def test_regression_reasons_add_up_to_the_value(saratoga: Project, name: str) -> None:
    model = fit_version(saratoga, name)
    rows = saratoga.data.X.sample(40, random_state=2)
    result = explain.feature_contributions(model, rows)
    total = result.values.sum(axis=1).to_numpy() + result.base_value
    np.testing.assert_allclose(total, model.pipeline.predict(rows), rtol=1e-5)


@pytest.mark.parametrize("name", ["dummy", "random_forest", "hist_gradient_boosting"])
def test_regression_replacement_explains_the_value(saratoga: Project, name: str) -> None:
    model = fit_version(saratoga, name)
    rows = saratoga.data.X.sample(20, random_state=3)
    result = explain.feature_contributions(model, rows)
    np.testing.assert_allclose(result.score, model.pipeline.predict(rows))
    assert explain.explain(model, rows, 3).shape == (20, len(explain.reason_columns(3)))


# ----------------------------------------------------------------------------- for the API and dashboard
def test_row_reasons_is_the_json_shape_without_empty_reasons() -> None:
    row = {
        "base_value": -1.2,
        "reason_1_feature": "Income",
        "reason_1_value": np.nan,
        "reason_1_contribution": 0.8,
        "reason_2_feature": "Home",
        "reason_2_value": "rent",
        "reason_2_contribution": -0.25,
        "reason_3_feature": None,
        "reason_3_value": None,
        "reason_3_contribution": np.nan,
    }
    assert explain.row_reasons(row) == [
        {"feature": "Income", "value": None, "contribution": 0.8},
        {"feature": "Home", "value": "rent", "contribution": -0.25},
    ]


@pytest.mark.parametrize(
    ("value", "contribution", "text"),
    [
        (30.0, 0.8, "Income = 30: +0.80"),
        (0.123456, -0.051, "Income = 0.123: -0.05"),
        (12345.678, 1.0, "Income = 12346: +1.00"),
        (np.nan, -0.3, "Income = sin dato: -0.30"),
        (None, 0.3, "Income = sin dato: +0.30"),
        ("rent", 0.25, "Income = rent: +0.25"),
    ],
)
def test_reason_text_in_spanish(value, contribution: float, text: str) -> None:
    assert explain.reason_text("Income", value, contribution) == text
