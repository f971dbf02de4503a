"""Drift statistics and reference profiles: pure functions over counts (no I/O but the profile file).

Profile + counts, so partial counts merge exactly (e.g. per Dask partition):
``build_reference_profile`` summarises the raw training features once (numeric: sorted distinct
values and counts, quantile bin edges, range, missing; categorical: category counts, missing),
saved with the version per bin count (``load_or_build_profile``); ``current_counts`` counts a
window on the reference's values, bins and categories (+-inf counts as out of range; other
spellings of a category, such as "true" or 1 for True, as that category); ``drift_from_counts``
turns counts into one tidy row per feature and statistic; ``compute_drift`` chains the three.

The statistics (``STATISTICS``), small functions over count arrays (effect sizes also row by row
over 2-D arrays, which the calibration uses):

- ``ks``: two-sample Kolmogorov-Smirnov D (numeric), equal to ``scipy.stats.ks_2samp``; p-value by
  Smirnov's asymptotic formula (``kstwo.sf(D, round(n*m/(n+m)))``, as ``method="asymp"``).
- ``chi_squared``: homogeneity test (categorical) via ``scipy.stats.chi2_contingency`` after
  pooling the categories with expected counts below 5 (``pool_sparse``).
- ``psi``: sum((c - r) * ln(c / r)) over bin shares; only empty bins count as ``EPSILON``.
- ``jensen_shannon``: the Jensen-Shannon *distance* (sqrt of the divergence), log base 2, in [0, 1].
- ``missing_share``, ``out_of_range_share``, ``unseen_share``: absolute change of the share of
  missing values, of values outside the reference [min, max], of categories it never had.

Verdicts: a test (KS, chi-squared) whose p-value, corrected for multiple testing
(``monitoring.correction``), is below ``monitoring.p_value`` is yellow, never red. An effect size
is yellow or red from its limits: the ``monitoring.thresholds``, raised with a calibration
(``calibration.Calibration``) to what noise reaches at the window's size.

Each row's ``detail`` is None or a code with its numbers (``messages.detail_text`` renders it):
``no_current_rows``, ``no_reference_rows``, ``empty_in_reference``, ``empty_in_window`` (why a
statistic is missing), ``missing_change`` (missing shares), ``unseen_values`` (unseen categories).
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
"""The share an empty bin counts as in PSI (0.0001, as Evidently uses), so the log stays finite."""

BOOLEAN_KEYS = {"true": "1", "false": "0"}
"""Boolean spellings matched with 1 and 0 (``spelling_key``)."""

MIN_EXPECTED = 5.0
"""Chi-squared pools the categories whose expected count is below this (``pool_sparse``)."""

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


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = EPSILON) -> Any:
    """Population stability index over the same bins (the last axis; rows of 2-D arrays are
    separate pairs): sum((c - r) * ln(c / r)) over the bin shares, empty bins counted as a share
    of ``epsilon``. Each term is >= 0, so PSI >= 0; NaN when a side has no values."""
    n = reference_counts.sum(axis=-1, keepdims=True)
    m = current_counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(reference_counts == 0, epsilon, reference_counts / n)
        cur = np.where(current_counts == 0, epsilon, current_counts / m)
        value = np.sum((cur - ref) * np.log(cur / ref), axis=-1)
    return _nan_where_empty(value, n, m)


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> Any:
    """Jensen-Shannon distance (sqrt of the divergence, log base 2, in [0, 1]) over the same bins
    (the last axis, like ``psi``); NaN when a side has no values."""
    n = reference_counts.sum(axis=-1, keepdims=True)
    m = current_counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = jensenshannon(reference_counts, current_counts, base=2, axis=-1)
    return _nan_where_empty(value, n, m)


def share_change(reference_counts: np.ndarray, current_counts: np.ndarray) -> Any:
    """Absolute change of the share held by the last bucket (missing, out of range, unseen), along
    the last axis like ``psi``; NaN when a side has no values."""
    n = reference_counts.sum(axis=-1, keepdims=True)
    m = current_counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.abs(current_counts[..., -1:] / m - reference_counts[..., -1:] / n)[..., 0]
    return _nan_where_empty(value, n, m)


def _nan_where_empty(value: np.ndarray, n: np.ndarray, m: np.ndarray) -> Any:
    """``value`` with NaN where either side counted nothing; a float for one pair of arrays."""
    value = np.where((n[..., 0] == 0) | (m[..., 0] == 0), np.nan, value)
    return float(value) if value.ndim == 0 else value


def pool_sparse(table: np.ndarray, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """A 2 x k contingency table with its sparse columns pooled, so chi-squared can be trusted.

    A column is sparse when its expected count (row total x column total / grand total) is below
    ``min_expected`` in either row. The sparse columns are added into one, and the next rarest
    columns join it until that pooled column is not sparse itself (or every column is in it).
    """
    totals = table.sum(axis=0)
    smallest_row = table.sum(axis=1).min()
    needed = min_expected * table.sum() / smallest_row if smallest_row else np.inf
    order = np.argsort(totals, kind="stable")
    pooled = np.zeros(len(totals), dtype=bool)
    pooled[totals < needed] = True
    if not pooled.any():
        return table
    for column in order:
        if totals[pooled].sum() >= needed:
            break
        pooled[column] = True
    return np.column_stack([table[:, ~pooled], table[:, pooled].sum(axis=1)])


def chi_squared(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared homogeneity test on the 2 x bins contingency table, after ``pool_sparse``
    (bins empty in both samples are left out first; scipy's default Yates correction applies when
    the pooled table is 2 x 2). One unseen value among hundreds is then a share, not a test result."""
    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.sum(axis=1).min() == 0:
        return float("nan"), float("nan")
    table = pool_sparse(table)
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


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
def _numeric_values(values: pd.Series, finite: bool = False) -> np.ndarray:
    """A column as float64 with NaN for missing values and text; with ``finite``, infinities too
    (the reference's range is finite; in a window, +-inf is a value beyond it, out of range)."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if finite:
        array[np.isinf(array)] = np.nan
    return array


def _numeric_entry(column: pd.Series, bins: int) -> dict:
    """Profile of a numeric column: sorted distinct values and counts, quantile edges, range, missing."""
    x = _numeric_values(column, finite=True)
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


def spelling_key(text: str) -> str:
    """How a category is matched when its spelling differs from training's: trimmed, lower case,
    whole numbers without decimals and booleans as 1 / 0 (so True, "true", 1 and "1.0" are one
    category, as are False, "FALSE" and 0)."""
    key = str(text).strip().lower()
    try:
        number = float(key)
    except ValueError:
        return BOOLEAN_KEYS.get(key, key)
    return str(int(number)) if number.is_integer() else key


def respell(values: pd.Series, categories: list[str]) -> pd.Series:
    """Values spelled as the reference's ``categories`` where they match one by ``spelling_key``
    (a key two categories share stays unmatched); other values keep their own spelling."""
    keys: dict[str, list[str]] = {}
    for category in categories:
        keys.setdefault(spelling_key(category), []).append(category)
    lookup = {key: found[0] for key, found in keys.items() if len(found) == 1}
    spelled = ft_engineering.as_category_column(values)
    return spelled.map(lambda text: lookup.get(spelling_key(text), text) if isinstance(text, str) else text)


def _categorical_counts(entry: dict, values: pd.Series, top_unseen: int = 20) -> dict:
    """One count per reference category plus the unseen bucket, and the commonest unseen values."""
    missing = values.isna().to_numpy()
    codes = pd.Categorical(values, categories=entry["categories"]).codes.copy()
    unseen = (codes < 0) & ~missing
    if unseen.any():  # other spellings of a category (1.0 or "1" for 1, "true" for True) match it
        spelled = respell(values[unseen], entry["categories"])
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


def reference_views(entry: dict) -> dict[str, np.ndarray]:
    """The reference's arrays of one profile feature, as each statistic reads them."""
    if entry["kind"] == "numeric":
        empty = {"rows": 0, "missing": 0, "grid": [0] * (2 * len(entry["values"]) + 1)}
    else:
        empty = {"rows": 0, "missing": 0, "categories": [0] * (len(entry["categories"]) + 1)}
    return _count_views(entry, empty)[0]


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
    """The rows of one feature, one per statistic of its kind, before the verdicts; ``size`` is
    how many window values the statistic compared (the window size its calibration looks up)."""
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
                "size": int(cur[statistic.counts].sum()),
            }
        )
    return rows


def worst_status(statuses: list[str] | pd.Series) -> str:
    """The most severe status (``no_data`` only when nothing else is known)."""
    known = [s for s in statuses if s in STATUSES]
    return max(known, key=STATUSES.index) if known else "no_data"


RESULT_COLUMNS = (
    "feature kind method statistic p_value p_value_raw drifted status detail "
    "n_reference n_current yellow_limit red_limit"
).split()


def _effect_limits(
    row: Any, floors: dict[str, tuple[float, float]], calibration: Any
) -> tuple[float, float, float]:
    """(yellow limit, red limit, calibrated tail probability) of an effect-size row: the configured
    thresholds, raised to the calibration's no-drift limits at the row's window size when given."""
    yellow, red = floors.get(row.method, (np.inf, np.inf))
    if calibration is None or not calibration.covers(row.feature, row.method):
        return yellow, red, float("nan")
    low, high = calibration.limits(row.feature, row.method, row.size)
    tail = calibration.tail(row.feature, row.method, row.size, row.statistic)
    return max(yellow, low), max(red, high), tail


def _verdicts(
    table: pd.DataFrame,
    floors: dict[str, tuple[float, float]],
    alpha: float,
    correction: str,
    calibration: Any = None,
) -> pd.DataFrame:
    """Limits, p-values, statuses and drift flags; rows without data keep ``no_data``.

    Tests: corrected p-value below ``alpha`` is yellow. Effect sizes: yellow from the yellow
    limit, red from the red limit (``_effect_limits``); their p-value is the calibrated one.
    """
    tests = table["method"].isin(TEST_METHODS).to_numpy()
    effects = [_effect_limits(row, floors, calibration) for row in table.itertuples()]
    yellow, red, tail = (np.array(column, dtype=float) for column in zip(*effects, strict=True))
    p_values = np.where(tests, adjust_p_values(table["p_value_raw"].to_numpy(dtype=float), correction), tail)
    significant = tests & (p_values < alpha)
    value = table["statistic"].to_numpy(dtype=float)
    effect_status = np.where(value >= red, "red", np.where(value >= yellow, "yellow", "green"))
    computed = np.where(tests, np.where(significant, "yellow", "green"), effect_status)
    status = np.where(table["status"].isna(), computed, table["status"])
    return table.assign(
        p_value=p_values,
        p_value_raw=np.where(tests, table["p_value_raw"], tail),
        status=status,
        drifted=np.where(tests, significant, status == "red").astype(bool),
        yellow_limit=np.where(tests, np.nan, yellow),
        red_limit=np.where(tests, np.nan, red),
    )


def drift_from_counts(
    profile: dict,
    counts: dict,
    thresholds: dict[str, tuple[float, float]] | None = None,
    p_value: float | None = None,
    correction: str | None = None,
    calibration: Any = None,
) -> pd.DataFrame:
    """One tidy row per feature and statistic from a profile and a window's counts.

    Args:
        profile: from ``build_reference_profile``.
        counts: from ``current_counts`` (or ``merge_counts``).
        thresholds: {statistic: (yellow, red)}; missing names use ``MonitoringConfig`` defaults.
        p_value: significance level for the tests after correction (default from config).
        correction: ``none``, ``bonferroni`` or ``fdr_bh`` (default from config).
        calibration: the profile's no-drift calibration (``calibration.Calibration``): effect
            sizes are then coloured by the larger of each threshold and the limit noise reaches
            at the window's size, and get a calibrated p-value. Without it, by the thresholds.

    Returns:
        Columns ``RESULT_COLUMNS``: ``statistic`` (NaN when it cannot be computed), ``p_value``
        (tests: corrected; effect sizes: calibrated, NaN without calibration), ``p_value_raw``,
        ``drifted``, ``status`` (green / yellow / red / no_data), ``detail`` (a code with its
        numbers, or None; see the module docstring) and the ``yellow_limit`` / ``red_limit``
        each effect size was judged by.
    """
    defaults = MonitoringConfig()
    rows = [
        row for name, entry in profile["features"].items() for row in _feature_rows(name, entry, counts[name])
    ]
    table = pd.DataFrame(rows, columns=[*RESULT_COLUMNS[:-2], "size"])
    if table.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    table = _verdicts(
        table,
        {**defaults.thresholds, **(thresholds or {})},
        defaults.p_value if p_value is None else p_value,
        defaults.correction if correction is None else correction,
        calibration,
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
    """Build the reference profile of a saved version: its raw features plus its own output column
    (``output_feature``) and, for a multiclass version, also its top-class probability ``__score__``
    (the confidence CBPE estimates accuracy from)."""
    metadata = registry.load_metadata(models_dir, version)
    reference = registry.load_reference(models_dir, version)
    column, kind = output_feature(metadata)
    outputs = [(column, kind)]
    if column == PREDICTION_COLUMN:
        outputs.append((SCORE_COLUMN, "numeric"))
    if any(name not in reference for name, _ in outputs):
        scored = _reference_outputs(
            models_dir, version, reference.drop(columns=list(OUTPUT_COLUMNS), errors="ignore")
        )
        if scored is not None:
            reference = reference.assign(**{name: scored[name].to_numpy() for name, _ in outputs})
    numeric, categorical = list(metadata.numeric_features), list(metadata.categorical_features)
    for name, name_kind in outputs:
        if name in reference:
            (numeric if name_kind == "numeric" else categorical).append(name)
    profile = build_reference_profile(reference, numeric, categorical, bins=bins)
    return profile | {"version": version, "output": column if column in reference else None}


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
