"""Feature engineering: reading, cleaning, validation, roles, derived features, preprocessing, split."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import cleaning
import ft_engineering as fe
from conftest import write_config
from settings import ConfigError, DatasetConfig, Settings, SplitConfig


def _dataset(path: Path, **overrides) -> DatasetConfig:
    return DatasetConfig(path=path, **({"target": "y"} | overrides))


# ----------------------------------------------------------------------------- reading
def test_semicolon_and_decimal_comma_csv_is_read_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("\ufeffIncome;Home;y\n1.234,5;rent;good\n99,25;owner;bad\n", encoding="utf-8")
    frame = fe.read_csv(path)
    assert list(frame.columns) == ["Income", "Home", "y"]
    assert frame["Income"].tolist() == [1234.5, 99.25]


def test_comma_csv_from_a_stream_with_bom() -> None:
    frame = fe.read_csv(io.StringIO("\ufeffa,b\n1,x\n2,y\n"))
    assert frame.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


@pytest.mark.parametrize("text", ["", "   \n", 'a,b\n1,"unclosed\n'])
def test_empty_or_malformed_csv_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="empty|malformed"):
        fe.read_csv(io.StringIO(text))


# ----------------------------------------------------------------------------- cleaning
def test_missing_tokens_are_unified_case_insensitively_and_text_is_stripped() -> None:
    frame = pd.DataFrame(
        {
            "Home": [" rent ", "ignore", "IGNORE", "", None, "owner"],
            "n": [1, 2, 3, 4, 5, 6],
        }
    )
    out = fe.unify_missing(frame, ["ignore"])
    assert out["Home"].tolist()[:1] == ["rent"]
    assert out["Home"].isna().tolist() == [False, True, True, True, True, False]
    assert out["n"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["Home"].iloc[1] == "ignore", "the input frame is not modified"


def test_type_coercion_parses_numbers_and_normalises_categories() -> None:
    frame = pd.DataFrame(
        {
            "Income": ["12", "n/a", 7, None],
            "Code": [1.0, "1", 2, np.nan],
            "Flag": [True, False, True, None],
        }
    )
    out = fe.coerce_types(frame, numeric=["Income"], categorical=["Code", "Flag"])
    assert out["Income"].dtype == float
    assert (
        out["Income"].tolist()[:1] == [12.0]
        and np.isnan(out["Income"].iloc[1])
        and out["Income"].iloc[2] == 7.0
    )
    assert out["Code"].tolist()[:3] == ["1", "1", "2"] and pd.isna(out["Code"].iloc[3])
    assert out["Flag"].tolist()[:3] == ["True", "False", "True"]
    assert fe.count_unparseable(frame, ["Income"]) == {"Income": 1}


def _per_cell_unify_missing(df: pd.DataFrame, tokens: list[str]) -> pd.DataFrame:
    """`unify_missing` as it was written before it was vectorised: the reference semantics."""
    lowered = {token.strip().lower() for token in tokens} | {""}
    out = df.copy()
    for column in out.columns:
        values = out[column]
        holds_text = values.dtype == object or isinstance(values.dtype, pd.StringDtype)
        if holds_text and pd.api.types.infer_dtype(values, skipna=True) in cleaning.TEXT_KINDS:
            values = pd.Series(values.to_numpy(dtype=object, na_value=np.nan), index=values.index)
            stripped = values.str.strip()
            is_token = stripped.str.lower().isin(lowered)
            out[column] = values.where(stripped.isna(), stripped).mask(is_token, np.nan)
    return out


def _per_cell_coerce_types(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """`coerce_types` as it was written before it was vectorised: the reference semantics."""
    out = df.copy()
    for column in numeric:
        if out[column].dtype != np.float64:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    for column in categorical:
        out[column] = out[column].map(fe.as_category_text).astype(object)
    return out


TOKENS = ["ignore", "NA", " n/a "]
TRICKY_NUMERIC = ["Income", "Float", "Int"]
TRICKY_CATEGORICAL = ["Home", "Code", "Flag", "Level", "Empty", "Number"]


def _tricky_frame() -> pd.DataFrame:
    """Tokens with spaces and case, numbers as text, booleans, 1 / 1.0 / "1", NaN, inf, empty strings."""
    n = 12
    return pd.DataFrame(
        {
            "Home": [
                " rent ",
                "IGNORE",
                " Ignore ",
                "",
                "  ",
                None,
                np.nan,
                "owner",
                "na",
                "N/A",
                "rent",
                "rent\t",
            ],
            "Income": [
                "12",
                " 7.5 ",
                "n/a",
                "ignore",
                None,
                3,
                4.5,
                "inf",
                "",
                "-1",
                "1e3",
                "1,5",
            ],
            "Code": [
                1,
                1.0,
                "1",
                "1.0",
                2,
                True,
                False,
                np.nan,
                None,
                "True",
                " 2 ",
                2.5,
            ],
            "Flag": [
                True,
                False,
                True,
                None,
                True,
                False,
                True,
                False,
                True,
                False,
                True,
                False,
            ],
            "Float": [
                1.0,
                2.5,
                np.nan,
                np.inf,
                -np.inf,
                0.0,
                -0.0,
                1e20,
                3.0,
                4.0,
                5.0,
                6.0,
            ],
            "Int": range(n),
            "Level": pd.array(
                [
                    " low",
                    "HIGH ",
                    pd.NA,
                    "ignore",
                    "mid",
                    "low",
                    "",
                    "high",
                    pd.NA,
                    "low",
                    "x",
                    "Na",
                ],
                dtype="string",
            ),
            "Empty": pd.Series([None] * n, dtype=object),
            "Number": [
                1.0,
                2.0,
                np.nan,
                1.5,
                3.0,
                1.0,
                2.0,
                np.nan,
                1e20,
                -0.0,
                0.0,
                7.0,
            ],
            "Other": [
                "  a",
                "b  ",
                None,
                "ignore",
                1,
                2.0,
                "c",
                "d",
                "e",
                "f",
                "g",
                "h",
            ],
        }
    )


def test_vectorised_cleaning_matches_per_cell_semantics_on_a_tricky_frame() -> None:
    frame = _tricky_frame()
    before = frame.copy()
    expected_unified = _per_cell_unify_missing(frame, TOKENS)
    expected = _per_cell_coerce_types(expected_unified, TRICKY_NUMERIC, TRICKY_CATEGORICAL)
    pd.testing.assert_frame_equal(fe.unify_missing(frame, TOKENS), expected_unified)
    coerced = fe.coerce_types(expected_unified, TRICKY_NUMERIC, TRICKY_CATEGORICAL)
    pd.testing.assert_frame_equal(coerced, expected)
    cleaner = fe.ColumnCleaner(TOKENS, TRICKY_NUMERIC, TRICKY_CATEGORICAL).fit(frame)
    cleaned = cleaner.transform(frame)
    pd.testing.assert_frame_equal(cleaned, expected)
    spelled = ["rent", "-", "-", "-", "-", "-", "-", "owner", "-", "-", "rent", "rent"]
    assert cleaned["Home"].fillna("-").tolist() == spelled
    codes = ["1", "1", "1", "1.0", "2", "True", "False", "-", "-", "True", "2", "2.5"]
    assert cleaned["Code"].fillna("-").tolist() == codes
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified ...
    assert not np.shares_memory(cleaned["Float"].to_numpy(), frame["Float"].to_numpy())  # ... nor shared
    fitted_on_clean = fe.ColumnCleaner(TOKENS, TRICKY_NUMERIC, TRICKY_CATEGORICAL).fit(expected)
    assert set(fitted_on_clean.spellings_) == {
        "Home",
        "Code",
        "Flag",
        "Level",
        "Number",
    }
    pd.testing.assert_frame_equal(fitted_on_clean.transform(frame), expected)  # unseen spellings too


def test_vectorised_cleaning_matches_per_cell_semantics_on_credit_data(
    credit_frame: pd.DataFrame,
) -> None:
    frame = credit_frame.drop(columns="Status")
    numeric = [
        "Seniority",
        "Time",
        "Age",
        "Expenses",
        "Income",
        "Assets",
        "Debt",
        "Amount",
        "Price",
    ]
    categorical = ["Home", "Marital", "Records", "Job"]
    expected = _per_cell_coerce_types(_per_cell_unify_missing(frame, TOKENS), numeric, categorical)
    cleaned = fe.ColumnCleaner(TOKENS, numeric, categorical).fit_transform(frame)
    pd.testing.assert_frame_equal(cleaned, expected)


# ----------------------------------------------------------------------------- loading and roles
def test_load_data_on_the_shipped_credit_table(small_settings: Settings) -> None:
    data = fe.load_data(small_settings.config.dataset)
    assert data.task == "classification"
    assert data.classes == ["bad", "good"] and data.positive_class == "bad"
    assert "ignore" not in set(data.frame["Home"].dropna())
    assert data.frame["Income"].dtype == float
    assert list(data.X.columns) == data.roles.features


def test_roles_are_inferred_and_id_like_or_constant_columns_dropped(
    tmp_path: Path,
) -> None:
    n = 60
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "constant": ["same"] * n,
            "amount": [str(i) if i % 20 else "error" for i in range(n)],
            "flag": [i % 2 == 0 for i in range(n)],
            "city": ["a", "b", "c"] * (n // 3),
            "y": ["yes", "no"] * (n // 2),
        }
    )
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    data = fe.load_data(_dataset(path))
    assert data.roles.numeric == ["amount"]
    assert data.roles.categorical == ["flag", "city"]
    assert set(data.roles.dropped) == {"customer_id", "constant"}
    assert any("no numéricos" in note and "amount" in note for note in data.notes)
    assert data.frame["amount"].isna().sum() == 3


def test_rows_without_target_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": range(6), "y": ["a", None, "b", "a", None, "b"]}).to_csv(path, index=False)
    data = fe.load_data(_dataset(path, numeric=["x"], categorical=[]))
    assert len(data.frame) == 4
    assert "se descartaron 2 filas sin valor en la variable objetivo" in data.notes


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b"], "classification"),
        ([0, 1, 2, 1], "classification"),
        ([0.5, 1.7, 2.2, 3.1], "regression"),
    ],
)
def test_task_is_inferred_from_the_target(values: list, task: str) -> None:
    assert fe.infer_task(pd.Series(values)) == task


def test_wrong_columns_in_config_fail_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}).to_csv(path, index=False)
    with pytest.raises(
        ConfigError, match=r"^dataset\.target: 'nope' no es una columna de los datos; escriba una de: x, y$"
    ):
        fe.load_data(_dataset(path, target="nope"))
    with pytest.raises(ConfigError, match=r"^dataset\.numeric: 'ghost' no es una columna"):
        fe.load_data(_dataset(path, numeric=["x", "ghost"]))
    with pytest.raises(
        ConfigError,
        match=r"^dataset\.positive_class: 'c' no es una clase del objetivo; escriba una de: a, b$",
    ):
        fe.load_data(_dataset(path, positive_class="c"))


# ----------------------------------------------------------------------------- validation
def test_validation_reports_violations_without_dropping_rows(
    small_settings: Settings,
) -> None:
    dataset = small_settings.config.dataset
    data = fe.load_data(dataset)
    broken = data.frame.copy()
    broken.loc[broken.index[:3], "Age"] = 150
    broken.loc[broken.index[:2], "Job"] = "astronaut"
    broken.loc[broken.index[:], "Debt"] = np.nan
    report = fe.validate_data(broken, dataset)
    by_rule = {(r.check, r.column): r for r in report.itertuples()}
    assert by_rule[("range", "Age")].violations == 3
    assert "por encima del máximo 100" in by_rule[("range", "Age")].detail
    assert by_rule[("allowed_categories", "Job")].violations == 2
    assert "astronaut" in by_rule[("allowed_categories", "Job")].detail
    assert by_rule[("missing_share", "Debt")].violations == len(broken)
    assert len(broken) == len(data.frame)


def test_validation_names_a_missing_required_column(small_settings: Settings) -> None:
    dataset = small_settings.config.dataset
    frame = fe.load_data(dataset).frame.drop(columns=["Income"])
    report = fe.validate_data(frame, dataset)
    assert ("required_column", "Income") in set(zip(report["check"], report["column"]))


# ----------------------------------------------------------------------------- transformers
@parametrize_with_checks([fe.DerivedFeatures(), fe.ColumnCleaner()])
def test_transformers_follow_the_scikit_learn_contract(estimator, check) -> None:
    check(estimator)


def test_derived_features_are_computed_and_divisions_by_zero_become_missing() -> None:
    frame = pd.DataFrame({"Amount": [100.0, 50.0], "Price": [200.0, 0.0]})
    derived = fe.DerivedFeatures({"loan_to_price": "Amount / Price"}).fit(frame)
    out = derived.transform(frame)
    assert out["loan_to_price"].iloc[0] == 0.5 and np.isnan(out["loan_to_price"].iloc[1])
    assert list(derived.get_feature_names_out()) == ["Amount", "Price", "loan_to_price"]


def test_a_broken_derived_expression_is_reported_by_name() -> None:
    with pytest.raises(ValueError, match="derived feature 'bad'"):
        fe.DerivedFeatures({"bad": "Amount / Ghost"}).fit(pd.DataFrame({"Amount": [1.0]}))


def test_derived_features_match_pandas_eval_on_a_tricky_frame() -> None:
    frame = pd.DataFrame(
        {
            "Amount": [100.0, 50.0, 0.0, np.nan, -3.0, 1e308, 7.0],
            "Price": [200.0, 0.0, 0.0, 5.0, 2.0, 1e-308, -np.inf],
            "Time": [12.0, 0.0, 6.0, 3.0, 1.0, 2.0, 4.0],
            "Monthly income": [1.0, 2.0, np.nan, 4.0, 0.0, 6.0, 7.0],
        }
    )
    expressions = {
        "ratio": "Amount / Price",
        "chained": "ratio * 2 - Time",
        "powers": "-Amount ** 2 + (Time + 1) ** 0.5 - Time ** -1",
        "functions": "log1p(abs(Amount)) + sqrt(Time) - arctan2(Amount, Price)",
        "integer_parts": "Time % 4 + Amount // 3",
        "quoted": "Amount / `Monthly income` / 12",
        "folded": "Amount\n  - Time",
    }
    out = fe.DerivedFeatures(expressions).fit_transform(frame)
    with np.errstate(all="ignore"):
        quoted = {name: text.replace("\n", " ") for name, text in expressions.items()}
        expected = frame.eval(
            "\n".join(f"{name} = {text}" for name, text in quoted.items()),
            engine="python",
        )
    expected[list(expressions)] = expected[list(expressions)].replace([np.inf, -np.inf], np.nan)
    pd.testing.assert_frame_equal(out, expected)
    assert out["ratio"].isna().tolist() == [False, True, True, True, False, True, False]
    assert not np.shares_memory(out["Amount"].to_numpy(), frame["Amount"].to_numpy())


def test_derived_features_are_parsed_once_and_pickle_and_clone() -> None:
    frame = pd.DataFrame({"Amount": [100.0, 50.0], "Price": [200.0, 0.0]})
    derived = fe.DerivedFeatures({"loan_to_price": "Amount / Price"}).fit(frame)
    assert set(derived.parsed_) == {"loan_to_price"}
    restored = pickle.loads(pickle.dumps(derived))
    pd.testing.assert_frame_equal(restored.transform(frame), derived.transform(frame))
    assert clone(derived).get_params() == derived.get_params() and not hasattr(clone(derived), "parsed_")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("Assets - ", "error de sintaxis"),
        ("", "vacía"),
        ("Income > 3", "'Income > 3' no está permitido"),
        ("Income.mean()", "no está permitido"),
        ("__import__('os')", "no está permitido"),
        ("log(Income, 2)", "recibe 1 argumento"),
        ("Home == 'rent'", "no está permitido"),
        ("@limit * 2", "error de sintaxis"),
    ],
)
def test_an_expression_outside_the_language_is_rejected_saying_why(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fe.derived_columns(expression)
    with pytest.raises(ValueError, match=f"derived feature 'bad' = .* is not valid: .*{message}"):
        fe.DerivedFeatures({"bad": expression}).fit(pd.DataFrame({"Income": [1.0]}))


def test_derived_columns_names_the_raw_columns_an_expression_reads() -> None:
    assert fe.derived_columns("Amount / Time / Income") == {"Amount", "Time", "Income"}
    assert fe.derived_columns("log1p(`Monthly income`) - 2 * -Debt") == {
        "Monthly income",
        "Debt",
    }
    assert fe.derived_columns("3 ** 2") == set()


def test_a_derived_feature_over_a_non_numeric_column_fails_at_fit_naming_it() -> None:
    with pytest.raises(
        ValueError,
        match="derived feature 'bad' = 'Home / 2': column 'Home' is not numeric",
    ):
        fe.DerivedFeatures({"bad": "Home / 2"}).fit(pd.DataFrame({"Home": ["rent", "owner"]}))


def test_a_derived_feature_over_an_unknown_column_fails_at_load_naming_the_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0], "z": [3.0, 4.0], "y": ["a", "b"]}).to_csv(path, index=False)
    derived = {"ok": "x / z", "twice": "ok * 2", "bad": "x / Ghost"}
    with pytest.raises(
        ConfigError,
        match=r"^dataset\.derived\.bad: en la expresión 'x / Ghost', 'Ghost' no es una variable del modelo; "
        r"escriba una de: ok, twice, x, z$",
    ):
        fe.load_data(_dataset(path, derived=derived))
    with pytest.raises(ConfigError, match=r"dataset\.derived\.bad: .* 'y' no es una variable del modelo"):
        fe.load_data(_dataset(path, derived={"bad": "x / y"}))  # the target is not a feature
    data = fe.load_data(_dataset(path, derived={"ok": "x / z", "twice": "ok * 2"}))
    assert data.roles.numeric == ["x", "z"]


def _fitted_pipeline(settings: Settings) -> tuple[Pipeline, fe.Split, fe.Dataset]:
    config = settings.config
    data = fe.load_data(config.dataset)
    split = fe.split_data(data, config.split)
    preprocessor = fe.preprocessor_from_config(data.roles, config.dataset)
    pipeline = Pipeline([("preprocessor", preprocessor), ("model", LogisticRegression(max_iter=500))])
    return pipeline.fit(split.X_train, split.y_train), split, data


def test_derived_features_live_inside_the_fitted_pipeline(
    small_settings: Settings,
) -> None:
    pipeline, split, _ = _fitted_pipeline(small_settings)
    names = set(pipeline[:-1].get_feature_names_out())
    assert set(small_settings.config.dataset.derived) <= names
    raw_row = split.X_test.iloc[[0]].copy()
    raw_row["Home"] = "ignore"
    raw_row["Income"] = "12"
    cleaned = pipeline[:-1].transform(raw_row)
    assert np.isfinite(cleaned).all()
    assert pipeline.predict_proba(raw_row).shape == (1, 2)


def test_imputer_and_scaler_statistics_come_from_the_training_split_only(
    small_settings: Settings,
) -> None:
    pipeline, split, data = _fitted_pipeline(small_settings)
    numeric = pipeline.named_steps["preprocessor"].named_steps["columns"].named_transformers_["numeric"]
    imputer, scaler = numeric.named_steps["impute"], numeric.named_steps["scale"]
    column = data.roles.numeric.index("Income")
    assert imputer.statistics_[column] == pytest.approx(split.X_train["Income"].median())
    assert imputer.statistics_[column] != pytest.approx(data.X["Income"].median())
    assert scaler.mean_[data.roles.numeric.index("Age")] == pytest.approx(split.X_train["Age"].mean())


def test_unknown_categories_and_missing_values_are_handled(
    small_settings: Settings,
) -> None:
    pipeline, split, _ = _fitted_pipeline(small_settings)
    row = split.X_test.iloc[[0]].copy()
    row["Job"] = "astronaut"
    row["Income"] = np.nan
    row["Marital"] = None
    assert np.isfinite(pipeline.predict_proba(row)).all()


# ----------------------------------------------------------------------------- split
def test_split_is_deterministic_stratified_and_disjoint(
    small_settings: Settings,
) -> None:
    config = small_settings.config
    data = fe.load_data(config.dataset)
    first, second = fe.split_data(data, config.split), fe.split_data(data, config.split)
    assert first.X_train.index.equals(second.X_train.index)
    assert set(first.X_train.index).isdisjoint(first.X_test.index)
    shares = [s.value_counts(normalize=True)["bad"] for s in (first.y_train, first.y_test, data.y)]
    assert max(shares) - min(shares) < 0.01
    other = fe.split_data(data, SplitConfig(seed=config.split.seed + 1))
    assert not first.X_train.index.equals(other.X_train.index)


def test_regression_split_is_not_stratified(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": np.arange(40.0), "y": np.linspace(0, 1, 40) + 0.013}).to_csv(path, index=False)
    data = fe.load_data(_dataset(path))
    assert data.task == "regression" and data.positive_class is None
    split = fe.split_data(data, SplitConfig())
    assert len(split.X_test) == 8


def test_feature_schema_describes_types_ranges_and_categories(
    small_settings: Settings,
) -> None:
    data = fe.load_data(small_settings.config.dataset)
    schema = {entry["name"]: entry for entry in fe.feature_schema(data.X, data.roles)}
    assert schema["Age"]["kind"] == "numeric" and schema["Age"]["dtype"] == "integer"
    assert schema["Age"]["min"] == data.X["Age"].min()
    assert schema["Home"]["categories"] == sorted(data.X["Home"].dropna().unique())
    assert schema["Income"]["missing_share"] > 0


# ----------------------------------------------------------------------------- another dataset
def test_a_second_dataset_runs_through_mlops_config_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.loc[frame.index[::7], "mean_radius"] = np.nan
    config = {
        "dataset": {
            "path": "data.csv",
            "target": "target",
            "positive_class": "malignant",
        }
    }
    path = write_config(tmp_path / "bc", config, frame)
    monkeypatch.setenv("MLOPS_CONFIG", str(path))
    settings = Settings()
    data, report = fe.load_project_data(settings.config)
    assert len(data.roles.numeric) == 30 and data.roles.categorical == []
    assert data.positive_class == "malignant"
    assert report["check"].tolist() == []
    pipeline, split, _ = _fitted_pipeline(settings)
    assert pipeline.score(split.X_test, split.y_test) > 0.9


def test_cli_prints_summary_and_validation_report(
    small_credit_config: Path, capsys: pytest.CaptureFixture
) -> None:
    assert fe.main(["--config", str(small_credit_config)]) == 0
    out = capsys.readouterr().out
    assert "Resumen de columnas" in out and "Reporte de validación" in out and "Income" in out


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"path": "missing.csv", "target": "y"}}))
    assert fe.main(["--config", str(path)]) == 2
    assert "dataset.path" in capsys.readouterr().out


def test_missing_values_in_pandas_string_columns_stay_missing() -> None:
    frame = pd.DataFrame({"Home": pd.array([" rent", pd.NA, "ignore"], dtype="string")})
    out = fe.coerce_types(fe.unify_missing(frame, ["ignore"]), numeric=[], categorical=["Home"])
    assert out["Home"].iloc[0] == "rent"
    assert out["Home"].iloc[1:].isna().all() and "<NA>" not in out["Home"].tolist()
