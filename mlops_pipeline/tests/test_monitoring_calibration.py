"""The no-drift calibration of the drift statistics (checked against exact and asymptotic
distributions) and the trend and jump tests built on it (checked on noise and on known shapes)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import calibration
import drift
from settings import MonitoringConfig


def profile_of(frame: pd.DataFrame, numeric: list[str], categorical: list[str], bins: int = 4) -> dict:
    return drift.build_reference_profile(frame, numeric, categorical, bins=bins)


@pytest.fixture(scope="module")
def uniform() -> tuple[dict, calibration.Calibration]:
    """A numeric column of 10,000 distinct values (4 equal quantile bins, 2% missing), calibrated."""
    values = np.r_[np.arange(9800.0), [np.nan] * 200]
    profile = profile_of(pd.DataFrame({"x": values}), ["x"], [])
    sizes = calibration.window_sizes(100, 3200)
    return profile, calibration.Calibration(calibration.build_calibration(profile, sizes, draws=4000))


def test_window_sizes_double_from_the_minimum_to_the_sample_size() -> None:
    assert calibration.window_sizes(100, 5000) == [100, 200, 400, 800, 1600, 3200, 5000]
    assert calibration.window_sizes(100, 100) == [100]
    assert calibration.window_sizes(30, 20) == [30]


def test_psi_noise_matches_its_chi_squared_limit(uniform) -> None:
    """Without empty bins, n_eff * PSI tends to a chi-squared with (bins - 1) degrees of freedom,
    n_eff = n N / (n + N): the calibrated median and 95th percentile agree within 10%."""
    profile, fitted = uniform
    entry = fitted.data["features"]["x"]["psi"]
    reference = 9800
    for index, size in enumerate(fitted.data["sizes"][2:], start=2):
        effective = size * reference / (size + reference)
        median, p95 = entry["quantiles"][index][0], entry["quantiles"][index][3]
        # 4 quantile bins plus the two always-empty outside bins: 3 degrees of freedom.
        assert median == pytest.approx(stats.chi2.median(3) / effective, rel=0.1)
        assert p95 == pytest.approx(stats.chi2.ppf(0.95, 3) / effective, rel=0.1)


def test_missing_share_noise_matches_the_exact_two_binomial_distribution() -> None:
    """|C/n - R/N| with R ~ Bin(N, p), C ~ Bin(n, p), p by Laplace's rule: quantiles by enumeration."""
    reference = pd.DataFrame({"x": np.r_[np.arange(180.0), [np.nan] * 20]})
    profile = profile_of(reference, ["x"], [])
    fitted = calibration.build_calibration(profile, [50], draws=20_000, seed=1)
    chance, total, size = (20 + 1) / (200 + 2), 200, 50
    r, c = np.meshgrid(np.arange(total + 1), np.arange(size + 1), indexing="ij")
    weights = stats.binom.pmf(r, total, chance) * stats.binom.pmf(c, size, chance)
    values = np.abs(c / size - r / total).ravel()
    order = np.argsort(values)
    cumulative = np.cumsum(weights.ravel()[order])
    exact = [values[order][np.searchsorted(cumulative, level)] for level in calibration.LEVELS]
    simulated = fitted["features"]["x"]["missing_share"]["quantiles"][0]
    assert simulated == pytest.approx(exact, abs=0.011)  # within about one value of 1/50 ... 1/200


def test_limits_fall_with_the_window_size_and_never_below_the_noise(uniform) -> None:
    _, fitted = uniform
    for method in ("psi", "jensen_shannon", "missing_share", "out_of_range_share"):
        yellows, reds = zip(
            *(fitted.limits("x", method, n) for n in (100, 150, 400, 3200, 10_000)), strict=True
        )
        assert list(yellows) == sorted(yellows, reverse=True) and list(reds) == sorted(reds, reverse=True)
        assert all(red >= yellow for yellow, red in zip(yellows, reds, strict=True))
        q99 = fitted.data["features"]["x"][method]["quantiles"][0][-1]
        assert yellows[0] >= q99  # a 1-in-10,000 limit lies beyond the 99th percentile


def test_tail_is_the_calibrated_p_value(uniform) -> None:
    _, fitted = uniform
    quantiles = fitted.data["features"]["x"]["psi"]["quantiles"][1]  # size 200
    for level, value in zip(calibration.LEVELS, quantiles, strict=True):
        assert fitted.tail("x", "psi", 200, value) == pytest.approx(1 - level, abs=1e-9)
    yellow, red = fitted.limits("x", "psi", 200)
    assert fitted.tail("x", "psi", 200, yellow) == pytest.approx(1e-4)
    assert fitted.tail("x", "psi", 200, red) == pytest.approx(1e-6)
    assert fitted.tail("x", "psi", 200, 0.0) == 1.0
    assert math.isnan(fitted.tail("x", "psi", 200, float("nan")))


@given(st.floats(0, 2), st.floats(0, 2), st.sampled_from([100, 250, 3000]))
@settings(max_examples=100, deadline=None)
def test_tail_decreases_with_the_value(uniform, a: float, b: float, size: int) -> None:
    _, fitted = uniform
    low, high = sorted((a, b))
    assert fitted.tail("x", "jensen_shannon", size, high) <= fitted.tail("x", "jensen_shannon", size, low)


def test_calibrated_limits_turn_a_small_noisy_window_green_and_keep_a_real_drift_red(credit_frame) -> None:
    features = credit_frame.drop(columns="Status")
    numeric = ["Seniority", "Age", "Income", "Amount"]
    profile = profile_of(features, numeric, ["Home", "Job"], bins=10)
    fitted = calibration.Calibration(
        calibration.build_calibration(profile, calibration.window_sizes(50, 800))
    )
    noisy = features.sample(60, random_state=3)
    plain = drift.drift_from_counts(profile, drift.current_counts(profile, noisy))
    judged = drift.drift_from_counts(profile, drift.current_counts(profile, noisy), calibration=fitted)
    assert "red" in set(plain["status"])  # PSI of 60 rows on 10 bins is noise
    assert set(judged["status"]) == {"green"}
    effects = judged[judged["method"].isin(drift.EFFECT_METHODS)]
    floors = effects["method"].map({m: limits[0] for m, limits in MonitoringConfig().thresholds.items()})
    assert (effects["p_value"] > 1e-4).all() and (effects["yellow_limit"] >= floors).all()
    assert (effects.loc[effects["method"] == "psi", "yellow_limit"] > 0.5).all()  # 60 rows: PSI is noisy
    shifted = noisy.assign(Age=noisy["Age"] + 25)
    judged = drift.drift_from_counts(profile, drift.current_counts(profile, shifted), calibration=fitted)
    assert drift.feature_status(judged).set_index("feature").loc["Age", "status"] == "red"


def test_a_calibration_is_saved_with_the_version_and_rebuilt_when_its_settings_change(tmp_path) -> None:
    profile = profile_of(pd.DataFrame({"x": np.arange(500.0)}), ["x"], [])
    (tmp_path / "v1").mkdir()
    first = calibration.load_or_build(tmp_path, "v1", profile, [100, 200], draws=300)
    path = calibration.calibration_path(tmp_path, "v1", 4)
    assert path.is_file() and calibration.load_or_build(tmp_path, "v1", profile, [100, 200], 300) == first
    assert calibration.load_or_build(tmp_path, "v1", profile, [100, 400], 300)["sizes"] == [100, 400]


# ----------------------------------------------------------------------------- trends and jumps
def history_of(z_values: list[float], method: str = "psi", feature: str = "x") -> pd.DataFrame:
    """A history whose calibrated p-values have the given normal scores."""
    return pd.DataFrame(
        {
            "window_start": pd.date_range("2026-01-01", periods=len(z_values), freq="D", tz="UTC"),
            "feature": feature,
            "method": method,
            "p_value": stats.norm.sf(np.asarray(z_values, dtype=float)),
        }
    )


def test_normal_scores_count_rises_only() -> None:
    assert calibration.normal_scores([0.5, 0.9, stats.norm.sf(2.0), 1e-300]).tolist() == pytest.approx(
        [0.0, 0.0, 2.0, calibration.Z_LIMIT]
    )


@pytest.mark.parametrize(
    ("z", "abrupt", "trend"),
    [
        ([0, 0.4, 0, 0.3, 6], [4], []),
        ([0, 0.2, 0, 0.1, 7, 7, 7, 7], [4], []),  # a step is a jump once, never a trend
        ([0, 1, 2, 3, 4], [], [4]),
        ([0, 2, 4, 6, 8, 8], [], [4, 5]),
        ([0, 0.5, 1, 0, 0.2, 0.3, 1.1], [], []),
        ([0, 0, 6], [], []),  # fewer than 3 previous windows: no jump yet
    ],
    ids=["jump", "step", "rise", "steep_rise", "noise", "too_short"],
)
def test_detect_changes_marks_jumps_and_trends(z, abrupt, trend) -> None:
    flagged = calibration.detect_changes(history_of(z), windows=5, p_value=0.002)
    assert np.flatnonzero(flagged["abrupt"]).tolist() == abrupt
    assert np.flatnonzero(flagged["trend"]).tolist() == trend


def test_tests_and_uncalibrated_rows_are_never_marked() -> None:
    rising = history_of([0, 1, 2, 3, 4, 9], method="ks")
    legacy = history_of([0, 1, 2, 3, 4, 9]).assign(p_value=np.nan)
    flagged = calibration.detect_changes(pd.concat([rising, legacy]), windows=5)
    assert not flagged["trend"].any() and not flagged["abrupt"].any()
    assert flagged["z"].isna().all()


def test_false_alarms_on_noise_stay_below_the_stated_rate() -> None:
    """60 series x 400 windows of uniform calibrated p-values (no drift): the share of windows with
    any trend or jump is at most the stated rate (0.002; Bonferroni makes it conservative)."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2026-01-01", periods=400, freq="D", tz="UTC")
    history = pd.DataFrame(
        {
            "window_start": np.repeat(days, 60),
            "feature": np.tile([f"f{i}" for i in range(60)], len(days)),
            "method": "psi",
            "p_value": rng.random(60 * len(days)),
        }
    )
    flagged = calibration.detect_changes(history, windows=5, p_value=0.002)
    per_window = flagged.groupby("window_start")[["trend", "abrupt"]].any().any(axis=1)
    assert per_window.mean() <= 0.002
    loose = calibration.detect_changes(history, windows=5, p_value=0.9)
    assert loose.groupby("window_start")[["trend", "abrupt"]].any().any(axis=1).mean() > 0.002
