"""Drift statistics and reference profiles: pure functions over counts (no I/O but the profile file).

Design (profile + counts, so partial counts merge exactly, e.g. per Dask partition):

1. ``build_reference_profile(reference, numeric, categorical)`` summarises the raw training
   features once: per numeric column the sorted distinct values and their counts (for an exact KS
   from counts), quantile bin edges, min/max and missing count; per categorical column the
   category counts and missing count. It is JSON and is saved with the model version, one file per
   bin count (``load_or_build_profile``).
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
significant test alone makes a row yellow, never red.

Each result row carries a ``detail``: None, or a code with its numbers (never a sentence; the
Spanish text is ``messages.detail_text``). Why a statistic could not be computed:
``{"code": "no_current_rows"}``, ``no_reference_rows``, ``empty_in_reference``,
``empty_in_window``; notes: ``{"code": "missing_change", "reference": 0.0, "current": 0.33}``
(missing shares) and ``{"code": "unseen_values", "values": {"castle": 12}}`` (unseen categories).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

import ft_engineering
import registry
import scoring
from settings import MonitoringConfig

logger = logging.getLogger(__name__)


EPSILON = 1e-4
"""Floor for bin shares in PSI: an empty bin counts as a share of 0.0001 (as Evidently does)."""

PROFILE_FILE = "reference_profile_{bins}bins.json"
"""A version's reference profile, one file per bin count (``monitoring.bins``)."""

PROFILE_FORMAT = 1

SCORE_COLUMN = "__score__"
PREDICTION_COLUMN = "__prediction__"
OUTPUT_COLUMNS = (SCORE_COLUMN, PREDICTION_COLUMN)
"""The model-output columns monitored beside the input features (see ``output_feature``)."""

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
        mode, within one rounding of its asymptotic mode used above 10,000 rows); p is
        ``kstwo.sf(D, round(n*m/(n+m)))``, the formula of ``ks_2samp(method="asymp")``.
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
"""Every statistic computed per feature; default thresholds live in ``MonitoringConfig``."""


TEST_METHODS = tuple(s.name for s in STATISTICS if s.decides == "p_value")
EFFECT_METHODS = tuple(s.name for s in STATISTICS if s.decides == "effect")


def adjust_p_values(p_values: np.ndarray, correction: str) -> np.ndarray:
    """Correct p-values for multiple testing: ``none``, ``bonferroni`` or ``fdr_bh``
    (Benjamini-Hochberg)."""
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


def _numeric_entry(column: pd.Series, bins: int) -> dict:
    """Profile of a numeric column: sorted distinct values and counts, quantile edges, range, missing."""
    x = _numeric_values(column)
    present = x[~np.isnan(x)]
    entry: dict[str, Any] = {"kind": "numeric", "missing": int(np.isnan(x).sum())}
    if not len(present):
        return entry | {"values": [], "counts": [], "edges": [], "min": None, "max": None}
    values, counts = np.unique(present, return_counts=True)
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    return entry | {
        "values": values.tolist(),
        "counts": counts.tolist(),
        "edges": [float(e) for e in np.unique(quantiles) if e < values[-1]],
        "min": float(values[0]),
        "max": float(values[-1]),
    }


def _categorical_entry(column: pd.Series) -> dict:
    """Profile of a categorical column: category counts (spelled as training spells them), missing."""
    values = ft_engineering.as_category_column(column)
    counts = values.dropna().value_counts().sort_index()
    return {
        "kind": "categorical",
        "missing": int(values.isna().sum()),
        "categories": counts.index.tolist(),
        "counts": [int(c) for c in counts],
    }


def build_reference_profile(
    reference: pd.DataFrame, numeric: list[str], categorical: list[str], bins: int = 10
) -> dict:
    """Summarise the raw reference features once; the result is JSON-serialisable.

    Args:
        reference: raw training features (as ``ft_engineering.load_data`` cleans them).
        numeric, categorical: column lists (ordinal columns count as categorical).
        bins: number of quantile bins for numeric PSI / Jensen-Shannon.

    Returns:
        ``{"format", "rows", "bins", "features": {name: {...}}}``; a numeric feature holds
        ``values``/``counts`` (sorted distinct values), ``edges`` (inclusive upper edges of the
        quantile bins below the max), ``min``, ``max`` and ``missing``; a categorical
        one holds ``categories``/``counts`` and ``missing``.
    """
    features = {column: _numeric_entry(reference[column], bins) for column in numeric}
    features |= {column: _categorical_entry(reference[column]) for column in categorical}
    return {"format": PROFILE_FORMAT, "rows": len(reference), "bins": bins, "features": features}


# ----------------------------------------------------------------------------- current counts
def _numeric_counts(entry: dict, values: pd.Series) -> dict:
    """Counts on the KS value grid: entry 2i between reference values, 2i + 1 on value i."""
    x = _numeric_values(values)
    missing = np.isnan(x)
    present = x[~missing]
    grid = np.asarray(entry["values"], dtype=float)
    k = len(grid)
    index = np.searchsorted(grid, present, side="left")
    on_value = np.zeros(len(present), dtype=bool)
    if k:
        on_value = (index < k) & (grid[np.minimum(index, k - 1)] == present)
    counts = np.bincount(2 * index + on_value, minlength=2 * k + 1)
    return {"rows": len(x), "missing": int(missing.sum()), "grid": counts.tolist()}


def _categorical_counts(entry: dict, values: pd.Series, top_unseen: int = 20) -> dict:
    """One count per reference category plus the unseen bucket, and the commonest unseen values."""
    missing = values.isna().to_numpy()
    codes = pd.Categorical(values, categories=entry["categories"]).codes.copy()
    unseen = (codes < 0) & ~missing
    if unseen.any():  # other spellings of a category (1 or 1.0 for "1") match as training spells them
        spelled = ft_engineering.as_category_column(values[unseen])
        codes[unseen] = pd.Categorical(spelled, categories=entry["categories"]).codes
        unseen = (codes < 0) & ~missing
    counts = np.bincount(codes[codes >= 0], minlength=len(entry["categories"]))
    examples = (
        ft_engineering.as_category_column(values[unseen]).value_counts().head(top_unseen)
        if unseen.any()
        else pd.Series(dtype=int)
    )
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
        absent = pd.Series(np.nan, index=current.index, dtype=object)
        values = current[name] if name in current else absent
        numeric = entry["kind"] == "numeric"
        out[name] = _numeric_counts(entry, values) if numeric else _categorical_counts(entry, values)
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
def _numeric_views(entry: dict, counts: dict, present: int) -> tuple[dict, dict]:
    """KS grid, quantile bins and inside/outside counts of a numeric feature, reference and current."""
    k = len(entry["values"])
    ref_grid = np.zeros(2 * k + 1, dtype=np.int64)
    ref_grid[1::2] = entry["counts"]
    cur_grid = np.asarray(counts["grid"], dtype=np.int64)
    # Bins: below min | [min, e1] | (e1, e2] | ... | (e_last, max] | above max.
    edges = (2 * np.searchsorted(entry["values"], entry["edges"]) + 2).tolist()
    starts = [0, 1, *edges, 2 * k] if k else [0]
    outside = np.array([cur_grid[1:-1].sum(), cur_grid[0] + cur_grid[-1]]) if k else np.array([0, 0])
    ref = {"grid": ref_grid, "bins": np.add.reduceat(ref_grid, starts), "outside": np.array([present, 0])}
    cur = {"grid": cur_grid, "bins": np.add.reduceat(cur_grid, starts), "outside": outside}
    return ref, cur


def _count_views(entry: dict, counts: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference and current arrays each statistic reads (see ``Statistic.counts``)."""
    present = int(np.sum(entry["counts"]))
    cur_missing, cur_rows = counts["missing"], counts["rows"]
    ref: dict[str, np.ndarray] = {"missing": np.array([present, entry["missing"]])}
    cur: dict[str, np.ndarray] = {"missing": np.array([cur_rows - cur_missing, cur_missing])}
    if entry["kind"] == "numeric":
        ref_views, cur_views = _numeric_views(entry, counts, present)
        return ref | ref_views, cur | cur_views
    bins = np.asarray(counts["categories"])
    ref |= {"bins": np.array([*entry["counts"], 0]), "outside": np.array([present, 0])}
    cur |= {"bins": bins, "outside": np.array([bins[:-1].sum(), bins[-1]])}
    return ref, cur


def _no_data_reason(statistic: Statistic, ref: dict, cur: dict) -> dict | None:
    """Why a statistic cannot be computed for a feature (a detail code), or None when it can."""
    if statistic.counts == "missing":
        if cur["missing"].sum() == 0:
            return {"code": "no_current_rows"}
        return {"code": "no_reference_rows"} if ref["missing"].sum() == 0 else None
    if ref["missing"][0] == 0:
        return {"code": "empty_in_reference"}
    if cur["missing"][0] == 0:
        return {"code": "no_current_rows" if cur["missing"].sum() == 0 else "empty_in_window"}
    return None


def _note(statistic: Statistic, ref: dict, cur: dict, counts: dict) -> dict | None:
    """The numbers behind a computed row worth showing: missing shares, unseen categories."""
    if statistic.counts == "missing":
        shares = [float(side["missing"][1] / side["missing"].sum()) for side in (ref, cur)]
        return {"code": "missing_change", "reference": shares[0], "current": shares[1]}
    if statistic.name == "unseen_share" and counts.get("unseen_values"):
        return {"code": "unseen_values", "values": dict(counts["unseen_values"])}
    return None


def _feature_rows(name: str, entry: dict, counts: dict) -> list[dict]:
    """The rows of one feature, one per statistic of its kind, before the verdicts."""
    ref, cur = _count_views(entry, counts)
    rows = []
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
                "detail": reason or _note(statistic, ref, cur, counts),
                "n_reference": int(ref["missing"].sum()),
                "n_current": int(cur["missing"].sum()),
            }
        )
    return rows


def _status(value: float, thresholds: tuple[float, float]) -> str:
    yellow, red = thresholds
    return "red" if value >= red else "yellow" if value >= yellow else "green"


def worst_status(statuses: list[str] | pd.Series) -> str:
    """The most severe status (``no_data`` only when nothing else is known)."""
    known = [s for s in statuses if s in STATUSES]
    return max(known, key=STATUSES.index) if known else "no_data"


RESULT_COLUMNS = [
    "feature",
    "kind",
    "method",
    "statistic",
    "p_value",
    "p_value_raw",
    "drifted",
    "status",
    "detail",
    "n_reference",
    "n_current",
]


def _verdicts(
    table: pd.DataFrame, limits: dict[str, tuple[float, float]], alpha: float, correction: str
) -> pd.DataFrame:
    """Corrected p-values, statuses and drift flags; rows without data keep ``no_data``."""
    tests = table["method"].isin(TEST_METHODS)
    p_values = adjust_p_values(table["p_value_raw"].to_numpy(dtype=float), correction)
    significant = tests & (p_values < alpha)
    effect_status = [
        _status(v, limits[m]) if m in limits else "green"
        for v, m in zip(table["statistic"], table["method"], strict=True)
    ]
    computed = np.where(tests, np.where(significant, "yellow", "green"), effect_status)
    status = np.where(table["status"].isna(), computed, table["status"])
    drifted = np.where(tests, significant, status == "red").astype(bool)
    return table.assign(p_value=p_values, status=status, drifted=drifted)


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
        no_data) and ``detail`` (a code with its numbers, or None; see the module docstring).
    """
    defaults = MonitoringConfig()
    rows = [
        row for name, entry in profile["features"].items() for row in _feature_rows(name, entry, counts[name])
    ]
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if table.empty:
        return table
    table = _verdicts(
        table,
        {**defaults.thresholds, **(thresholds or {})},
        defaults.p_value if p_value is None else p_value,
        defaults.correction if correction is None else correction,
    )
    return table[RESULT_COLUMNS].reset_index(drop=True)


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    thresholds: dict[str, tuple[float, float]] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Drift of every feature of ``current`` against ``reference`` as one tidy DataFrame.

    Both frames hold raw features; all rows of ``current`` are used (the monitoring job samples
    its windows first). ``options`` go to ``drift_from_counts`` (``p_value``, ``correction``).
    Columns: see ``drift_from_counts``.
    """
    profile = build_reference_profile(reference, numeric, categorical)
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
def output_feature(metadata: registry.ModelMetadata) -> tuple[str, str]:
    """The model-output column monitored for prediction drift and its kind.

    The score distribution (numeric) for binary classification and regression; the predicted-class
    mix (categorical) for multiclass classification.
    """
    if metadata.task == "classification" and len(metadata.classes) > 2:
        return PREDICTION_COLUMN, "categorical"
    return SCORE_COLUMN, "numeric"


def _reference_outputs(models_dir: Path, version: str, reference: pd.DataFrame) -> pd.DataFrame | None:
    """Score the reference with the version's own pipeline when ``reference.parquet`` lacks its outputs."""
    try:
        scored = scoring.predict_frame(registry.load_model(models_dir, version), reference)
    except Exception as exc:  # a missing module or an unscorable reference only disables prediction drift
        logger.warning(
            "no model outputs for the reference of %s (%s): prediction drift skipped", version, exc
        )
        return None
    return pd.DataFrame(
        {
            SCORE_COLUMN: scored["score"].to_numpy(),
            PREDICTION_COLUMN: scored["prediction"].astype(str).to_numpy(),
        }
    )


def version_profile(models_dir: Path, version: str, bins: int = 10) -> dict:
    """Build the reference profile of a saved version: its raw features plus its own output column."""
    metadata = registry.load_metadata(models_dir, version)
    reference = registry.load_reference(models_dir, version)
    column, kind = output_feature(metadata)
    if column not in reference:
        outputs = _reference_outputs(
            models_dir, version, reference.drop(columns=list(OUTPUT_COLUMNS), errors="ignore")
        )
        if outputs is not None:
            reference = reference.assign(**{column: outputs[column].to_numpy()})
    output = column if column in reference else None
    numeric, categorical = list(metadata.numeric_features), list(metadata.categorical_features)
    if output:
        (numeric if kind == "numeric" else categorical).append(output)
    profile = build_reference_profile(reference, numeric, categorical, bins=bins)
    return profile | {"version": version, "output": output}


def profile_path(models_dir: Path, version: str, bins: int) -> Path:
    """Where a version's profile with ``bins`` quantile bins is saved."""
    return models_dir / version / PROFILE_FILE.format(bins=bins)


def load_or_build_profile(models_dir: Path, version: str | None = None, bins: int = 10) -> dict:
    """The reference profile of a version (default: the champion) with ``bins`` bins; built and
    saved if absent.

    Training saves the profile with the configured bins right after saving a version, so
    monitoring reads it; a later change of ``monitoring.bins`` builds and saves one with the new
    bins (once) beside it, so the configured bins always apply.
    """
    version = registry.resolve_version(models_dir, version)
    path = profile_path(models_dir, version, bins)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    profile = version_profile(models_dir, version, bins)
    registry.write_json_atomic(path, profile)
    logger.info("reference profile of %s with %d bins saved to %s", version, bins, path)
    return profile


def clean_current(frame: pd.DataFrame, profile: dict, metadata: registry.ModelMetadata) -> pd.DataFrame:
    """Clean logged raw features as training did (missing tokens, types) before counting."""
    kinds = {name: entry["kind"] for name, entry in profile["features"].items() if name in frame}
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    categorical = [name for name, kind in kinds.items() if kind == "categorical"]
    cleaned = ft_engineering.unify_missing(frame, metadata.na_values)
    return ft_engineering.coerce_types(cleaned, numeric, categorical)
