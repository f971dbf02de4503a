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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import drift
import ft_engineering
import metrics
import registry
import simulation
import store
from settings import ConfigError, MonitoringConfig, Settings, get_settings

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- statistics


# ----------------------------------------------------------------------------- reference profile


# ----------------------------------------------------------------------------- current counts


# ----------------------------------------------------------------------------- drift from counts


def overall_status(feature_statuses: list[str], performance_drops: dict[str, float]) -> str:
    """A window's verdict: the worst feature status, or red when the model's metrics dropped."""
    return "red" if performance_drops else drift.worst_status(feature_statuses)


# ----------------------------------------------------------------------------- profile of a model version


# ----------------------------------------------------------------------------- performance


# ----------------------------------------------------------------------------- history: trends and jumps
EFFECT_METHODS = [s.name for s in drift.STATISTICS if s.decides == "effect"]


def detect_changes(
    history: pd.DataFrame, thresholds: dict[str, tuple[float, float]], windows: int = 5
) -> pd.DataFrame:
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
    return {
        drift.SCORE_COLUMN: "salida del modelo (score)",
        drift.PREDICTION_COLUMN: "salida del modelo (clase predicha)",
    }.get(feature, feature)


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
    statuses = drift.feature_status(results)
    for row in statuses.itertuples():
        if row.status not in ("yellow", "red"):
            continue
        rows = results[(results["feature"] == row.feature) & results["status"].isin(["yellow", "red"])]
        parts = [
            f"{METHOD_LABELS[r.method]} = {r.statistic:.3g}" + (f" ({r.detail})" if r.detail else "")
            for r in rows.itertuples()
        ]
        alerts.append(
            {
                "level": row.status,
                "feature": row.feature,
                "message": f"Deriva en {feature_label(row.feature)}: " + "; ".join(parts),
            }
        )
        red = results[(results["feature"] == row.feature) & (results["status"] == "red")]
        if "missing_share" in red["method"].values:
            recommendations.append(
                {
                    "action": "check_pipeline",
                    "feature": row.feature,
                    "message": f"Revise el pipeline de datos: cambió la proporción de valores faltantes de {row.feature}.",
                }
            )
        if "unseen_share" in red["method"].values:
            recommendations.append(
                {
                    "action": "check_pipeline",
                    "feature": row.feature,
                    "message": f"Revise el origen de {row.feature}: llegan categorías que el modelo no vio al entrenar.",
                }
            )
        if red["method"].isin(["psi", "jensen_shannon", "out_of_range_share"]).any():
            recommendations.append(
                {
                    "action": "review_feature",
                    "feature": row.feature,
                    "message": f"Revise la variable {feature_label(row.feature)}: su distribución cambió respecto al entrenamiento.",
                }
            )
    flagged = changes[changes["trend"] | changes["abrupt"]] if not changes.empty else changes
    for row in flagged.itertuples():
        kind = "tendencia creciente" if row.trend else "salto brusco"
        alerts.append(
            {
                "level": "yellow",
                "feature": row.feature,
                "message": f"{kind.capitalize()} de {METHOD_LABELS[row.method]} en {feature_label(row.feature)} frente a las ventanas anteriores.",
            }
        )
    for metric, worsening in drops.items():
        alerts.append(
            {
                "level": "red",
                "feature": None,
                "message": f"El desempeño empeoró: {metric} está {worsening:.3f} peor que en la evaluación de prueba.",
            }
        )
    red_features = statuses.loc[statuses["status"] == "red", "feature"].tolist()
    reasons = []
    if drops:
        reasons.append("cayó el desempeño con los resultados reales")
    if drift.SCORE_COLUMN in red_features or drift.PREDICTION_COLUMN in red_features:
        reasons.append("cambió la distribución de las predicciones")
    if len(red_features) >= config.retrain_red_features:
        reasons.append(f"{len(red_features)} variables en rojo")
    if reasons:
        recommendations.insert(
            0,
            {
                "action": "retrain",
                "feature": None,
                "message": "Reentrene el modelo con datos recientes: " + ", ".join(reasons) + ".",
            },
        )
    return alerts, recommendations


# ----------------------------------------------------------------------------- the monitoring job


def _iso(when: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(when).tz_convert("UTC").isoformat()


@dataclass(frozen=True)
class MonitoredVersion:
    """What a monitoring run reads once for its model version: the id, metadata and reference profile."""

    version: str
    metadata: registry.ModelMetadata
    profile: dict


def monitored_version(models_dir: Path, version: str | None, bins: int) -> MonitoredVersion:
    """Load the version to monitor (default: the champion) with its metadata and saved profile."""
    version = registry.resolve_version(models_dir, version)
    return MonitoredVersion(
        version,
        registry.load_metadata(models_dir, version),
        drift.load_or_build_profile(models_dir, version, bins),
    )


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
    return window_outcome(
        engine, monitored_version(models_dir, version, config.bins), start, end, config, write, counts
    )


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
        sample, n_rows = store.sample_predictions(
            engine, start, end, config.sample_size, seed=config.seed, model_version=version
        )
        counts = (
            drift.current_counts(profile, drift.clean_current(sample, profile, metadata))
            if len(sample)
            else {}
        )
        n_sampled = len(sample)
    else:
        n_rows = n_sampled = max((c["rows"] for c in counts.values()), default=0)
    run: dict[str, Any] = {
        "window_start": start,
        "window_end": end,
        "model_version": version,
        "n_rows": n_rows,
        "n_sampled": n_sampled,
    }
    if not n_sampled:
        message = f"Sin datos: no hay predicciones del modelo {version} entre {_iso(start)} y {_iso(end)}."
        results = pd.DataFrame(columns=drift.RESULT_COLUMNS)
        summary = {
            "status": "no_data",
            "features": {},
            "alerts": [{"level": "info", "feature": None, "message": message}],
            "recommendations": [],
            "performance": None,
            "changes": [],
        }
    else:
        results = drift.drift_from_counts(
            profile, counts, config.thresholds, config.p_value, config.correction
        )
        outcomes = store.read_outcomes(engine, start, end, version)
        performance = (
            metrics.performance_metrics(outcomes, metadata) if len(outcomes) >= config.min_feedback else None
        )
        primary = metrics.primary_metric(metadata, performance or {})
        drops = (
            metrics.performance_drops(
                performance, metadata.test_metrics, config.performance_drop, [primary]
            )
            if primary
            else {}
        )
        changes = _window_changes(engine, version, start, end, results, config)
        alerts, recommendations = alerts_and_recommendations(results, changes, drops, config)
        statuses = drift.feature_status(results)
        summary = {
            "status": overall_status(statuses["status"].tolist(), drops),
            "features": dict(zip(statuses["feature"], statuses["status"], strict=True)),
            "alerts": alerts,
            "recommendations": recommendations,
            "performance": performance,
            "n_feedback": len(outcomes),
            "performance_drops": drops,
            "changes": changes.loc[
                changes["trend"] | changes["abrupt"], ["feature", "method", "trend", "abrupt"]
            ].to_dict("records")
            if not changes.empty
            else [],
            "output": profile.get("output"),
        }
    summary |= {
        "sample_size": config.sample_size,
        "correction": config.correction,
        "thresholds": config.thresholds,
    }
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
    now = results.loc[results["method"].isin(EFFECT_METHODS), ["feature", "method", "statistic"]].assign(
        window_start=pd.Timestamp(start).tz_convert("UTC")
    )
    if history.empty:
        return now.assign(trend=False, abrupt=False).iloc[0:0]
    combined = pd.concat(
        [history[["window_start", "feature", "method", "statistic"]], now], ignore_index=True
    )
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
    end_ts = pd.Timestamp(end or datetime.now(UTC))
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    anchor = (
        pd.Timestamp(first).tz_convert("UTC")
        if first is not None and pd.Timestamp(first) <= end_ts
        else end_ts
    )
    return backfill_windows(anchor, end_ts, window)[-count:]


def latest_window(
    window: str, end: datetime | None = None, first: datetime | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
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
    window: str,
    first: datetime | None,
    last: datetime | None,
    end: datetime | None = None,
    backfill: bool = False,
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
    return [
        window_outcome(engine, target, s, e, config)
        for s, e in job_windows(window or config.window, first, last, end, backfill)
    ]


def run_backfill(
    engine: Any,
    models_dir: Path,
    config: MonitoringConfig,
    version: str | None = None,
    window: str | None = None,
) -> list[dict]:
    """Monitor every window of the log for a version, oldest first (re-running replaces them)."""
    return run_windows(engine, models_dir, config, version, window, backfill=True)


# ----------------------------------------------------------------------------- simulated traffic


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
        lines.append(
            "  desempeño: " + ", ".join(f"{k}={v:.3f}" for k, v in run["summary"]["performance"].items())
        )
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
    parser = argparse.ArgumentParser(
        prog="model_monitoring.py", description="Monitoreo de deriva del modelo servido."
    )
    parser.add_argument(
        "--config", type=Path, help="otro config.yaml (por defecto el del proyecto o MLOPS_CONFIG)"
    )
    parser.add_argument("--model", help="versión a monitorear (por defecto la campeona)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="monitorea la última ventana (o todo el registro con --backfill)")
    run.add_argument(
        "--window", help="tamaño de la ventana, un offset de pandas: 1D, 12h, 1W (por defecto el del config)"
    )
    run.add_argument("--end", help="fin de la ventana (ISO, UTC); por defecto ahora")
    run.add_argument(
        "--backfill", action="store_true", help="recorre todo el registro de predicciones ventana por ventana"
    )
    run.add_argument("--every", help="repite cada intervalo (offset de pandas, p. ej. 1h) hasta Ctrl+C")
    run.add_argument("--json", action="store_true", help="imprime los resultados en JSON")
    run.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="dask: cuenta todas las filas de cada ventana en un clúster, sin muestrear",
    )
    run.add_argument(
        "--scheduler",
        help="con --engine dask: dirección de un clúster existente (tcp://host:8786); por defecto un LocalCluster",
    )
    run.add_argument(
        "--input",
        help="con --engine dask: exportaciones Parquet del registro (ruta o glob) en lugar de la base de datos",
    )
    sim = commands.add_parser(
        "simulate", help="envía tráfico realista con deriva elegida durante varios días simulados"
    )
    sim.add_argument("--days", type=int, default=10)
    sim.add_argument("--rows-per-day", type=int, default=300)
    sim.add_argument("--drift-start", type=int, default=6, help="primer día (desde 0) con deriva")
    sim.add_argument(
        "--shift", action="append", metavar="COL=DESV", help="desplaza una numérica en desviaciones estándar"
    )
    sim.add_argument("--missing", action="append", metavar="COL=PROP", help="vacía una proporción de valores")
    sim.add_argument(
        "--new-category",
        action="append",
        metavar="COL=PROP",
        help="reemplaza una proporción por una categoría nueva",
    )
    sim.add_argument(
        "--mix",
        action="append",
        metavar="COL=CATEGORIA",
        help="la categoría pasa a ser la mitad de las filas",
    )
    sim.add_argument(
        "--feedback-share", type=float, default=0.5, help="proporción de predicciones con resultado real"
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--api-url", help="envía el tráfico a una API en marcha (todas las filas quedan con la hora actual)"
    )
    return parser


def _monitor_once(
    settings: Settings, engine: Any, args: argparse.Namespace, config: MonitoringConfig
) -> list[dict]:
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
            print(
                "\n".join(describe_run(o) for o in outcomes)
                or "El registro de predicciones está vacío: no hay nada que monitorear."
            )
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
        scenario = simulation.DriftScenario(start_day=args.drift_start, **overrides)
    else:
        metadata = registry.load_metadata(settings.models_dir, args.model)
        data, _ = ft_engineering.load_project_data(settings.config)
        scenario = simulation.default_scenario(
            data.frame, *drift.feature_roles(metadata), start_day=args.drift_start
        )
    started = time.perf_counter()
    report = simulation.simulate_traffic(
        settings,
        engine,
        args.days,
        args.rows_per_day,
        scenario,
        args.feedback_share,
        seed=args.seed,
        version=args.model,
        api_url=args.api_url,
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
        engine = store.open_store(settings.db_url)
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
