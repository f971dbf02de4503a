"""Drift statistics and compute_drift: known answers, scipy equality, edge cases, properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

import alerts
import drift
import messages
import metrics
import model_monitoring
import registry

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]


def grid_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS grid counts of two numeric samples through the real profile/counts path."""
    profile = drift.build_reference_profile(pd.DataFrame({"x": reference}), ["x"], [])
    counts = drift.current_counts(profile, pd.DataFrame({"x": current}))
    ref, cur = drift._count_views(profile["features"]["x"], counts["x"])
    return ref["grid"], cur["grid"]


def bins_counts(profile: dict, counts: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    ref, cur = drift._count_views(profile["features"][name], counts[name])
    return ref["bins"], cur["bins"]


def statuses(results: pd.DataFrame) -> dict[str, str]:
    table = drift.feature_status(results)
    return dict(zip(table["feature"], table["status"], strict=True))


@pytest.fixture(scope="module")
def halves(credit_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves of the credit features: the same population."""
    features = credit_frame.drop(columns="Status")
    reference = features.sample(frac=0.5, random_state=1)
    return reference.reset_index(drop=True), features.drop(reference.index).reset_index(drop=True)


# ----------------------------------------------------------------------------- KS
def test_ks_hand_computed() -> None:
    d, _ = drift.ks_from_counts(*grid_counts(np.array([1.0, 2, 3]), np.array([2.0, 3, 4])))
    assert d == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(6))
def test_ks_from_counts_equals_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 15, rng.integers(1, 400)).astype(float)
    current = rng.integers(-3, 20, rng.integers(1, 600)).astype(float) * rng.choice([1.0, 0.5])
    d, p = drift.ks_from_counts(*grid_counts(reference, current))
    assert d == stats.ks_2samp(reference, current).statistic
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert d == pytest.approx(expected.statistic, rel=1e-15)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_continuous_and_shifted_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=3000), rng.normal(0.3, 1.2, size=5000)
    d, p = drift.ks_from_counts(*grid_counts(reference, current))
    assert d == stats.ks_2samp(reference, current).statistic
    assert p == pytest.approx(stats.ks_2samp(reference, current, method="asymp").pvalue)
    assert p < 1e-10


# ----------------------------------------------------------------------------- PSI, JS, chi-squared
def test_psi_hand_computed() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert drift.psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(expected, abs=1e-12)


def test_psi_floors_empty_bins_at_epsilon() -> None:
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - drift.EPSILON) * math.log(0.5 / drift.EPSILON)
    assert drift.EPSILON == 1e-4
    assert drift.psi(np.array([100, 0]), np.array([50, 50])) == pytest.approx(expected, abs=1e-12)


def test_psi_floors_only_empty_bins_not_small_shares() -> None:
    reference, current = np.array([1, 99_999]), np.array([1, 1])
    shares = np.array([1e-5, 1 - 1e-5]), np.array([0.5, 0.5])
    expected = np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0]))
    assert drift.psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_statistics_work_row_by_row_on_2d_counts() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.integers(0, 30, (50, 6)), rng.integers(0, 30, (50, 6))
    current[0] = 0  # an empty window: NaN, as for one pair
    for function in (drift.psi, drift.jensen_shannon, drift.share_change):
        rows = [function(r, c) for r, c in zip(reference, current, strict=True)]
        np.testing.assert_allclose(function(reference, current), rows, rtol=1e-12, equal_nan=True)
    assert np.isnan(drift.psi(reference, current)[0])
    expected = [jensenshannon(r, c, base=2) for r, c in zip(reference[1:], current[1:], strict=True)]
    np.testing.assert_allclose(drift.jensen_shannon(reference, current)[1:], expected, rtol=1e-12)


def test_jensen_shannon_is_the_base_2_distance() -> None:
    m = np.array([0.75, 0.25])
    divergence = 0.5 * (np.sum([0.5, 0.5] * np.log2(np.array([0.5, 0.5]) / m)) + np.log2(1 / 0.75))
    assert drift.jensen_shannon(np.array([5, 5]), np.array([10, 0])) == pytest.approx(
        math.sqrt(divergence), abs=1e-12
    )
    assert drift.jensen_shannon(np.array([3, 0]), np.array([0, 7])) == pytest.approx(1.0)
    assert drift.jensen_shannon(np.array([3, 4]), np.array([6, 8])) == pytest.approx(0.0, abs=1e-7)


def test_chi_squared_equals_scipy_when_no_category_is_sparse() -> None:
    reference, current = np.array([100, 200, 300, 0]), np.array([120, 150, 200, 60])
    result = stats.chi2_contingency(np.vstack([reference, current]))
    assert drift.chi_squared(reference, current) == (
        pytest.approx(result.statistic),
        pytest.approx(result.pvalue),
    )
    # A bin empty in both samples is left out instead of dividing by zero.
    with_empty = drift.chi_squared(np.array([100, 200, 300, 0, 0]), np.array([120, 150, 200, 60, 0]))
    assert with_empty == (pytest.approx(result.statistic), pytest.approx(result.pvalue))


def test_pool_sparse_adds_rare_columns_until_the_pool_is_not_sparse() -> None:
    # Expected counts in the smaller row (66 of 166): 39.8, 23.9, 1.6, 0.8 -> the last two are
    # sparse; together (2.4 expected) still sparse, so the next rarest column joins them.
    table = np.array([[70, 28, 2, 0], [30, 32, 2, 2]])
    assert drift.pool_sparse(table).tolist() == [[70, 30], [30, 36]]
    assert drift.pool_sparse(np.array([[50, 50], [40, 60]])).tolist() == [[50, 50], [40, 60]]
    pooled = stats.chi2_contingency(np.array([[70, 30], [30, 36]]))
    assert drift.chi_squared(table[0], table[1]) == (
        pytest.approx(pooled.statistic),
        pytest.approx(pooled.pvalue),
    )


def test_one_unseen_value_among_hundreds_is_a_share_not_a_test_result(credit_frame) -> None:
    reference = credit_frame.iloc[:3000]
    current = credit_frame.iloc[3000:3300].reset_index(drop=True)
    current.loc[0, "Job"] = "astronaut"
    results = drift.compute_drift(reference, current, [], ["Job"]).set_index("method")
    assert results.loc["chi_squared", "p_value"] > 0.05
    assert results.loc["chi_squared", "status"] == "green"
    assert results.loc["unseen_share", "statistic"] == pytest.approx(1 / 300)
    assert results.loc["unseen_share", "status"] == "green"


def test_infinities_are_out_of_range_not_missing() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.inf, np.nan]})
    profile = drift.build_reference_profile(reference, ["x"], [])
    entry = profile["features"]["x"]
    assert (entry["min"], entry["max"], entry["missing"]) == (1.0, 3.0, 2)  # the reference's range is finite
    current = pd.DataFrame({"x": [np.inf, -np.inf, 2.0, np.nan]})
    results = drift.drift_from_counts(profile, drift.current_counts(profile, current)).set_index("method")
    assert results.loc["out_of_range_share", "statistic"] == pytest.approx(2 / 3)
    assert results.loc["missing_share", "detail"]["current"] == pytest.approx(1 / 4)


def test_booleans_and_other_spellings_match_the_reference_categories() -> None:
    reference = pd.DataFrame({"flag": [True, False] * 50, "code": [1, 2] * 50})
    profile = drift.build_reference_profile(reference, [], ["flag", "code"])
    assert profile["features"]["flag"]["categories"] == ["False", "True"]
    current = pd.DataFrame(
        {
            "flag": pd.Series(
                [True, 1, "true", " TRUE ", 1.0, False, 0, "false", "0", "maybe"], dtype=object
            ),
            "code": pd.Series([1, 1.0, "1", "1.0", " 2", 2, 2.0, "2", "02", 3], dtype=object),
        }
    )
    counts = drift.current_counts(profile, current)
    assert counts["flag"]["categories"] == [4, 5, 1] and counts["flag"]["unseen_values"] == {"maybe": 1}
    assert counts["code"]["categories"] == [4, 5, 1] and counts["code"]["unseen_values"] == {"3": 1}
    assert drift.spelling_key(True) == drift.spelling_key("1.0") == "1"


def test_chi_squared_through_profile_equals_crosstab(credit_frame: pd.DataFrame) -> None:
    reference = credit_frame.iloc[:2000]
    current = credit_frame.iloc[2000:].assign(Job=lambda f: f["Job"].where(f.index % 50 != 0, "contractor"))
    profile = drift.build_reference_profile(reference, [], ["Job"])
    counts = drift.current_counts(profile, current)
    table = pd.crosstab(
        np.r_[np.zeros(reference["Job"].notna().sum()), np.ones(current["Job"].notna().sum())],
        np.r_[reference["Job"].dropna(), current["Job"].dropna()],
    )
    expected = stats.chi2_contingency(table.to_numpy())
    statistic, p = drift.chi_squared(*bins_counts(profile, counts, "Job"))
    assert (statistic, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert counts["Job"]["unseen_values"] == {"contractor": int((current["Job"] == "contractor").sum())}


def test_numeric_bins_are_reference_quantiles_with_outside_buckets() -> None:
    reference = pd.DataFrame({"x": np.arange(1.0, 101.0)})
    profile = drift.build_reference_profile(reference, ["x"], [], bins=4)
    entry = profile["features"]["x"]
    assert entry["edges"] == [25.0, 50.0, 75.0]
    counts = drift.current_counts(
        profile, pd.DataFrame({"x": [0.0, 1, 25, 26, 50, 99, 100, 101, 250, np.nan]})
    )
    ref_bins, cur_bins = bins_counts(profile, counts, "x")
    assert ref_bins.tolist() == [0, 25, 25, 25, 25, 0]
    assert cur_bins.tolist() == [1, 2, 2, 0, 2, 2]
    assert counts["x"]["missing"] == 1


def test_adjust_p_values() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan])
    assert drift.adjust_p_values(p, "none")[:3].tolist() == [0.01, 0.04, 0.03]
    assert drift.adjust_p_values(p, "bonferroni")[:3] == pytest.approx([0.03, 0.12, 0.09])
    assert drift.adjust_p_values(p, "fdr_bh")[:3] == pytest.approx([0.03, 0.04, 0.04])
    assert np.isnan(drift.adjust_p_values(p, "fdr_bh")[3])
    with pytest.raises(ValueError, match="correction"):
        drift.adjust_p_values(p, "holm")


# ----------------------------------------------------------------------------- properties
counts_arrays = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@given(counts_arrays, counts_arrays)
@settings(max_examples=200, deadline=None)
def test_psi_is_non_negative(reference: list[int], current: list[int]) -> None:
    size = min(len(reference), len(current))
    value = drift.psi(np.array(reference[:size]), np.array(current[:size]))
    assert math.isnan(value) if min(sum(reference[:size]), sum(current[:size])) == 0 else value >= 0


@given(counts_arrays, counts_arrays)
@settings(max_examples=200, deadline=None)
def test_jensen_shannon_bounded_and_symmetric(reference: list[int], current: list[int]) -> None:
    size = min(len(reference), len(current))
    a, b = np.array(reference[:size]), np.array(current[:size])
    if min(a.sum(), b.sum()) == 0:
        assert math.isnan(drift.jensen_shannon(a, b))
        return
    value = drift.jensen_shannon(a, b)
    assert -1e-12 <= value <= 1 + 1e-12
    assert value == pytest.approx(drift.jensen_shannon(b, a), abs=1e-12)


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=60),
    st.lists(st.one_of(st.integers(-8, 8), st.just(None)), min_size=1, max_size=60),
)
@settings(max_examples=150, deadline=None)
def test_ks_counts_equal_scipy_and_merge_exactly(reference: list[int], current: list[int]) -> None:
    profile = drift.build_reference_profile(pd.DataFrame({"x": reference}, dtype=float), ["x"], [])
    frame = pd.DataFrame({"x": current}, dtype=float)
    whole = drift.current_counts(profile, frame)
    half = len(frame) // 2
    assert (
        drift.merge_counts(
            [
                drift.current_counts(profile, frame.iloc[:half]),
                drift.current_counts(profile, frame.iloc[half:]),
            ]
        )
        == whole
    )
    present = frame["x"].dropna().to_numpy()
    if len(present):
        ref, cur = drift._count_views(profile["features"]["x"], whole["x"])
        assert (
            drift.ks_from_counts(ref["grid"], cur["grid"])[0] == stats.ks_2samp(reference, present).statistic
        )


# ----------------------------------------------------------------------------- compute_drift
def test_identical_samples_are_green_everywhere(credit_frame: pd.DataFrame) -> None:
    results = drift.compute_drift(credit_frame, credit_frame, NUMERIC, CATEGORICAL)
    assert set(results.columns) >= {"feature", "method", "statistic", "p_value", "drifted", "status"}
    assert set(results["status"]) == {"green"} and not results["drifted"].any()
    assert set(results["feature"]) == set(NUMERIC + CATEGORICAL)
    assert results.groupby("feature")["method"].count().to_dict() == {f: 5 for f in NUMERIC + CATEGORICAL}
    assert results.loc[results["method"].isin(["psi", "jensen_shannon"]), "statistic"].abs().max() < 1e-7


def test_same_population_has_no_red(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    results = drift.compute_drift(*halves, NUMERIC, CATEGORICAL)
    assert "red" not in set(results["status"])


@pytest.mark.parametrize(
    ("feature", "change", "method"),
    [
        ("Income", lambda f: f.assign(Income=f["Income"] + f["Income"].std()), "psi"),
        ("Job", lambda f: f.assign(Job=f["Job"].where(f.index % 5 != 0, "contractor")), "unseen_share"),
        ("Assets", lambda f: f.assign(Assets=f["Assets"].where(f.index % 4 != 0)), "missing_share"),
        ("Home", lambda f: f.assign(Home=f["Home"].where(f.index % 2 == 0, "parents")), "chi_squared"),
    ],
    ids=["shifted", "new_category", "missing_jump", "category_mix"],
)
def test_one_drifted_feature_is_red_alone(halves, feature, change, method) -> None:
    reference, current = halves
    results = drift.compute_drift(reference, change(current), NUMERIC, CATEGORICAL)
    status = statuses(results)
    assert status.pop(feature) == "red"
    assert "red" not in status.values()
    assert results.loc[(results["feature"] == feature) & (results["method"] == method), "drifted"].item()


def test_missing_jump_is_seen_although_present_values_are_alike(halves) -> None:
    reference, current = halves
    results = drift.compute_drift(
        reference, current.assign(Age=current["Age"].where(current.index % 3 != 0)), NUMERIC, CATEGORICAL
    )
    age = results[results["feature"] == "Age"].set_index("method")
    assert age.loc["missing_share", "status"] == "red"
    assert age.loc["psi", "status"] == "green"
    detail = age.loc["missing_share", "detail"]
    assert detail == {"code": "missing_change", "reference": 0.0, "current": pytest.approx(1 / 3, abs=0.01)}
    assert messages.detail_text(detail).startswith("faltantes 0.0% -> 33.")


def test_empty_window_gives_no_data_with_reason(halves) -> None:
    reference, current = halves
    results = drift.compute_drift(reference, current.iloc[0:0], NUMERIC, CATEGORICAL)
    assert set(results["status"]) == {"no_data"}
    assert {detail["code"] for detail in results["detail"]} == {"no_current_rows"}
    assert results["statistic"].isna().all() and not results["drifted"].any()
    assert drift.worst_status(results["status"]) == "no_data"


def test_constant_empty_and_all_missing_columns_do_not_crash() -> None:
    reference = pd.DataFrame(
        {
            "constant": [5.0] * 50,
            "all_missing": [np.nan] * 50,
            "cat_constant": ["a"] * 50,
            "cat_missing": [None] * 50,
            "normal": np.arange(50.0),
        }
    )
    current = pd.DataFrame(
        {
            "constant": [5.0] * 30,
            "all_missing": [np.nan] * 30,
            "cat_constant": ["a"] * 30,
            "cat_missing": [None] * 30,
            "normal": [np.nan] * 30,
        }
    )
    results = drift.compute_drift(
        reference, current, ["constant", "all_missing", "normal"], ["cat_constant", "cat_missing"]
    )
    by = results.set_index(["feature", "method"])
    assert set(by.loc["constant", "status"]) == {"green"}
    assert set(by.loc["cat_constant", "status"]) == {"green"}
    assert by.loc[("all_missing", "psi"), "detail"] == {"code": "empty_in_reference"}
    assert by.loc[("all_missing", "missing_share"), "status"] == "green"
    assert by.loc[("normal", "ks"), "status"] == "no_data"
    assert by.loc[("normal", "ks"), "detail"] == {"code": "empty_in_window"}
    assert by.loc[("normal", "missing_share"), "status"] == "red"
    shifted = drift.compute_drift(reference, current.assign(constant=6.0), ["constant"], ["cat_constant"])
    assert statuses(shifted)["constant"] == "red"


def test_column_absent_from_current_counts_as_missing(halves) -> None:
    reference, current = halves
    results = drift.compute_drift(reference, current.drop(columns="Age"), NUMERIC, CATEGORICAL)
    assert statuses(results)["Age"] == "red"
    assert (
        results.loc[
            (results["feature"] == "Age") & (results["method"] == "missing_share"), "statistic"
        ].item()
        == 1.0
    )


def test_thresholds_and_correction_are_configurable(halves) -> None:
    reference, current = halves
    shifted = current.assign(Income=current["Income"] * 1.1)
    strict = drift.compute_drift(reference, shifted, NUMERIC, CATEGORICAL, thresholds={"psi": (0.001, 0.002)})
    assert strict.loc[(strict["feature"] == "Income") & (strict["method"] == "psi"), "status"].item() == "red"
    raw = drift.compute_drift(reference, shifted, NUMERIC, CATEGORICAL, correction="none")
    bonferroni = drift.compute_drift(reference, shifted, NUMERIC, CATEGORICAL, correction="bonferroni")
    tests = raw["method"].isin(["ks", "chi_squared"])
    assert (raw.loc[tests, "p_value"] == raw.loc[tests, "p_value_raw"]).all()
    assert bonferroni.loc[tests, "p_value"].to_numpy() == pytest.approx(
        np.minimum(raw.loc[tests, "p_value"] * tests.sum(), 1)
    )


def test_profile_is_json_and_gives_the_same_results(halves) -> None:
    reference, current = halves
    profile = drift.build_reference_profile(reference, NUMERIC, CATEGORICAL)
    restored = json.loads(json.dumps(profile))
    direct = drift.drift_from_counts(profile, drift.current_counts(profile, current))
    via_json = drift.drift_from_counts(restored, drift.current_counts(restored, current))
    pd.testing.assert_frame_equal(direct, via_json)
    pd.testing.assert_frame_equal(direct, drift.compute_drift(reference, current, NUMERIC, CATEGORICAL))
    income = profile["features"]["Income"]
    assert income["missing"] == int(reference["Income"].isna().sum())
    assert sum(income["counts"]) + income["missing"] == len(reference)


# ----------------------------------------------------------------------------- windows
def test_windows_of_a_run_and_of_a_backfill_share_one_grid() -> None:
    day = model_monitoring.monitoring_windows(
        "1D", None, None, end=pd.Timestamp("2026-03-02T10:00", tz="UTC")
    )
    assert day == [(pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-03", tz="UTC"))]
    first = pd.Timestamp("2026-03-01T08:00", tz="UTC")
    weekly = model_monitoring.monitoring_windows("7D", first, None, end=pd.Timestamp("2026-03-20T10:00"))
    assert weekly == [
        (pd.Timestamp("2026-03-08", tz="UTC"), pd.Timestamp("2026-03-15", tz="UTC")),
        (pd.Timestamp("2026-03-15", tz="UTC"), pd.Timestamp("2026-03-22", tz="UTC")),
    ]
    backfill = model_monitoring.monitoring_windows(
        "7D", first, pd.Timestamp("2026-03-20T10:00", tz="UTC"), backfill=True
    )
    assert [w[0].day for w in backfill] == [1, 8, 15] and backfill[-2:] == weekly
    days = model_monitoring.monitoring_windows(
        "1D",
        pd.Timestamp("2026-03-01T10:00", tz="UTC"),
        pd.Timestamp("2026-03-03T00:00", tz="UTC"),
        backfill=True,
    )
    assert [w[0].day for w in days] == [1, 2, 3]
    quarter_days = model_monitoring.monitoring_windows(
        "6h", days[0][0], days[0][0] + pd.Timedelta("23h"), backfill=True
    )
    assert len(quarter_days) == 4
    assert model_monitoring.monitoring_windows("1D", None, None, backfill=True) == []
    with pytest.raises(ValueError, match="intervalo de pandas"):
        model_monitoring.monitoring_windows("every tuesday", None, None)


# ----------------------------------------------------------------------------- performance, alerts
def test_performance_metrics_binary_and_regression() -> None:
    outcomes = pd.DataFrame(
        {
            "prediction": ["bad", "good", "good", "bad"],
            "score": [0.9, 0.2, 0.3, 0.4],
            "actual": ["bad", "good", "bad", "good"],
        }
    )
    binary = metrics.performance_metrics(
        outcomes,
        registry.ModelMetadata(
            features=[], **{"task": "classification", "classes": ["bad", "good"], "positive_class": "bad"}
        ),
    )
    assert binary["accuracy"] == 0.5 and binary["recall"] == 0.5 and binary["precision"] == 0.5
    assert binary["roc_auc"] == pytest.approx(0.75)
    numbers = pd.DataFrame(
        {"prediction": ["1.0", "2.0", "4.0"], "score": [1.0, 2.0, 4.0], "actual": ["1", "3", "4"]}
    )
    regression = metrics.performance_metrics(
        numbers, registry.ModelMetadata(features=[], **{"task": "regression", "classes": []})
    )
    assert regression["mae"] == pytest.approx(1 / 3) and regression["rmse"] == pytest.approx(math.sqrt(1 / 3))


def test_performance_drops_use_the_right_direction() -> None:
    reference = {"roc_auc": 0.85, "rmse": 10.0}
    assert metrics.performance_drops({"roc_auc": 0.78, "rmse": 10.4}, reference, 0.05) == {
        "roc_auc": pytest.approx(0.07)
    }
    assert metrics.performance_drops({"roc_auc": 0.84, "rmse": 11.0}, reference, 0.05) == {
        "rmse": pytest.approx(1.0)
    }
    assert metrics.performance_drops({"roc_auc": 0.7}, reference, 0.05, ["rmse"]) == {}
    metadata = registry.ModelMetadata(task="classification", features=[], primary_metric="roc_auc")
    assert metrics.primary_metric(metadata, {"accuracy": 1, "roc_auc": 1}) == "roc_auc"
    regression = registry.ModelMetadata(task="regression", features=[])
    assert metrics.primary_metric(regression, {"rmse": 1.0, "mae": 1.0}) == "rmse"


def test_alerts_and_recommendations(halves) -> None:
    reference, current = halves
    drifted = current.assign(Age=current["Age"].where(current.index % 3 != 0), Income=current["Income"] * 3)
    results = drift.compute_drift(reference, drifted, NUMERIC, CATEGORICAL)
    raised, recommendations = alerts.alerts_and_recommendations(
        results, pd.DataFrame(), {}, model_monitoring.MonitoringConfig()
    )
    assert {a["feature"] for a in raised if a["level"] == "red"} == {"Age", "Income"}
    assert {a["code"] for a in raised} == {"feature_drift"}
    age = next(a for a in raised if a["feature"] == "Age")
    missing = {item["method"]: item for item in age["statistics"]}["missing_share"]
    assert (
        missing["value"] == pytest.approx(1 / 3, abs=0.01) and missing["detail"]["code"] == "missing_change"
    )
    assert all(messages.alert_text(a).startswith("Deriva en ") for a in raised)
    codes = {(r["action"], r["code"], r["feature"]) for r in recommendations}
    assert {
        ("retrain", "retrain", None),
        ("check_pipeline", "missing_changed", "Age"),
        ("review_feature", "distribution_changed", "Income"),
    } <= codes
    assert recommendations[0]["reasons"] == ["red_features"] and recommendations[0]["red_features"] == 2
    stored = json.dumps([raised, recommendations], default=float)
    assert "Deriva" not in stored and "Revise" not in stored, "the history holds codes, not sentences"
    quiet = drift.compute_drift(reference, current, NUMERIC, CATEGORICAL)
    realized = {"primary": "roc_auc", "drop": 0.1, "value": 0.62, "low": 0.55, "high": 0.69}
    realized |= {"confidence": 0.95, "expected": 0.84, "expected_from": "cv"}
    raised, recommendations = alerts.alerts_and_recommendations(
        quiet, pd.DataFrame(), realized, model_monitoring.MonitoringConfig()
    )
    assert [r["action"] for r in recommendations] == ["retrain"]
    assert messages.recommendation_text(recommendations[0]) == (
        "Reentrene el modelo con datos recientes: cayó el desempeño con los resultados reales. "
        "Comando: python mlops_pipeline/src/model_training_evaluation.py --retrain"
    )
    [drop] = [a for a in raised if a["code"] == "performance_drop"]
    numbers = {k: realized[k] for k in ("value", "low", "high", "confidence", "expected", "expected_from")}
    assert drop == {"level": "red", "code": "performance_drop", "feature": None, "metric": "roc_auc"} | {
        "worsening": 0.1,
        **numbers,
    }
    assert drop["level"] == "red"
    assert messages.alert_text(drop) == (
        "El desempeño cayó: roc_auc = 0.620 (intervalo de 95%: 0.550 a 0.690), peor que lo esperado "
        "(0.840, validación cruzada) incluso en el mejor caso del intervalo."
    )
    no_drop = alerts.alerts_and_recommendations(
        quiet, pd.DataFrame(), realized | {"drop": None}, model_monitoring.MonitoringConfig()
    )
    assert no_drop == ([], [])


def test_messages_render_codes_and_show_legacy_text_as_it_is() -> None:
    realized = {"primary": "roc_auc", "value": 0.8, "low": 0.7, "high": 0.9, "expected": 0.84, "n": 40}
    assert messages.realized_text(realized | {"confidence": 0.95}) == (
        "roc_auc 0.800 (intervalo de 95%: 0.700 a 0.900; esperado 0.840) "
        "con 40 resultados llegados en la ventana"
    )
    assert messages.detail_text({"code": "missing_change", "reference": 0.0, "current": 0.25}) == (
        "faltantes 0.0% -> 25.0%"
    )
    assert messages.detail_text('{"code": "unseen_values", "values": {"castle": 3, "boat": 1}}') == (
        "categorías nuevas: castle (3), boat (1)"
    )
    assert messages.detail_text('{"code": "empty_in_window"}') == "la columna está vacía en la ventana"
    assert (
        messages.detail_text("sin filas en la ventana") == "sin filas en la ventana"
    )  # a row of old history
    assert messages.detail_text(None) == messages.detail_text(float("nan")) == ""
    assert messages.detail_text({"code": "new_in_a_later_version"}) == "new_in_a_later_version"
    trend = {"level": "yellow", "code": "trend", "feature": drift.SCORE_COLUMN, "method": "psi"}
    assert messages.alert_text(trend) == (
        "Tendencia creciente de PSI en salida del modelo (score) frente a las ventanas anteriores."
    )
    feature = {
        "level": "red",
        "code": "feature_drift",
        "feature": "Job",
        "statistics": [
            {"method": "psi", "value": 0.31, "detail": None},
            {"method": "unseen_share", "value": 0.2, "detail": {"code": "unseen_values", "values": {"x": 4}}},
        ],
    }
    assert messages.alert_text(feature) == (
        "Deriva en Job: PSI = 0.31; % de categorías nuevas = 0.2 (categorías nuevas: x (4))"
    )
    legacy_drop = {"level": "red", "code": "performance_drop", "metric": "roc_auc", "worsening": 0.1}
    assert messages.alert_text(legacy_drop) == (
        "El desempeño empeoró: roc_auc está 0.100 peor que en la evaluación de prueba."
    )
    short = {"level": "info", "code": "insufficient_data", "version": "v1", "rows": 15, "min_rows": 100}
    assert messages.alert_text(short | {"start": "2026-03-01", "end": "2026-03-02"}) == (
        "Datos insuficientes: 15 predicciones del modelo v1 entre 2026-03-01 y 2026-03-02; "
        "se necesitan al menos 100 para juzgar la deriva."
    )
    assert messages.status_text("insufficient_data") == "Datos insuficientes"
    old = {"level": "red", "feature": "Age", "message": "Deriva en Age: PSI = 0.4"}
    assert messages.alert_text(old) == "Deriva en Age: PSI = 0.4"
    assert messages.recommendation_text({"action": "retrain", "message": "Reentrene."}) == "Reentrene."
    review = {"action": "review_feature", "code": "distribution_changed", "feature": "Income"}
    assert messages.recommendation_text(review) == (
        "Revise la variable Income: su distribución cambió respecto al entrenamiento."
    )
    assert messages.status_text("red") == "Rojo" and messages.status_text("purple") == "purple"


@pytest.mark.parametrize(
    ("features", "drops", "verdict"),
    [
        (["green", "yellow"], {}, "yellow"),
        (["green", "green"], {"roc_auc": 0.12}, "red"),
        (["no_data"], {}, "no_data"),
    ],
)
def test_overall_status_is_the_worst_feature_or_red_on_a_performance_drop(features, drops, verdict) -> None:
    assert alerts.overall_status(features, drops) == verdict
