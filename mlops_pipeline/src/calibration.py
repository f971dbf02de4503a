"""How large each drift statistic gets without drift, per window size: the limits windows are
coloured by, the calibrated p-values, and the trend and jump tests built on them.

Why: a window of n rows drawn from the training population still differs from the reference by
chance, and PSI and Jensen-Shannon are biased upward at small n (with 20 rows most quantile bins
are empty). A fixed threshold is therefore noise at small windows and blind at large ones.

How (``build_calibration``, once per model version and bin count, saved beside its profile as
``drift_calibration_<bins>bins.json``): for every feature and effect-size statistic, draw
``draws`` pairs of count vectors from the reference's own shares, the reference at its own size N
and the window at each size of a grid (``window_sizes``), and compute the statistic on each pair,
as NannyML does with reference chunks. Both sides are drawn, so the reference's own sampling noise
is part of the no-drift spread. Shares the reference never shows (out of range, an unseen
category, missing values in a column without them) get Laplace's rule of succession, a chance of
(count + 1) / (N + 2) per value. Each size keeps a few quantiles of the draws and, above the 99th
percentile, the mean excess ``beta``: beyond it the tail is taken as exponential, so rare levels
(1 in 10,000, 1 in a million) are read without millions of draws. Between grid sizes, values are
interpolated linearly in log(n); beyond the grid, the nearest size is used (for n above it, that
is conservative: noise only shrinks with n).

What it decides (``Calibration``):

- ``limits(feature, method, n)``: the values the statistic exceeds without drift with chance
  ``monitoring.calibrated_tail`` = (yellow, red) per statistic and window; ``drift`` colours a row
  by the larger of each limit and the configured threshold (the floor);
- ``tail(feature, method, n, value)``: the calibrated p-value, P(statistic >= value | no drift);
- ``changes``: trends and jumps of each statistic over the stored windows, tested on the normal
  scores z = Phi^-1(1 - p) of those p-values, which are N(0, 1) without drift whatever the window
  sizes (see ``detect_changes``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import drift
import registry

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "drift_calibration_{bins}bins.json"
CALIBRATION_FORMAT = 1
LEVELS = (0.5, 0.75, 0.9, 0.95, 0.99)
"""Quantile levels kept per window size; above the last one the tail is exponential."""
Z_LIMIT = 8.0
"""Normal scores are clipped to +-8, so one enormous window cannot dominate a trend."""


# ----------------------------------------------------------------------------- building
def window_sizes(smallest: int, largest: int) -> list[int]:
    """The calibration grid: ``smallest``, doubling, up to ``largest`` (both included)."""
    sizes, size = [], max(int(smallest), 1)
    while size < largest:
        sizes.append(size)
        size *= 2
    return [*sizes, int(max(largest, smallest))]


def _pairs(view: str, reference: np.ndarray, size: int, draws: int, rng: np.random.Generator):
    """``draws`` pairs (reference, window) of count arrays drawn without drift for one view."""
    total = int(reference.sum())
    if view == "bins":
        shares = reference / total
        return rng.multinomial(total, shares, size=draws), rng.multinomial(size, shares, size=draws)
    if view == "missing":
        chance = (reference[-1] + 1) / (total + 2)
        ref_last, cur_last = rng.binomial(total, chance, draws), rng.binomial(size, chance, draws)
    else:  # outside: the reference lies in its own range; a new value leaves it with Laplace's chance
        ref_last, cur_last = np.zeros(draws, dtype=np.int64), rng.binomial(size, 1 / (total + 2), draws)
    return (np.column_stack([total - ref_last, ref_last]), np.column_stack([size - cur_last, cur_last]))


def _summary(values: np.ndarray, size: int) -> tuple[list[float], float]:
    """The quantiles at ``LEVELS`` and the mean excess above the last (at least 1 / size: the
    statistic's resolution, so a tail is never empty)."""
    quantiles = np.quantile(values, LEVELS)
    above = values[values > quantiles[-1]] - quantiles[-1]
    beta = float(above.mean()) if len(above) else 0.0
    return [float(q) for q in quantiles], max(beta, 1.0 / size)


def _feature_calibration(
    entry: dict, sizes: list[int], draws: int, rng: np.random.Generator
) -> dict[str, dict[str, list]]:
    """The no-drift quantiles and tail of each effect statistic of one feature, per window size."""
    views = drift.reference_views(entry)
    out: dict[str, dict[str, list]] = {}
    for statistic in drift.STATISTICS:
        reference = views.get(statistic.counts)
        if statistic.decides != "effect" or entry["kind"] not in statistic.kinds:
            continue
        if reference is None or reference.sum() == 0:
            continue
        summaries = [
            _summary(statistic.function(*_pairs(statistic.counts, reference, size, draws, rng)), size)
            for size in sizes
        ]
        out[statistic.name] = {
            "quantiles": [quantiles for quantiles, _ in summaries],
            "beta": [beta for _, beta in summaries],
        }
    return out


def build_calibration(profile: dict, sizes: list[int], draws: int = 5000, seed: int = 0) -> dict:
    """The no-drift distribution of every effect statistic of a profile at each window size.

    Args:
        profile: from ``drift.build_reference_profile`` (or ``drift.load_or_build_profile``).
        sizes: the window sizes to calibrate (``window_sizes``).
        draws: simulated (reference, window) pairs per feature, statistic and size.
        seed: for the random draws (the same seed gives the same file).

    Returns:
        JSON-serialisable ``{"format", "bins", "draws", "seed", "sizes", "levels", "features":
        {feature: {statistic: {"quantiles": [[q at LEVELS] per size], "beta": [per size]}}}}``.
    """
    rng = np.random.default_rng(seed)
    features = {
        name: _feature_calibration(entry, sizes, draws, rng) for name, entry in profile["features"].items()
    }
    return {
        "format": CALIBRATION_FORMAT,
        "bins": profile.get("bins"),
        "draws": draws,
        "seed": seed,
        "sizes": list(sizes),
        "levels": list(LEVELS),
        "features": features,
    }


def calibration_path(models_dir: Path, version: str, bins: int) -> Path:
    return models_dir / version / CALIBRATION_FILE.format(bins=bins)


def load_or_build(
    models_dir: Path, version: str, profile: dict, sizes: list[int], draws: int, seed: int = 0
) -> dict:
    """A version's calibration for its ``profile``: read from its folder, or built (a second or
    two) and saved there when absent or made with other sizes, draws or seed."""
    path = calibration_path(models_dir, version, profile.get("bins", 10))
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if (saved.get("sizes"), saved.get("draws"), saved.get("seed")) == (list(sizes), draws, seed):
            return saved
    calibration = build_calibration(profile, sizes, draws, seed)
    registry.write_json_atomic(path, calibration)
    logger.info("drift calibration of %s (%d sizes, %d draws) saved to %s", version, len(sizes), draws, path)
    return calibration


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Calibration:
    """A saved calibration and the tail chances that make a statistic yellow and red."""

    data: dict
    tails: tuple[float, float] = (1e-4, 1e-6)

    def covers(self, feature: str, method: str) -> bool:
        return method in self.data["features"].get(feature, {})

    def _at(self, feature: str, method: str, size: float) -> tuple[np.ndarray, float]:
        """Quantiles and tail mean excess at ``size``, interpolated in log(size) between grid sizes."""
        entry = self.data["features"][feature][method]
        logs = np.log(np.asarray(self.data["sizes"], dtype=float))
        where = math.log(max(float(size), 1.0))
        quantiles = np.asarray(entry["quantiles"], dtype=float)
        at = np.array([np.interp(where, logs, quantiles[:, i]) for i in range(quantiles.shape[1])])
        return np.maximum.accumulate(at), float(np.interp(where, logs, entry["beta"]))

    def value_at(self, feature: str, method: str, size: float, tail: float) -> float:
        """The value the statistic exceeds without drift with chance ``tail`` (<= 1 - the top level)."""
        quantiles, beta = self._at(feature, method, size)
        top = 1 - self.data["levels"][-1]
        if tail >= top:
            return float(np.interp(1 - tail, self.data["levels"], quantiles))
        return float(quantiles[-1] + beta * math.log(top / tail))

    def limits(self, feature: str, method: str, size: float) -> tuple[float, float]:
        """The (yellow, red) limits of a statistic at a window size: exceeded by chance with
        probability ``tails`` (per statistic and window)."""
        return tuple(self.value_at(feature, method, size, tail) for tail in self.tails)

    def tail(self, feature: str, method: str, size: float, value: float) -> float:
        """The calibrated p-value: the chance of a value at least ``value`` without drift (values
        below the median get 0.5 to 1, read linearly from the median down to zero)."""
        if not np.isfinite(value):
            return float("nan")
        quantiles, beta = self._at(feature, method, size)
        levels = np.asarray(self.data["levels"], dtype=float)
        if value >= quantiles[-1]:
            return float((1 - levels[-1]) * math.exp(-(value - quantiles[-1]) / beta))
        if value <= quantiles[0]:
            return float(1 - levels[0] * value / quantiles[0]) if quantiles[0] > 0 else 1.0
        return float(1 - np.interp(value, quantiles, levels))


def normal_scores(p_values: Any) -> np.ndarray:
    """z = Phi^-1(1 - p), counting rises only: 0 for p >= 0.5, at most ``Z_LIMIT``. Without drift
    P(z >= c) = P(p <= 1 - Phi(c)), the normal tail, whatever the window sizes."""
    return np.clip(stats.norm.isf(np.asarray(p_values, dtype=float)), 0.0, Z_LIMIT)


def summary_limits(results: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """The limits a window's effect sizes were judged by, as its summary stores them:
    ``{feature: {method: [yellow, red]}}``."""
    rows = results.dropna(subset=["yellow_limit", "red_limit"])
    limits: dict[str, dict[str, list[float]]] = {}
    for row in rows.itertuples():
        limits.setdefault(row.feature, {})[row.method] = [float(row.yellow_limit), float(row.red_limit)]
    return limits


# ----------------------------------------------------------------------------- trends and jumps
def jump_p_values(z: pd.DataFrame, windows: int) -> pd.DataFrame:
    """One-sided p-value of each window's rise (rows: windows in time order; columns: series) above
    the largest z of the previous ``windows`` windows (3 or more known): without drift a rise of c
    above values >= 0 needs z >= c, so P <= 1 - Phi(c). A step is a jump once: after it, the
    previous windows hold the step."""
    previous = z.shift(1).rolling(windows, min_periods=3).max()
    return pd.DataFrame(stats.norm.sf(z - previous), index=z.index, columns=z.columns)


def trend_p_values(z: pd.DataFrame, windows: int) -> pd.DataFrame:
    """One-sided p-value of the least-squares slope of z over the ``windows`` windows ending at each
    (all known). Without drift the slope's variance is at most 12 / (W (W^2 - 1)) (z has variance
    <= 1) and its p-value is read from the normal tail with that variance: conservative here, as
    z is never below 0, and ``bench_verdicts.py`` measures the rate."""
    p = np.full(z.shape, np.nan)
    if len(z) >= windows:
        positions = np.arange(windows) - (windows - 1) / 2
        runs = np.lib.stride_tricks.sliding_window_view(z.to_numpy(dtype=float), windows, axis=0)
        slopes = runs @ positions / (positions @ positions)
        p[windows - 1 :] = stats.norm.sf(slopes * math.sqrt(positions @ positions))
    return pd.DataFrame(p, index=z.index, columns=z.columns)


def detect_changes(history: pd.DataFrame, windows: int = 5, p_value: float = 0.002) -> pd.DataFrame:
    """Trends and jumps of the calibrated effect sizes over consecutive windows, with a stated
    false-alarm rate.

    Each series (feature, method) is read as normal scores z (``normal_scores`` of its calibrated
    p-values). A window is a **jump** when its z rises above the largest of the previous
    ``windows`` windows (3 or more) beyond chance, and ends a **trend** when the slope of the last ``windows``
    z's is positive beyond chance and no jump lies inside that run (a rise that contains a jump is
    the jump). "Beyond chance": the one-sided p-value times 2 x the number of series (Bonferroni
    over both tests and every series) is below ``p_value``, so without drift a window raises a
    trend or jump alert with probability at most ``p_value``.

    Args:
        history: rows with ``window_start``, ``feature``, ``method`` and the calibrated
            ``p_value`` (``monitoring_history.read_drift_history``); tests and rows without one are
            left unmarked.
        windows: the trend span, and how many previous windows a jump is judged against.
        p_value: the false-alarm rate per window.

    Returns:
        ``history`` sorted by time with ``z``, ``trend`` and ``abrupt`` columns.
    """
    out = history.drop(columns=["z", "trend", "abrupt"], errors="ignore")
    out = out.sort_values("window_start", kind="stable").reset_index(drop=True)
    effects = out["method"].isin(drift.EFFECT_METHODS) & out["p_value"].notna()
    out["z"] = np.where(effects, normal_scores(out["p_value"].fillna(1.0)), np.nan)
    z = out[effects].pivot_table(
        index="window_start", columns=["feature", "method"], values="z", aggfunc="last"
    )
    if z.empty:
        return out.assign(trend=False, abrupt=False)
    tests = 2 * z.shape[1]
    abrupt = jump_p_values(z, windows) * tests < p_value
    jump_inside = abrupt.astype(float).rolling(windows - 1, min_periods=1).max().astype(bool)
    trend = (trend_p_values(z, windows) * tests < p_value) & ~jump_inside
    windows_of, series = np.repeat(z.index, z.shape[1]), np.tile(np.arange(z.shape[1]), len(z))
    flags = pd.DataFrame(
        {
            "window_start": windows_of,
            "feature": z.columns.get_level_values("feature")[series],
            "method": z.columns.get_level_values("method")[series],
            "abrupt": abrupt.to_numpy().ravel(),
            "trend": trend.to_numpy().ravel(),
        }
    )
    out = out.merge(flags, on=["window_start", "feature", "method"], how="left")
    return out.assign(trend=out["trend"].eq(True), abrupt=out["abrupt"].eq(True))
