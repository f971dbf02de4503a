"""Drift monitoring of the served model: statistics, reference profile, monitoring job and CLI.

Design (profile + counts, so partial counts merge exactly, e.g. per Dask partition):

1. ``build_reference_profile(reference, categorical, numerical)`` summarises the raw training
   features once, at training time: per numeric column the sorted distinct values and their counts
   (for an exact KS from counts), quantile bin edges, min/max and missing count; per categorical
   column the category counts and missing count. It is JSON and is saved with the model version
   as ``<version>/reference_profile.json`` (``load_or_build_profile``).
2. ``current_counts(profile, current)`` counts a window on the reference's bins: for numeric
   columns, how many values fall on or between the sorted reference values (which gives the KS
   statistic, the quantile-bin histogram and the out-of-range share); for categorical ones, one
   count per reference category plus an "unseen" bucket; missing counts for both. Counts add up.
3. ``drift_from_counts(profile, counts, ...)`` turns counts into one tidy row per feature and
   statistic. ``compute_drift`` chains the three for two DataFrames.

The statistics are small pure functions over count arrays, listed in one table, ``STATISTICS``:

- ``ks``: two-sample Kolmogorov-Smirnov statistic D (numeric), equal to
  ``scipy.stats.ks_2samp(...).statistic``; its p-value is Smirnov's asymptotic formula that
  ``ks_2samp(method="asymp")`` uses, ``kstwo.sf(D, round(n*m/(n+m)))``.
- ``chi_squared``: homogeneity test on the 2 x categories reference/current contingency table
  (categorical), unseen categories as their own column, via ``scipy.stats.chi2_contingency``.
- ``psi``: population stability index, sum((c - r) * ln(c / r)) over bin shares, empty bins
  floored at ``EPSILON`` = 1e-4 so the log stays finite (each term is >= 0, so PSI >= 0).
- ``jensen_shannon``: the Jensen-Shannon *distance* (square root of the divergence) with log
  base 2, so it lies in [0, 1], via ``scipy.spatial.distance.jensenshannon``.
- ``missing_share``, ``out_of_range_share`` (numeric), ``unseen_share`` (categorical): absolute
  change of the share of missing values, of values outside the reference [min, max], of
  categories the reference never had.

Severity comes from effect sizes (PSI, Jensen-Shannon and the three shares) against the
``monitoring.thresholds`` of config.yaml: yellow at the first, red at the second. The tests (KS,
chi-squared) report p-values corrected for multiple testing (``monitoring.correction``); a
significant test alone makes a row yellow, never red, and because every window is sampled to
``monitoring.sample_size`` rows, p-values of different windows are comparable.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

import ft_engineering
import registry
import store
from settings import ConfigError, MonitoringConfig, Settings, get_settings

logger = logging.getLogger(__name__)

EPSILON = 1e-4
"""Floor for bin shares in PSI: an empty bin counts as a share of 0.0001 (as Evidently does)."""

PROFILE_FILE = "reference_profile.json"
PROFILE_FORMAT = 1
SCORE_COLUMN = "__score__"
PREDICTION_COLUMN = "__prediction__"
STATUSES = ("no_data", "green", "yellow", "red")
"""Statuses from least to most severe; ``no_data`` means the statistic could not be computed."""


# ----------------------------------------------------------------------------- statistics
def ks_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value from counts on the reference's value grid.

    Args:
        reference_counts, current_counts: arrays of length 2K + 1 for K sorted distinct reference
            values v_0 < ... < v_{K-1}: entry 2i counts values strictly between v_{i-1} and v_i
            (entry 0: below v_0, entry 2K: above v_{K-1}); entry 2i + 1 counts values equal to v_i.

    Returns:
        (D, p): D equals ``scipy.stats.ks_2samp(reference, current).statistic`` exactly, ties
        included (the empirical CDFs are steps, so their largest gap is reached at a reference
        value or just below one; D is the exact multiple of 1/lcm(n, m), as in ks_2samp's exact
        mode, within one rounding of its asymptotic mode used above 10,000 rows); p is ``kstwo.sf(D, round(n*m/(n+m)))``, the formula of
        ``ks_2samp(method="asymp")``.
    """
    n, m = int(reference_counts.sum()), int(current_counts.sum())
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    # CDFs just below each reference value (even entries) and at it (odd entries).
    diff = np.cumsum(reference_counts)[:-1] / n - np.cumsum(current_counts)[:-1] / m
    d = float(max(diff.max(), np.clip(-diff.min(), 0, 1)))
    # D is a multiple of 1/lcm(n, m): snap it there, as ks_2samp's exact mode does.
    lcm = n // math.gcd(n, m) * m
    d = round(d * lcm) / lcm
    p = float(np.clip(stats.kstwo.sf(d, max(np.round(n * m / (n + m)), 1)), 0, 1))
    return d, p


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index over the same bins; shares below ``epsilon`` count as ``epsilon``."""
    n, m = reference_counts.sum(), current_counts.sum()
    if n == 0 or m == 0:
        return float("nan")
    ref = np.maximum(reference_counts / n, epsilon)
    cur = np.maximum(current_counts / m, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (sqrt of the divergence, log base 2, in [0, 1]) over the same bins."""
    if reference_counts.sum() == 0 or current_counts.sum() == 0:
        return float("nan")
    return float(jensenshannon(reference_counts, current_counts, base=2))


def chi_squared(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared homogeneity test on the 2 x bins contingency table (scipy's default Yates
    correction applies when the table is 2 x 2); bins empty in both samples are left out."""
    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.sum(axis=1).min() == 0:
        return float("nan"), float("nan")
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def share_change(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Absolute change of the share held by the last bucket (missing, out of range, unseen)."""
    n, m = reference_counts.sum(), current_counts.sum()
    if n == 0 or m == 0:
        return float("nan")
    return float(abs(current_counts[-1] / m - reference_counts[-1] / n))


@dataclass(frozen=True)
class Statistic:
    """One drift statistic: its function, the column kinds and the counts it reads, how it decides.

    ``counts`` names the per-feature count arrays: ``grid`` (KS value grid), ``bins`` (quantile
    bins or categories, with the out-of-range / unseen buckets), ``missing`` ([present, missing]),
    ``outside`` ([inside, outside the reference]). ``decides`` is ``effect`` (higher is worse,
    compared with ``monitoring.thresholds[name]``) or ``p_value`` (a test: significant after
    correction means drifted, yellow at most).
    """

    name: str
    function: Callable[..., Any]
    kinds: tuple[str, ...]
    counts: Literal["grid", "bins", "missing", "outside"]
    decides: Literal["effect", "p_value"]


BOTH = ("numeric", "categorical")
STATISTICS: tuple[Statistic, ...] = (
    Statistic("ks", ks_from_counts, ("numeric",), "grid", "p_value"),
    Statistic("chi_squared", chi_squared, ("categorical",), "bins", "p_value"),
    Statistic("psi", psi, BOTH, "bins", "effect"),
    Statistic("jensen_shannon", jensen_shannon, BOTH, "bins", "effect"),
    Statistic("missing_share", share_change, BOTH, "missing", "effect"),
    Statistic("out_of_range_share", share_change, ("numeric",), "outside", "effect"),
    Statistic("unseen_share", share_change, ("categorical",), "outside", "effect"),
)
"""Every statistic computed per feature; default thresholds live in ``settings.MonitoringConfig``."""


def adjust_p_values(p_values: np.ndarray, correction: str) -> np.ndarray:
    """Correct p-values for multiple testing: ``none``, ``bonferroni`` or ``fdr_bh`` (Benjamini-Hochberg)."""
    p_values = np.asarray(p_values, dtype=float)
    valid = ~np.isnan(p_values)
    out = p_values.copy()
    if not valid.any() or correction == "none":
        return out
    if correction == "bonferroni":
        out[valid] = np.minimum(p_values[valid] * valid.sum(), 1.0)
    elif correction == "fdr_bh":
        out[valid] = stats.false_discovery_control(p_values[valid], method="bh")
    else:
        raise ValueError(f"unknown multiple-testing correction '{correction}'")
    return out


# ----------------------------------------------------------------------------- reference profile
def _numeric_values(values: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing, text and infinities."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    array[~np.isfinite(array)] = np.nan
    return array


def build_reference_profile(
    reference: pd.DataFrame, categorical: list[str], numerical: list[str], bins: int = 10
) -> dict:
    """Summarise the raw reference features once; the result is JSON-serialisable.

    Args:
        reference: raw training features (as ``ft_engineering.load_data`` cleans them).
        categorical, numerical: column lists (ordinal columns count as categorical).
        bins: number of quantile bins for numeric PSI / Jensen-Shannon.

    Returns:
        ``{"format", "rows", "bins", "features": {name: {...}}}``; a numeric feature holds
        ``values``/``counts`` (sorted distinct values), ``edges`` (inclusive upper edges of the
        quantile bins below the max), ``min``, ``max`` and ``missing``; a categorical
        one holds ``categories``/``counts`` and ``missing``.
    """
    features: dict[str, dict] = {}
    for column in numerical:
        x = _numeric_values(reference[column])
        present = x[~np.isnan(x)]
        values, counts = np.unique(present, return_counts=True)
        entry: dict[str, Any] = {"kind": "numeric", "missing": int(np.isnan(x).sum())}
        if len(present):
            quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
            entry |= {
                "values": values.tolist(),
                "counts": counts.tolist(),
                "edges": [float(e) for e in np.unique(quantiles) if e < values[-1]],
                "min": float(values[0]),
                "max": float(values[-1]),
            }
        else:
            entry |= {"values": [], "counts": [], "edges": [], "min": None, "max": None}
        features[column] = entry
    for column in categorical:
        values = ft_engineering.as_category_column(reference[column])
        counts = values.dropna().value_counts().sort_index()
        features[column] = {
            "kind": "categorical",
            "missing": int(values.isna().sum()),
            "categories": counts.index.tolist(),
            "counts": [int(c) for c in counts],
        }
    return {"format": PROFILE_FORMAT, "rows": len(reference), "bins": bins, "features": features}


# ----------------------------------------------------------------------------- current counts
def _numeric_counts(entry: dict, values: pd.Series) -> dict:
    x = _numeric_values(values)
    missing = np.isnan(x)
    present = x[~missing]
    grid = np.asarray(entry["values"], dtype=float)
    k = len(grid)
    index = np.searchsorted(grid, present, side="left")
    on_value = (index < k) & (grid[np.minimum(index, max(k - 1, 0))] == present) if k else np.zeros(len(present), bool)
    counts = np.bincount(2 * index + on_value, minlength=2 * k + 1)
    return {"rows": len(x), "missing": int(missing.sum()), "grid": counts.tolist()}


def _categorical_counts(entry: dict, values: pd.Series, top_unseen: int = 20) -> dict:
    missing = values.isna().to_numpy()
    codes = pd.Categorical(values, categories=entry["categories"]).codes.copy()
    unseen = (codes < 0) & ~missing
    if unseen.any():  # other spellings of a category (1 or 1.0 for "1") are matched as training spells them
        spelled = ft_engineering.as_category_column(values[unseen])
        codes[unseen] = pd.Categorical(spelled, categories=entry["categories"]).codes
        unseen = (codes < 0) & ~missing
    counts = np.bincount(codes[codes >= 0], minlength=len(entry["categories"]))
    examples = ft_engineering.as_category_column(values[unseen]).value_counts().head(top_unseen) if unseen.any() else pd.Series(dtype=int)
    return {
        "rows": len(values),
        "missing": int(missing.sum()),
        "categories": counts.tolist() + [int(unseen.sum())],
        "unseen_values": {str(k): int(v) for k, v in examples.items()},
    }


def current_counts(profile: dict, current: pd.DataFrame) -> dict:
    """Count a window on the reference's bins: ``{feature: counts}``; a column absent from
    ``current`` counts as all missing. Counts of disjoint parts add up (``merge_counts``)."""
    out = {}
    for name, entry in profile["features"].items():
        values = current[name] if name in current else pd.Series(np.nan, index=current.index, dtype=object)
        out[name] = _numeric_counts(entry, values) if entry["kind"] == "numeric" else _categorical_counts(entry, values)
    return out


def merge_counts(parts: list[dict]) -> dict:
    """Add up the counts of disjoint parts of a window (e.g. per partition); exact."""
    merged: dict[str, dict] = {}
    for part in parts:
        for name, counts in part.items():
            if name not in merged:
                merged[name] = json.loads(json.dumps(counts))
                continue
            target = merged[name]
            target["rows"] += counts["rows"]
            target["missing"] += counts["missing"]
            for key in ("grid", "categories"):
                if key in counts:
                    target[key] = (np.asarray(target[key]) + np.asarray(counts[key])).tolist()
            for value, count in counts.get("unseen_values", {}).items():
                target["unseen_values"][value] = target["unseen_values"].get(value, 0) + count
    return merged


# ----------------------------------------------------------------------------- drift from counts
def _count_views(entry: dict, counts: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference and current arrays each statistic reads (see ``Statistic.counts``)."""
    ref_present = int(np.sum(entry["counts"]))
    cur_missing, cur_rows = counts["missing"], counts["rows"]
    ref: dict[str, np.ndarray] = {"missing": np.array([ref_present, entry["missing"]])}
    cur: dict[str, np.ndarray] = {"missing": np.array([cur_rows - cur_missing, cur_missing])}
    if entry["kind"] == "numeric":
        k = len(entry["values"])
        ref_grid = np.zeros(2 * k + 1, dtype=np.int64)
        ref_grid[1::2] = entry["counts"]
        cur_grid = np.asarray(counts["grid"], dtype=np.int64)
        # Bins: below min | [min, e1] | (e1, e2] | ... | (e_last, max] | above max.
        starts = [0, 1, *(2 * np.searchsorted(entry["values"], entry["edges"]) + 2).tolist(), 2 * k] if k else [0]
        ref |= {"grid": ref_grid, "bins": np.add.reduceat(ref_grid, starts), "outside": np.array([ref_present, 0])}
        cur |= {"grid": cur_grid, "bins": np.add.reduceat(cur_grid, starts)}
        cur["outside"] = np.array([cur_grid[1:-1].sum(), cur_grid[0] + cur_grid[-1]]) if k else np.array([0, 0])
    else:
        ref["bins"] = np.array([*entry["counts"], 0])
        cur["bins"] = np.asarray(counts["categories"])
        ref["outside"] = np.array([ref_present, 0])
        cur["outside"] = np.array([cur["bins"][:-1].sum(), cur["bins"][-1]])
    return ref, cur


def _no_data_reason(statistic: Statistic, ref: dict, cur: dict) -> str | None:
    """Why a statistic cannot be computed for a feature (Spanish, shown to users), or None when it can."""
    if statistic.counts == "missing":
        if cur["missing"].sum() == 0:
            return NO_CURRENT_ROWS
        return "sin filas de referencia" if ref["missing"].sum() == 0 else None
    if ref["missing"][0] == 0:
        return "la columna está vacía en la referencia"
    if cur["missing"][0] == 0:
        return NO_CURRENT_ROWS if cur["missing"].sum() == 0 else "la columna está vacía en la ventana"
    return None


NO_CURRENT_ROWS = "sin filas en la ventana"


def _detail(statistic: Statistic, ref: dict, cur: dict, counts: dict) -> str:
    """A short note for a result row (Spanish, shown to users)."""
    if statistic.counts == "missing":
        return f"faltantes {ref['missing'][1] / ref['missing'].sum():.1%} -> {cur['missing'][1] / cur['missing'].sum():.1%}"
    if statistic.name == "unseen_share" and counts.get("unseen_values"):
        return "categorías nuevas: " + ", ".join(f"{k} ({v})" for k, v in counts["unseen_values"].items())
    return ""


def _status(value: float, thresholds: tuple[float, float]) -> str:
    yellow, red = thresholds
    return "red" if value >= red else "yellow" if value >= yellow else "green"


def overall_status(feature_statuses: list[str], performance_drops: dict[str, float]) -> str:
    """A window's verdict: the worst feature status, or red when the model's metrics dropped."""
    return "red" if performance_drops else worst_status(feature_statuses)


def worst_status(statuses: list[str] | pd.Series) -> str:
    """The most severe status (``no_data`` only when nothing else is known)."""
    known = [s for s in statuses if s in STATUSES]
    return max(known, key=STATUSES.index) if known else "no_data"


RESULT_COLUMNS = [
    "feature", "kind", "method", "statistic", "p_value", "p_value_raw", "drifted", "status", "detail",
    "n_reference", "n_current",
]


def drift_from_counts(
    profile: dict,
    counts: dict,
    thresholds: dict[str, tuple[float, float]] | None = None,
    p_value: float | None = None,
    correction: str | None = None,
) -> pd.DataFrame:
    """One tidy row per feature and statistic from a profile and a window's counts.

    Args:
        profile: from ``build_reference_profile``.
        counts: from ``current_counts`` (or ``merge_counts``).
        thresholds: {statistic: (yellow, red)}; missing names use ``MonitoringConfig`` defaults.
        p_value: significance level for the tests after correction (default from config).
        correction: ``none``, ``bonferroni`` or ``fdr_bh`` (default from config).

    Returns:
        Columns ``RESULT_COLUMNS``: ``statistic`` (NaN when it cannot be computed), ``p_value``
        (corrected, tests only), ``p_value_raw``, ``drifted``, ``status`` (green / yellow / red /
        no_data) and ``detail`` (the reason when no_data, else a short note).
    """
    defaults = MonitoringConfig()
    limits = {**defaults.thresholds, **(thresholds or {})}
    alpha = defaults.p_value if p_value is None else p_value
    correction = defaults.correction if correction is None else correction
    rows = []
    for name, entry in profile["features"].items():
        ref, cur = _count_views(entry, counts[name])
        for statistic in STATISTICS:
            if entry["kind"] not in statistic.kinds:
                continue
            reason = _no_data_reason(statistic, ref, cur)
            value, p = float("nan"), float("nan")
            if reason is None:
                result = statistic.function(ref[statistic.counts], cur[statistic.counts])
                value, p = result if statistic.decides == "p_value" else (result, float("nan"))
            rows.append(
                {
                    "feature": name,
                    "kind": entry["kind"],
                    "method": statistic.name,
                    "statistic": value,
                    "p_value_raw": p,
                    "status": "no_data" if reason else None,
                    "detail": reason or _detail(statistic, ref, cur, counts[name]),
                    "n_reference": int(ref["missing"].sum()),
                    "n_current": int(cur["missing"].sum()),
                    "decides": statistic.decides,
                }
            )
    table = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "decides"])
    if table.empty:
        return table.drop(columns="decides")
    table["p_value"] = adjust_p_values(table["p_value_raw"].to_numpy(dtype=float), correction)
    tests = table["decides"] == "p_value"
    significant = tests & (table["p_value"] < alpha)
    effect_status = [
        _status(v, limits[m]) if m in limits else "green" for v, m in zip(table["statistic"], table["method"], strict=True)
    ]
    computed = table["status"].isna()
    table["status"] = np.where(
        ~computed, table["status"], np.where(tests, np.where(significant, "yellow", "green"), effect_status)
    )
    table["drifted"] = np.where(tests, significant, table["status"] == "red").astype(bool)
    return table[RESULT_COLUMNS].reset_index(drop=True)


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str],
    numerical: list[str],
    thresholds: dict[str, tuple[float, float]] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Drift of every feature of ``current`` against ``reference`` as one tidy DataFrame.

    Both frames hold raw features; all rows of ``current`` are used (the monitoring job samples
    its windows first). ``options`` go to ``drift_from_counts`` (``p_value``, ``correction``).
    Columns: see ``drift_from_counts``.
    """
    profile = build_reference_profile(reference, categorical, numerical)
    return drift_from_counts(profile, current_counts(profile, current), thresholds, **options)


def feature_status(results: pd.DataFrame) -> pd.DataFrame:
    """One row per feature: its worst status and the methods that flagged it."""
    if results.empty:
        return pd.DataFrame(columns=["feature", "status", "flagged_by"])
    rows = [
        {
            "feature": feature,
            "status": worst_status(group["status"].tolist()),
            "flagged_by": group.loc[group["status"].isin(["yellow", "red"]), "method"].tolist(),
        }
        for feature, group in results.groupby("feature", sort=False)
    ]
    return pd.DataFrame(rows, columns=["feature", "status", "flagged_by"])


# ----------------------------------------------------------------------------- profile of a model version
def output_feature(metadata: dict) -> tuple[str, str]:
    """The model-output column monitored for prediction drift and its kind.

    The score distribution (numeric) for binary classification and regression; the predicted-class
    mix (categorical) for multiclass classification.
    """
    if metadata["task"] == "classification" and len(metadata.get("classes") or []) > 2:
        return PREDICTION_COLUMN, "categorical"
    return SCORE_COLUMN, "numeric"


def feature_roles(metadata: dict) -> tuple[list[str], list[str]]:
    """(categorical, numerical) raw feature lists of a version; ordinal columns count as categorical."""
    roles = metadata["roles"]
    return [*roles.get("categorical", []), *list(roles.get("ordinal") or [])], list(roles.get("numeric", []))


def _reference_outputs(models_dir: Path, version: str, reference: pd.DataFrame) -> pd.DataFrame | None:
    """Score the reference with the version's own pipeline when ``reference.parquet`` lacks its outputs."""
    try:
        import model_deploy

        scored = model_deploy.predict_frame(registry.load_model(models_dir, version), reference)
    except Exception as exc:  # a missing module or an unscorable reference only disables prediction drift
        logger.warning("no model outputs for the reference of %s (%s): prediction drift skipped", version, exc)
        return None
    return pd.DataFrame({SCORE_COLUMN: scored["score"].to_numpy(), PREDICTION_COLUMN: scored["prediction"].astype(str).to_numpy()})


def version_profile(models_dir: Path, version: str, bins: int = 10) -> dict:
    """Build the reference profile of a saved version: its raw features plus its own output column."""
    metadata = registry.load_metadata(models_dir, version)
    reference = registry.load_reference(models_dir, version)
    categorical, numerical = feature_roles(metadata)
    column, kind = output_feature(metadata)
    if column not in reference:
        outputs = _reference_outputs(models_dir, version, reference.drop(columns=[SCORE_COLUMN, PREDICTION_COLUMN], errors="ignore"))
        if outputs is not None:
            reference = reference.assign(**{column: outputs[column].to_numpy()})
    if column in reference:
        (numerical if kind == "numeric" else categorical).append(column)
    profile = build_reference_profile(reference, categorical, numerical, bins=bins)
    return profile | {"version": version, "output": column if column in reference else None}


def load_or_build_profile(models_dir: Path, version: str | None = None, bins: int = 10) -> dict:
    """The reference profile saved with a version (default: the champion); built and saved if absent.

    Training calls this right after saving a version, so monitoring never recomputes it.
    """
    version = registry.resolve_version(models_dir, version)
    path = models_dir / version / PROFILE_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    profile = version_profile(models_dir, version, bins)
    registry.write_json_atomic(path, profile)
    logger.info("reference profile of %s saved to %s", version, path)
    return profile


# ----------------------------------------------------------------------------- performance
def performance_metrics(outcomes: pd.DataFrame, metadata: dict) -> dict[str, float]:
    """The task's metrics on predictions with known outcomes (``prediction``, ``score``, ``actual``)."""
    from sklearn import metrics

    if metadata["task"] == "regression":
        y_true = pd.to_numeric(outcomes["actual"], errors="coerce")
        y_pred = pd.to_numeric(outcomes["prediction"], errors="coerce")
        keep = y_true.notna() & y_pred.notna()
        y_true, y_pred = y_true[keep], y_pred[keep]
        result = {
            "mae": metrics.mean_absolute_error(y_true, y_pred),
            "rmse": metrics.root_mean_squared_error(y_true, y_pred),
        }
        if len(y_true) > 1:
            result["r2"] = metrics.r2_score(y_true, y_pred)
        if not (y_true == 0).any():  # MAPE is undefined when a true value is zero, as in training
            result["mape"] = metrics.mean_absolute_percentage_error(y_true, y_pred)
        return {k: float(v) for k, v in result.items()}
    # Integer class codes: sklearn is much faster on them than on text labels.
    classes = [str(c) for c in metadata["classes"]]
    y_true = pd.Categorical(outcomes["actual"].astype(str), categories=classes).codes
    y_pred = pd.Categorical(outcomes["prediction"].astype(str), categories=classes).codes
    known = (y_true >= 0) & (y_pred >= 0)
    if not known.any():
        return {}
    y_true, y_pred, score = y_true[known], y_pred[known], outcomes["score"].to_numpy(dtype=float)[known]
    result = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
    }
    positive = metadata.get("positive_class")
    if positive in classes:
        code = classes.index(positive)
        result |= {
            "f1": metrics.f1_score(y_true, y_pred, pos_label=code, zero_division=0),
            "precision": metrics.precision_score(y_true, y_pred, pos_label=code, zero_division=0),
            "recall": metrics.recall_score(y_true, y_pred, pos_label=code, zero_division=0),
        }
        if len(np.unique(y_true)) == 2 and not np.isnan(score).any():
            result["roc_auc"] = metrics.roc_auc_score(y_true == code, score)
    else:
        labels = list(range(len(classes)))
        result["f1_macro"] = metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {k: float(v) for k, v in result.items()}


LOWER_IS_BETTER = {"mae", "rmse", "mse", "mape", "log_loss", "brier"}


def primary_metric(metadata: dict, available: dict[str, float]) -> str | None:
    """The metric that decides a performance alert: training's primary metric when the window has it."""
    configured = ((metadata.get("config") or {}).get("training") or {}).get("primary_metric")
    for name in (metadata.get("primary_metric"), configured, "roc_auc", "f1_macro", "balanced_accuracy", "rmse"):
        if name in available:
            return name
    return None


def performance_drops(current: dict[str, float], reference: dict[str, float], tolerance: float, names: list[str] | None = None) -> dict[str, float]:
    """Metrics worse than at test time by more than ``tolerance``: {metric: worsening}.

    The tolerance is absolute for scores (accuracy, ROC-AUC...) and relative for errors (MAE, RMSE).
    ``names`` restricts the check (default: every metric in both).
    """
    drops = {}
    for name, value in current.items():
        if (names is None or name in names) and name in reference and isinstance(reference[name], (int, float)):
            worsening = (value - reference[name]) if name in LOWER_IS_BETTER else (reference[name] - value)
            scale = abs(reference[name]) if name in LOWER_IS_BETTER else 1.0
            if worsening > tolerance * scale:
                drops[name] = float(worsening)
    return drops


# ----------------------------------------------------------------------------- history: trends and jumps
EFFECT_METHODS = [s.name for s in STATISTICS if s.decides == "effect"]


def detect_changes(history: pd.DataFrame, thresholds: dict[str, tuple[float, float]], windows: int = 5) -> pd.DataFrame:
    """Mark trends and abrupt changes of the effect-size statistics over consecutive windows.

    Args:
        history: rows with ``window_start``, ``feature``, ``method``, ``statistic`` (e.g.
            ``store.read_drift_history``), one per window, feature and method.
        thresholds: {method: (yellow, red)}.
        windows: how many windows a trend spans and how many previous windows a jump is judged against.

    Returns:
        ``history`` sorted by time with two boolean columns: ``trend`` (over the last ``windows``
        values ending here, Kendall's tau-a against time is at least 0.8, the rise from the first
        to the last is at least half the yellow threshold and the last value reaches it) and
        ``abrupt`` (the value is at least twice the largest of the previous ``windows`` values, at
        least 3 of them, and exceeds it by at least the yellow threshold).
        A rise that contains a jump is marked as the jump only.
    """
    out = history.sort_values("window_start", kind="stable").reset_index(drop=True)
    out["trend"] = False
    out["abrupt"] = False
    pairs = [(i, j) for i in range(windows) for j in range(i + 1, windows)]
    for (_, method), group in out.groupby(["feature", "method"], sort=False):
        if method not in thresholds or method not in EFFECT_METHODS:
            continue
        yellow = thresholds[method][0]
        values = group["statistic"].to_numpy(dtype=float)
        index = group.index.to_numpy()
        abrupt = np.zeros(len(values), dtype=bool)
        for position in range(3, len(values)):
            previous = values[max(0, position - windows) : position]
            previous = previous[~np.isnan(previous)]
            if len(previous) >= 3:
                highest = previous.max()
                abrupt[position] = values[position] - highest >= yellow and values[position] >= 2 * highest
        out.loc[index, "abrupt"] = abrupt
        if len(values) >= windows:
            runs = np.lib.stride_tricks.sliding_window_view(values, windows)
            tau = np.mean([np.sign(runs[:, j] - runs[:, i]) for i, j in pairs], axis=0)
            rise = runs[:, -1] - runs[:, 0]
            # A rise explained by a jump inside the span is a jump, not a trend.
            jumped = np.lib.stride_tricks.sliding_window_view(abrupt, windows)[:, 1:].any(axis=1)
            reached = runs[:, -1] >= yellow
            out.loc[index[windows - 1 :], "trend"] = (tau >= 0.8) & (rise >= yellow / 2) & reached & ~jumped
    return out


# ----------------------------------------------------------------------------- alerts and recommendations
METHOD_LABELS = {
    "ks": "KS",
    "chi_squared": "chi-cuadrado",
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon",
    "missing_share": "cambio en % de faltantes",
    "out_of_range_share": "% fuera del rango de entrenamiento",
    "unseen_share": "% de categorías nuevas",
}


def feature_label(feature: str) -> str:
    """How users see a feature name (the model output columns get a readable name)."""
    return {SCORE_COLUMN: "salida del modelo (score)", PREDICTION_COLUMN: "salida del modelo (clase predicha)"}.get(feature, feature)


def alerts_and_recommendations(
    results: pd.DataFrame,
    changes: pd.DataFrame,
    drops: dict[str, float],
    config: MonitoringConfig,
) -> tuple[list[dict], list[dict]]:
    """Alert messages and recommendations (plain dicts with Spanish messages for users).

    Returns:
        (alerts, recommendations): alerts have ``level`` (red / yellow), ``feature``, ``message``;
        recommendations have ``action`` (retrain / review_feature / check_pipeline), ``feature``,
        ``message``.
    """
    alerts: list[dict] = []
    recommendations: list[dict] = []
    statuses = feature_status(results)
    for row in statuses.itertuples():
        if row.status not in ("yellow", "red"):
            continue
        rows = results[(results["feature"] == row.feature) & results["status"].isin(["yellow", "red"])]
        parts = [f"{METHOD_LABELS[r.method]} = {r.statistic:.3g}" + (f" ({r.detail})" if r.detail else "") for r in rows.itertuples()]
        alerts.append({"level": row.status, "feature": row.feature, "message": f"Deriva en {feature_label(row.feature)}: " + "; ".join(parts)})
        red = results[(results["feature"] == row.feature) & (results["status"] == "red")]
        if "missing_share" in red["method"].values:
            recommendations.append({"action": "check_pipeline", "feature": row.feature, "message": f"Revise el pipeline de datos: cambió la proporción de valores faltantes de {row.feature}."})
        if "unseen_share" in red["method"].values:
            recommendations.append({"action": "check_pipeline", "feature": row.feature, "message": f"Revise el origen de {row.feature}: llegan categorías que el modelo no vio al entrenar."})
        if red["method"].isin(["psi", "jensen_shannon", "out_of_range_share"]).any():
            recommendations.append({"action": "review_feature", "feature": row.feature, "message": f"Revise la variable {feature_label(row.feature)}: su distribución cambió respecto al entrenamiento."})
    flagged = changes[changes["trend"] | changes["abrupt"]] if not changes.empty else changes
    for row in flagged.itertuples():
        kind = "tendencia creciente" if row.trend else "salto brusco"
        alerts.append({"level": "yellow", "feature": row.feature, "message": f"{kind.capitalize()} de {METHOD_LABELS[row.method]} en {feature_label(row.feature)} frente a las ventanas anteriores."})
    for metric, worsening in drops.items():
        alerts.append({"level": "red", "feature": None, "message": f"El desempeño empeoró: {metric} está {worsening:.3f} peor que en la evaluación de prueba."})
    red_features = statuses.loc[statuses["status"] == "red", "feature"].tolist()
    reasons = []
    if drops:
        reasons.append("cayó el desempeño con los resultados reales")
    if SCORE_COLUMN in red_features or PREDICTION_COLUMN in red_features:
        reasons.append("cambió la distribución de las predicciones")
    if len(red_features) >= config.retrain_red_features:
        reasons.append(f"{len(red_features)} variables en rojo")
    if reasons:
        recommendations.insert(0, {"action": "retrain", "feature": None, "message": "Reentrene el modelo con datos recientes: " + ", ".join(reasons) + "."})
    return alerts, recommendations


# ----------------------------------------------------------------------------- the monitoring job
def clean_current(frame: pd.DataFrame, profile: dict, metadata: dict) -> pd.DataFrame:
    """Clean logged raw features as training did (missing tokens, types) before counting."""
    na_values = ((metadata.get("config") or {}).get("dataset") or {}).get("na_values", [])
    categorical = [n for n, e in profile["features"].items() if e["kind"] == "categorical" and n in frame]
    numerical = [n for n, e in profile["features"].items() if e["kind"] == "numeric" and n in frame]
    return ft_engineering.coerce_types(ft_engineering.unify_missing(frame, na_values), numerical, categorical)


def _iso(when: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(when).tz_convert("UTC").isoformat()


@dataclass(frozen=True)
class MonitoredVersion:
    """What a monitoring run reads once for its model version: the id, metadata and reference profile."""

    version: str
    metadata: dict
    profile: dict


def monitored_version(models_dir: Path, version: str | None, bins: int) -> MonitoredVersion:
    """Load the version to monitor (default: the champion) with its metadata and saved profile."""
    version = registry.resolve_version(models_dir, version)
    return MonitoredVersion(version, registry.load_metadata(models_dir, version), load_or_build_profile(models_dir, version, bins))


def monitor_window(
    engine: Any,
    models_dir: Path,
    start: datetime,
    end: datetime,
    config: MonitoringConfig,
    version: str | None = None,
    write: bool = True,
    counts: dict | None = None,
) -> dict:
    """Monitor one window of the prediction log and store it as history (``window_outcome`` of
    ``version``, default the champion)."""
    return window_outcome(engine, monitored_version(models_dir, version, config.bins), start, end, config, write, counts)


def window_outcome(
    engine: Any,
    target: MonitoredVersion,
    start: datetime,
    end: datetime,
    config: MonitoringConfig,
    write: bool = True,
    counts: dict | None = None,
) -> dict:
    """Monitor one window of the prediction log for a loaded version and store it as history.

    Samples at most ``config.sample_size`` predictions of ``target``'s version logged in
    ``[start, end)``, computes drift for every feature and the model output, the task's metrics
    where feedback exists, trends and jumps against previous windows, alerts and recommendations; writes a run and its per-feature rows (``store.write_monitoring_run``).
    Given ``counts`` (``current_counts`` of every row of the window, e.g. merged over Dask
    partitions by ``dask_engine``), nothing is sampled and the drift comes from those counts.

    Returns:
        ``{"run_id", "run": {window_start, window_end, model_version, n_rows, n_sampled, status,
        summary}, "results": tidy DataFrame}``; status ``no_data`` when the window is empty.
    """
    version, metadata, profile = target.version, target.metadata, target.profile
    if counts is None:
        sample, n_rows = store.sample_predictions(engine, start, end, config.sample_size, seed=config.seed, model_version=version)
        counts = current_counts(profile, clean_current(sample, profile, metadata)) if len(sample) else {}
        n_sampled = len(sample)
    else:
        n_rows = n_sampled = max((c["rows"] for c in counts.values()), default=0)
    run: dict[str, Any] = {"window_start": start, "window_end": end, "model_version": version, "n_rows": n_rows, "n_sampled": n_sampled}
    if not n_sampled:
        message = f"Sin datos: no hay predicciones del modelo {version} entre {_iso(start)} y {_iso(end)}."
        results = pd.DataFrame(columns=RESULT_COLUMNS)
        summary = {"status": "no_data", "features": {}, "alerts": [{"level": "info", "feature": None, "message": message}], "recommendations": [], "performance": None, "changes": []}
    else:
        results = drift_from_counts(profile, counts, config.thresholds, config.p_value, config.correction)
        outcomes = store.read_outcomes(engine, start, end, version)
        performance = performance_metrics(outcomes, metadata) if len(outcomes) >= config.min_feedback else None
        primary = primary_metric(metadata, performance or {})
        drops = performance_drops(performance, metadata.get("metrics", {}).get("test", {}), config.performance_drop, [primary]) if primary else {}
        changes = _window_changes(engine, version, start, end, results, config)
        alerts, recommendations = alerts_and_recommendations(results, changes, drops, config)
        statuses = feature_status(results)
        summary = {
            "status": overall_status(statuses["status"].tolist(), drops),
            "features": dict(zip(statuses["feature"], statuses["status"], strict=True)),
            "alerts": alerts,
            "recommendations": recommendations,
            "performance": performance,
            "n_feedback": len(outcomes),
            "performance_drops": drops,
            "changes": changes.loc[changes["trend"] | changes["abrupt"], ["feature", "method", "trend", "abrupt"]].to_dict("records") if not changes.empty else [],
            "output": profile.get("output"),
        }
    summary |= {"sample_size": config.sample_size, "correction": config.correction, "thresholds": config.thresholds}
    run |= {"status": summary["status"], "summary": summary}
    run_id = store.write_monitoring_run(engine, run, results) if write else None
    return {"run_id": run_id, "run": run, "results": results}


def _window_changes(
    engine: Any, version: str, start: datetime, end: datetime, results: pd.DataFrame, config: MonitoringConfig
) -> pd.DataFrame:
    """Trend and jump flags of this window's effect sizes against the previous stored windows."""
    # Twice the trend span, so a jump a few windows back is still seen as a jump.
    since = pd.Timestamp(start) - 2 * config.trend_windows * (pd.Timestamp(end) - pd.Timestamp(start))
    history = store.read_drift_history(engine, model_version=version, start=since, end=start)
    recent = history["window_start"].drop_duplicates().nlargest(2 * config.trend_windows)
    history = history[history["window_start"].isin(recent) & history["method"].isin(EFFECT_METHODS)]
    now = results.loc[results["method"].isin(EFFECT_METHODS), ["feature", "method", "statistic"]].assign(window_start=pd.Timestamp(start).tz_convert("UTC"))
    if history.empty:
        return now.assign(trend=False, abrupt=False).iloc[0:0]
    combined = pd.concat([history[["window_start", "feature", "method", "statistic"]], now], ignore_index=True)
    flagged = detect_changes(combined, config.thresholds, config.trend_windows)
    return flagged[flagged["window_start"] == now["window_start"].iloc[0]].reset_index(drop=True)


def _offset(window: str) -> pd.DateOffset:
    try:
        return pd.tseries.frequencies.to_offset(window)
    except ValueError as exc:
        raise ValueError(f"'{window}' is not a pandas offset such as 1D, 12h or 1W") from exc


def recent_windows(
    window: str, end: datetime | None = None, first: datetime | None = None, count: int = 2
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The last ``count`` windows of the backfill grid up to the one containing ``end`` (default: now).

    The grid is the one ``backfill_windows`` uses from ``first`` (the log's first prediction;
    default ``end``), so ``run`` and ``run --backfill`` write the same windows and a re-run
    replaces a window instead of adding an overlapping one.
    """
    end_ts = pd.Timestamp(end or datetime.now(timezone.utc))
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    anchor = pd.Timestamp(first).tz_convert("UTC") if first is not None and pd.Timestamp(first) <= end_ts else end_ts
    return backfill_windows(anchor, end_ts, window)[-count:]


def latest_window(window: str, end: datetime | None = None, first: datetime | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window of the grid (see ``recent_windows``) that contains ``end`` (default: now, UTC)."""
    return recent_windows(window, end, first, count=1)[0]


def backfill_windows(first: datetime, last: datetime, window: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive windows covering ``[first, last]``, starting at midnight UTC of ``first``'s day."""
    offset = _offset(window)
    edge = pd.Timestamp(first).tz_convert("UTC").normalize()
    last_ts = pd.Timestamp(last).tz_convert("UTC")
    windows = []
    while edge <= last_ts:
        windows.append((edge, edge + offset))
        edge = edge + offset
    return windows


def job_windows(
    window: str, first: datetime | None, last: datetime | None, end: datetime | None = None, backfill: bool = False
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The windows a run monitors, given the log's first and last prediction (None when empty):
    every window of the log with ``backfill``, else the one containing ``end`` (default: now) and
    the previous one, so that one is closed with all its rows."""
    if backfill:
        return backfill_windows(first, last, window) if first is not None else []
    return recent_windows(window, end, first)


def run_windows(
    engine: Any,
    models_dir: Path,
    config: MonitoringConfig,
    version: str | None = None,
    window: str | None = None,
    end: datetime | None = None,
    backfill: bool = False,
) -> list[dict]:
    """Monitor the ``job_windows`` of a version's log, oldest first (re-running replaces them)."""
    target = monitored_version(models_dir, version, config.bins)
    first, last = store.prediction_time_range(engine, target.version)
    return [window_outcome(engine, target, s, e, config) for s, e in job_windows(window or config.window, first, last, end, backfill)]


def run_backfill(engine: Any, models_dir: Path, config: MonitoringConfig, version: str | None = None, window: str | None = None) -> list[dict]:
    """Monitor every window of the log for a version, oldest first (re-running replaces them)."""
    return run_windows(engine, models_dir, config, version, window, backfill=True)


# ----------------------------------------------------------------------------- simulated traffic
NEW_CATEGORY = "nueva_categoria"


@dataclass(frozen=True)
class DriftScenario:
    """Which drift the simulator injects, from ``start_day`` (0-based) to the last day.

    ``shift``: numeric column -> shift in reference standard deviations; ``missing``: column ->
    share of values blanked; ``new_category``: categorical column -> share replaced by a category
    the model never saw; ``mix``: categorical column -> category that takes half of the rows.
    """

    start_day: int = 6
    shift: dict[str, float] | None = None
    missing: dict[str, float] | None = None
    new_category: dict[str, float] | None = None
    mix: dict[str, str] | None = None

    @property
    def features(self) -> set[str]:
        """Every feature the scenario changes."""
        return {name for part in (self.shift, self.missing, self.new_category, self.mix) for name in (part or {})}


def default_scenario(frame: pd.DataFrame, categorical: list[str], numerical: list[str], start_day: int = 6) -> DriftScenario:
    """A scenario with each kind of drift on different features, chosen from the column roles."""
    numbers = [c for c in numerical if frame[c].nunique() > 2]
    categories = [c for c in categorical if frame[c].nunique() > 1]
    mix = {}
    if len(categories) > 1:
        mix = {categories[1]: str(frame[categories[1]].value_counts().index[-1])}
    return DriftScenario(
        start_day=start_day,
        shift={numbers[0]: 1.0} if numbers else None,
        missing={numbers[1]: 0.3} if len(numbers) > 1 else None,
        new_category={categories[0]: 0.2} if categories else None,
        mix=mix or None,
    )


def apply_drift(frame: pd.DataFrame, scenario: DriftScenario, reference: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Inject the scenario's drift into a batch of raw feature rows (integral columns stay integral)."""
    out = frame.copy()
    for column, sd in (scenario.shift or {}).items():
        values = pd.to_numeric(out[column], errors="coerce") + sd * pd.to_numeric(reference[column], errors="coerce").std()
        integral = bool(np.all(np.mod(reference[column].dropna(), 1) == 0))
        out[column] = values.round() if integral else values
    for column, share in (scenario.new_category or {}).items():
        out[column] = out[column].astype(object).where(rng.random(len(out)) >= share, NEW_CATEGORY)
    for column, category in (scenario.mix or {}).items():
        out[column] = out[column].astype(object).where(rng.random(len(out)) >= 0.5, category)
    for column, share in (scenario.missing or {}).items():
        out[column] = out[column].where(rng.random(len(out)) >= share)
    return out


def degrade_labels(labels: pd.Series, metadata: dict, share: float, rng: np.random.Generator) -> pd.Series:
    """Ground truth as the world changed: a share of labels replaced (classes) or noised (regression)."""
    hit = rng.random(len(labels)) < share
    if metadata["task"] == "regression":
        values = labels.astype(float)
        return values + hit * rng.normal(0, values.std() or 1.0, len(values))
    classes = [str(c) for c in metadata["classes"]]
    flipped = [rng.choice([c for c in classes if c != label] or classes) for label in labels.astype(str)]
    return labels.astype(str).where(~hit, pd.Series(flipped, index=labels.index))


def simulate_traffic(
    settings: Settings,
    engine: Any,
    days: int = 10,
    rows_per_day: int = 300,
    scenario: DriftScenario | None = None,
    feedback_share: float = 0.5,
    label_noise: float = 0.3,
    seed: int = 0,
    version: str | None = None,
    api_url: str | None = None,
) -> dict:
    """Send realistic traffic with chosen drift over ``days`` simulated days ending yesterday (UTC).

    Rows are drawn with replacement from the configured dataset, drifted from
    ``scenario.start_day`` on, scored by the real pipeline (``model_deploy.predict_frame``) and
    written by the real store path with backdated ``created_at``; the true labels of a
    ``feedback_share`` of them are stored as feedback (a ``label_noise`` share degraded on drift
    days). With ``api_url`` the same traffic goes over HTTP to a running API instead (then the
    API stamps every row with the current time, so all of it lands in today's window).

    Returns:
        ``{"version", "days": [day start ISO...], "rows", "feedback", "drift_days", "features"}``.
    """
    import model_deploy

    model = registry.load_model(settings.models_dir, version)
    data, _ = ft_engineering.load_project_data(settings.config)
    categorical, numerical = feature_roles(model.metadata)
    reference = registry.load_reference(settings.models_dir, model.version)
    scenario = scenario or default_scenario(data.frame, categorical, numerical)
    unknown = sorted(scenario.features - set(model.feature_names))
    if unknown:
        raise ValueError(f"the scenario names columns the model does not use: {unknown}")
    rng = np.random.default_rng(seed)
    first_day = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=days)
    sent = feedback_sent = 0
    client = _api_client(api_url, settings) if api_url else None
    try:
        for day in range(days):
            rows = data.frame.sample(rows_per_day, replace=True, random_state=rng.integers(2**31)).reset_index(drop=True)
            features = rows[model.feature_names]
            drifted = day >= scenario.start_day
            if drifted:
                features = apply_drift(features, scenario, reference, rng)
            labels = rows[data.target]
            if drifted:
                labels = degrade_labels(labels, model.metadata, label_noise, rng)
            if client is None:
                times = first_day + pd.Timedelta(days=day) + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows_per_day)), unit="s")
                outputs = model_deploy.predict_frame(model, features, flat=True)
                ids = store.log_predictions(engine, features, outputs, model_version=model.version, created_at=list(times))
            else:
                ids = _post_predictions(client, features)
            chosen = np.flatnonzero(rng.random(len(ids)) < feedback_share)
            items = [{"prediction_id": ids[i], "actual": str(labels.iloc[i])} for i in chosen]
            if items:
                if client is None:
                    store.record_feedback(engine, items)
                else:
                    client.post("/feedback", json=items).raise_for_status()
            sent += len(ids)
            feedback_sent += len(items)
    finally:
        if client is not None:
            client.close()
    return {
        "version": model.version,
        "days": [(first_day + pd.Timedelta(days=d)).isoformat() for d in range(days)],
        "rows": sent,
        "feedback": feedback_sent,
        "drift_days": [(first_day + pd.Timedelta(days=d)).isoformat() for d in range(scenario.start_day, days)],
        "features": sorted(scenario.features),
    }


def _api_client(api_url: str, settings: Settings) -> Any:
    import httpx

    headers = {"X-API-Key": settings.effective_api_key} if settings.effective_api_key else {}
    return httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=60)


def _post_predictions(client: Any, features: pd.DataFrame) -> list[str]:
    """POST a batch to a running API's /predict; the prediction ids, in row order."""
    response = client.post("/predict", content=features.to_json(orient="records"), headers={"Content-Type": "application/json"})
    response.raise_for_status()
    return [item["id"] for item in response.json()["predictions"]]


# ----------------------------------------------------------------------------- CLI
STATUS_LABELS = {"green": "VERDE", "yellow": "AMARILLO", "red": "ROJO", "no_data": "SIN DATOS"}


def run_as_json(outcome: dict) -> dict:
    """A monitoring outcome as plain JSON (for ``run --json``)."""
    run = outcome["run"]
    return {
        "run_id": outcome["run_id"],
        **{k: (_iso(v) if k.startswith("window") else v) for k, v in run.items()},
        "results": json.loads(outcome["results"].to_json(orient="records")),
    }


def describe_run(outcome: dict) -> str:
    """A short Spanish report of one monitoring window for the terminal."""
    run = outcome["run"]
    lines = [
        f"Ventana {_iso(run['window_start'])} -> {_iso(run['window_end'])}: {STATUS_LABELS[run['status']]} "
        f"({run['n_rows']} predicciones, {run['n_sampled']} en la muestra, modelo {run['model_version']})"
    ]
    lines += [f"  [{a['level']}] {a['message']}" for a in run["summary"]["alerts"]]
    lines += [f"  -> {r['message']}" for r in run["summary"]["recommendations"]]
    if run["summary"].get("performance"):
        lines.append("  desempeño: " + ", ".join(f"{k}={v:.3f}" for k, v in run["summary"]["performance"].items()))
    return "\n".join(lines)


def _pairs(values: list[str] | None, cast: Callable[[str], Any]) -> dict[str, Any] | None:
    """Parse ``COLUMN=VALUE`` options."""
    if not values:
        return None
    parsed = {}
    for item in values:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ValueError(f"expected COLUMN=VALUE, got '{item}'")
        parsed[column] = cast(value)
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model_monitoring.py", description="Monitoreo de deriva del modelo servido.")
    parser.add_argument("--config", type=Path, help="otro config.yaml (por defecto el del proyecto o MLOPS_CONFIG)")
    parser.add_argument("--model", help="versión a monitorear (por defecto la campeona)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="monitorea la última ventana (o todo el registro con --backfill)")
    run.add_argument("--window", help="tamaño de la ventana, un offset de pandas: 1D, 12h, 1W (por defecto el del config)")
    run.add_argument("--end", help="fin de la ventana (ISO, UTC); por defecto ahora")
    run.add_argument("--backfill", action="store_true", help="recorre todo el registro de predicciones ventana por ventana")
    run.add_argument("--every", help="repite cada intervalo (offset de pandas, p. ej. 1h) hasta Ctrl+C")
    run.add_argument("--json", action="store_true", help="imprime los resultados en JSON")
    run.add_argument("--engine", choices=["local", "dask"], default="local", help="dask: cuenta todas las filas de cada ventana en un clúster, sin muestrear")
    run.add_argument("--scheduler", help="con --engine dask: dirección de un clúster existente (tcp://host:8786); por defecto un LocalCluster")
    run.add_argument("--input", help="con --engine dask: exportaciones Parquet del registro (ruta o glob) en lugar de la base de datos")
    sim = commands.add_parser("simulate", help="envía tráfico realista con deriva elegida durante varios días simulados")
    sim.add_argument("--days", type=int, default=10)
    sim.add_argument("--rows-per-day", type=int, default=300)
    sim.add_argument("--drift-start", type=int, default=6, help="primer día (desde 0) con deriva")
    sim.add_argument("--shift", action="append", metavar="COL=DESV", help="desplaza una numérica en desviaciones estándar")
    sim.add_argument("--missing", action="append", metavar="COL=PROP", help="vacía una proporción de valores")
    sim.add_argument("--new-category", action="append", metavar="COL=PROP", help="reemplaza una proporción por una categoría nueva")
    sim.add_argument("--mix", action="append", metavar="COL=CATEGORIA", help="la categoría pasa a ser la mitad de las filas")
    sim.add_argument("--feedback-share", type=float, default=0.5, help="proporción de predicciones con resultado real")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--api-url", help="envía el tráfico a una API en marcha (todas las filas quedan con la hora actual)")
    return parser


def _monitor_once(settings: Settings, engine: Any, args: argparse.Namespace, config: MonitoringConfig) -> list[dict]:
    if args.engine == "dask":
        import dask_engine

        return dask_engine.monitor_command(settings, engine, args, config)
    end = pd.Timestamp(args.end) if args.end else None
    return run_windows(engine, settings.models_dir, config, args.model, args.window, end, args.backfill)


def _run_command(settings: Settings, engine: Any, args: argparse.Namespace) -> int:
    config = settings.config.monitoring
    interval = _offset(args.every) if args.every else None
    while True:
        outcomes = _monitor_once(settings, engine, args, config)
        if args.json:
            print(json.dumps([run_as_json(o) for o in outcomes], indent=2, default=str))
        else:
            print("\n".join(describe_run(o) for o in outcomes) or "El registro de predicciones está vacío: no hay nada que monitorear.")
        if interval is None:
            return 0
        now = pd.Timestamp.now(tz="UTC")
        time.sleep(((now + interval) - now).total_seconds())  # calendar offsets (1W, MS) included


def _simulate_command(settings: Settings, engine: Any, args: argparse.Namespace) -> int:
    overrides = {
        "shift": _pairs(args.shift, float),
        "missing": _pairs(args.missing, float),
        "new_category": _pairs(args.new_category, float),
        "mix": _pairs(args.mix, str),
    }
    scenario = None
    if any(overrides.values()):
        scenario = DriftScenario(start_day=args.drift_start, **overrides)
    else:
        metadata = registry.load_metadata(settings.models_dir, args.model)
        data, _ = ft_engineering.load_project_data(settings.config)
        scenario = default_scenario(data.frame, *feature_roles(metadata), start_day=args.drift_start)
    started = time.perf_counter()
    report = simulate_traffic(
        settings, engine, args.days, args.rows_per_day, scenario, args.feedback_share, seed=args.seed,
        version=args.model, api_url=args.api_url,
    )
    print(
        f"Simulados {len(report['days'])} días, {report['rows']} predicciones y {report['feedback']} resultados reales "
        f"en {time.perf_counter() - started:.1f} s (modelo {report['version']}).\n"
        f"Deriva desde el día {args.drift_start} en: {', '.join(report['features'])}.\n"
        "Siguiente paso: python mlops_pipeline/src/model_monitoring.py run --backfill"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``run`` and ``simulate``; user errors print a message and return 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings(mlops_config=args.config)
        engine = store.create_db_engine(settings.db_url)
        store.init_db(engine)
        if args.command == "simulate":
            return _simulate_command(settings, engine, args)
        return _run_command(settings, engine, args)
    except (ConfigError, registry.ModelNotFoundError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
