"""Drift monitoring of the served model: the monitoring job (windows, verdicts, alerts, history) and its CLI.

A run picks its windows on one grid (``monitoring_windows``). For each window it samples at most
``monitoring.sample_size`` logged predictions (or, with ``--engine dask``, counts every row of the
window on a cluster: ``dask_engine.ClusterLog``). A window with fewer than ``monitoring.min_rows``
of them is ``insufficient_data``: it gets no colour. Otherwise the job computes drift against the
version's reference profile (``drift``), each effect size judged by the limits noise reaches at
the window's size (``calibration``), the realized performance with its confidence interval from
the outcomes that arrived in the window and the estimated one from its predictions
(``performance``), trends and jumps against the stored history (``calibration.detect_changes``),
alerts and recommendations, and writes it all as history
(``monitoring_history.write_monitoring_run``).

The history holds codes and numbers, never sentences: an alert is
``{"level": "red", "code": "feature_drift", "feature": "Income", "statistics": [...]}``, a
recommendation ``{"action": "retrain", "code": "retrain", "reasons": [...]}``; ``messages``
renders them in Spanish for the CLI and the dashboard. ``compare`` is the shadow comparison of a
challenger with the champion on the logged inputs with feedback (`shadow`), stored for the dashboard
and the promotion guard of ``PUT /models/default``.

CLI::

    python mlops_pipeline/src/model_monitoring.py run [--backfill] [--window 12h] [--engine dask]
    python mlops_pipeline/src/model_monitoring.py simulate [--days 10] [--shift Age=1]
    python mlops_pipeline/src/model_monitoring.py compare --challenger VERSION [--since 2026-12-01]
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
from typing import TYPE_CHECKING, Any

import pandas as pd

import alerts
import calibration
import drift
import ft_engineering
import messages
import monitoring_history
import performance
import registry
import shadow
import simulation
import store
from settings import ConfigError, MonitoringConfig, Settings, get_settings

if TYPE_CHECKING:
    import dask_engine

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- windows
def _offset(window: str) -> pd.DateOffset:
    try:
        return pd.tseries.frequencies.to_offset(window)
    except ValueError as exc:
        raise ValueError(f"'{window}' no es un intervalo de pandas como 1D, 12h o 1W") from exc


def _utc(when: datetime | pd.Timestamp) -> pd.Timestamp:
    """A time as a UTC timestamp (naive times are read as UTC)."""
    when = pd.Timestamp(when)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def _iso(when: datetime | pd.Timestamp) -> str:
    return _utc(when).isoformat()


def monitoring_windows(
    window: str,
    first: datetime | None,
    last: datetime | None,
    end: datetime | None = None,
    backfill: bool = False,
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The windows a run monitors, oldest first, on one grid of ``window``-long windows that starts
    at midnight UTC of the log's first prediction ``first`` (None when the log is empty).

    With ``backfill``: every window up to the one holding the last prediction ``last``. Otherwise:
    the window containing ``end`` (default: now) and the previous one, so that one is closed with
    all its rows; when ``end`` precedes the log, the grid starts at ``end``'s day. Since ``run``
    and ``run --backfill`` share the grid, a re-run replaces a window instead of overlapping it.

    Raises:
        ValueError: when ``window`` is not a pandas offset.
    """
    offset = _offset(window)
    if backfill:
        if first is None:
            return []
        edge, stop = _utc(first).normalize(), _utc(last)
    else:
        stop = _utc(end or datetime.now(UTC))
        edge = (_utc(first) if first is not None and _utc(first) <= stop else stop).normalize()
    windows = []
    while edge <= stop:
        windows.append((edge, edge + offset))
        edge = edge + offset
    return windows if backfill else windows[-2:]


# ----------------------------------------------------------------------------- history: trends and jumps
def window_changes(
    history: pd.DataFrame, results: pd.DataFrame, start: datetime, config: MonitoringConfig
) -> pd.DataFrame:
    """Trend and jump flags of a window's effect sizes (``results``, the window starting at
    ``start``) against the previous windows' rows in ``history`` (``window_start``, ``feature``,
    ``method``, ``p_value``): ``calibration.detect_changes`` over the last ``2 * trend_windows``."""
    columns = ["window_start", "feature", "method", "p_value"]
    history = history[history["method"].isin(drift.EFFECT_METHODS) & (history["window_start"] < _utc(start))]
    recent = history["window_start"].drop_duplicates().nlargest(2 * config.trend_windows)
    now = results.loc[results["method"].isin(drift.EFFECT_METHODS), columns[1:]].assign(
        window_start=_utc(start)
    )
    combined = pd.concat([history.loc[history["window_start"].isin(recent), columns], now[columns]])
    flagged = calibration.detect_changes(combined, config.trend_windows, config.change_p_value)
    return flagged[flagged["window_start"] == _utc(start)].reset_index(drop=True)


def _window_changes(
    engine: Any, version: str, start: datetime, end: datetime, results: pd.DataFrame, config: MonitoringConfig
) -> pd.DataFrame:
    """``window_changes`` against the stored history of the version's previous windows."""
    # Twice the trend span back, so a jump a few windows back is still seen as a jump.
    since = pd.Timestamp(start) - 2 * config.trend_windows * (pd.Timestamp(end) - pd.Timestamp(start))
    history = monitoring_history.read_drift_history(engine, model_version=version, start=since, end=start)
    return window_changes(history, results, start, config)


# ----------------------------------------------------------------------------- the monitoring job
@dataclass(frozen=True)
class MonitoredVersion:
    """What a monitoring run reads once for its model version: the id, metadata, reference
    profile, its no-drift calibration and its CBPE calibration (None when saved without one)."""

    version: str
    metadata: registry.ModelMetadata
    profile: dict
    calibration: calibration.Calibration
    performance: dict | None


def monitored_version(models_dir: Path, version: str | None, config: MonitoringConfig) -> MonitoredVersion:
    """Load the version to monitor (default: the champion) with its ``config.bins``-bin profile and
    the calibrations its windows are judged by (the drift one is built and saved on first use)."""
    version = registry.resolve_version(models_dir, version)
    profile = drift.load_or_build_profile(models_dir, version, config.bins)
    sizes = calibration.window_sizes(config.min_rows, config.sample_size)
    noise = calibration.load_or_build(models_dir, version, profile, sizes, config.calibration_draws)
    return MonitoredVersion(
        version,
        registry.load_metadata(models_dir, version),
        profile,
        calibration.Calibration(noise, tuple(config.calibrated_tail)),
        performance.load_calibration(models_dir, version),
    )


def _sampled_counts(
    engine: Any, target: MonitoredVersion, start: datetime, end: datetime, config: MonitoringConfig
) -> tuple[dict, int, int]:
    """Counts of a sample of the window's predictions: (counts, rows in the window, rows sampled)."""
    sample, n_rows = store.sample_predictions(
        engine, start, end, config.sample_size, seed=config.seed, model_version=target.version
    )
    if not len(sample):
        return {}, n_rows, 0
    cleaned = drift.clean_current(sample, target.profile, target.metadata)
    return drift.current_counts(target.profile, cleaned), n_rows, len(sample)


def judge(
    target: MonitoredVersion, counts: dict, n_sampled: int, config: MonitoringConfig
) -> tuple[str | None, pd.DataFrame]:
    """A window's drift rows from its counts, judged by the version's calibrated limits; or, with
    no rows, why it gets no colour: ``no_data`` (no predictions) or ``insufficient_data`` (fewer than
    ``config.min_rows`` sampled)."""
    if n_sampled < max(config.min_rows, 1):
        return ("insufficient_data" if n_sampled else "no_data"), pd.DataFrame(columns=drift.RESULT_COLUMNS)
    results = drift.drift_from_counts(
        target.profile, counts, config.thresholds, config.p_value, config.correction, target.calibration
    )
    return None, results


def _window_summary(
    engine: Any,
    target: MonitoredVersion,
    window: tuple[datetime, datetime],
    counts: dict,
    results: pd.DataFrame,
    config: MonitoringConfig,
) -> dict:
    """Verdict, per-feature statuses, alerts, recommendations, performance (realized and
    estimated), changes and the limits of a window."""
    start, end = window
    outcomes = store.read_outcomes(engine, start, end, target.version)
    realized = performance.realized_performance(outcomes, target.metadata, config, config.seed)
    estimated = performance.estimate(target.profile, counts, target.performance, target.metadata)
    changes = _window_changes(engine, target.version, start, end, results, config)
    raised, recommendations = alerts.alerts_and_recommendations(results, changes, realized, config)
    statuses = drift.feature_status(results)
    flagged = changes.loc[changes["trend"] | changes["abrupt"], ["feature", "method", "trend", "abrupt"]]
    drops = alerts.performance_drops(realized)
    return {
        "status": alerts.overall_status(statuses["status"].tolist(), drops),
        "features": dict(zip(statuses["feature"], statuses["status"], strict=True)),
        "alerts": raised,
        "recommendations": recommendations,
        "performance": realized["metrics"] if realized else None,
        "realized": {k: v for k, v in realized.items() if k != "metrics"} if realized else None,
        "estimated": performance.compare(estimated, realized),
        "n_feedback": len(outcomes),
        "performance_drops": drops,
        "changes": flagged.to_dict("records"),
        "output": target.profile.get("output"),
        "limits": calibration.summary_limits(results),
    }


def _unjudged_summary(
    status: str, target: MonitoredVersion, window: tuple, n_sampled: int, config: MonitoringConfig
) -> dict:
    """The summary of a window without a verdict: ``no_data`` (no predictions) or ``insufficient_data``
    (fewer than ``min_rows``), with an informative alert."""
    start, end = window
    alert = {"level": "info", "code": status, "feature": None, "version": target.version}
    alert |= {"start": _iso(start), "end": _iso(end), "rows": n_sampled, "min_rows": config.min_rows}
    return {
        "status": status,
        "features": {},
        "alerts": [alert],
        "recommendations": [],
        "performance": None,
        "changes": [],
    }


def _stored(results: pd.DataFrame) -> pd.DataFrame:
    """The results as the history stores them: each detail code as JSON text."""
    return results.assign(detail=[json.dumps(d) if d else None for d in results["detail"]])


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
    ``[start, end)``; below ``config.min_rows`` of them the window is ``insufficient_data`` (no
    colour). Otherwise computes drift for every feature and the model output against the
    calibrated limits, the realized performance with its interval from the outcomes that arrived
    in the window (whenever their predictions were made; `store.read_outcomes`) and the estimated
    one (CBPE) from the window's predictions, trends and jumps against previous windows, alerts and
    recommendations; writes a run and its per-feature rows
    (``monitoring_history.write_monitoring_run``). Given ``counts`` (``drift.current_counts`` of
    every row of the window, e.g. merged over Dask partitions), nothing is sampled and the drift
    comes from those counts.

    Returns:
        ``{"run_id", "run": {window_start, window_end, model_version, n_rows, n_sampled, status,
        summary}, "results": tidy DataFrame (``drift.RESULT_COLUMNS``)}``; status ``no_data``
        when the window is empty.
    """
    if counts is None:
        counts, n_rows, n_sampled = _sampled_counts(engine, target, start, end, config)
    else:
        n_rows = n_sampled = max((c["rows"] for c in counts.values()), default=0)
    unjudged, results = judge(target, counts, n_sampled, config)
    if unjudged:
        summary = _unjudged_summary(unjudged, target, (start, end), n_sampled, config)
    else:
        summary = _window_summary(engine, target, (start, end), counts, results, config)
    summary |= {
        "sample_size": config.sample_size,
        "correction": config.correction,
        "thresholds": config.thresholds,
        "min_rows": config.min_rows,
    }
    run = {
        "window_start": start,
        "window_end": end,
        "model_version": target.version,
        "n_rows": n_rows,
        "n_sampled": n_sampled,
        "status": summary["status"],
        "summary": summary,
    }
    run_id = monitoring_history.write_monitoring_run(engine, run, _stored(results)) if write else None
    return {"run_id": run_id, "run": run, "results": results}


def monitor_window(
    engine: Any,
    models_dir: Path,
    start: datetime,
    end: datetime,
    config: MonitoringConfig,
    version: str | None = None,
    write: bool = True,
) -> dict:
    """``window_outcome`` of one window for ``version`` (default: the champion), loaded here."""
    target = monitored_version(models_dir, version, config)
    return window_outcome(engine, target, start, end, config, write)


def run_windows(
    engine: Any,
    models_dir: Path,
    config: MonitoringConfig,
    version: str | None = None,
    window: str | None = None,
    end: datetime | None = None,
    backfill: bool = False,
    log: dask_engine.ClusterLog | None = None,
) -> list[dict]:
    """Monitor the ``monitoring_windows`` of a version's log, oldest first (re-running replaces them).

    Each window is sampled from the store; given ``log`` (``dask_engine.cluster_log``), every row
    of each window is counted on a Dask cluster instead, from the store or from Parquet exports
    of the log, and the outcome is computed from those counts exactly as from a sample.
    """
    target = monitored_version(models_dir, version, config)
    if log is None:
        first, last = store.prediction_time_range(engine, target.version)
    else:
        first, last = log.time_range(target.version)
    outcomes = []
    for start, stop in monitoring_windows(window or config.window, first, last, end, backfill):
        counts = (
            None if log is None else log.counts(start, stop, target.version, target.profile, target.metadata)
        )
        outcomes.append(window_outcome(engine, target, start, stop, config, counts=counts))
    return outcomes


def run_backfill(
    engine: Any,
    models_dir: Path,
    config: MonitoringConfig,
    version: str | None = None,
    window: str | None = None,
) -> list[dict]:
    """Monitor every window of the log for a version, oldest first (re-running replaces them)."""
    return run_windows(engine, models_dir, config, version, window, backfill=True)


# ----------------------------------------------------------------------------- CLI
def run_as_json(outcome: dict) -> dict:
    """A monitoring outcome as plain JSON (for ``run --json``): codes and numbers, as stored."""
    run = outcome["run"]
    return {
        "run_id": outcome["run_id"],
        **{k: (_iso(v) if k.startswith("window") else v) for k, v in run.items()},
        "results": json.loads(outcome["results"].to_json(orient="records")),
    }


def describe_run(outcome: dict) -> str:
    """A short Spanish report of one monitoring window for the terminal."""
    run = outcome["run"]
    summary = run["summary"]
    lines = [
        f"Ventana {_iso(run['window_start'])} -> {_iso(run['window_end'])}: "
        f"{messages.status_text(run['status']).upper()} ({run['n_rows']} predicciones, "
        f"{run['n_sampled']} en la muestra, modelo {run['model_version']})"
    ]
    lines += [f"  [{a['level']}] {messages.alert_text(a)}" for a in summary["alerts"]]
    lines += [f"  -> {messages.recommendation_text(r)}" for r in summary["recommendations"]]
    lines += [f"  {line}" for line in messages.performance_lines(summary)]
    return "\n".join(lines)


def _pairs(values: list[str] | None, cast: Callable[[str], Any]) -> dict[str, Any] | None:
    """Parse ``COLUMN=VALUE`` options."""
    if not values:
        return None
    parsed = {}
    for item in values:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ValueError(f"se esperaba COLUMNA=VALOR y llegó '{item}'")
        parsed[column] = cast(value)
    return parsed


def _add_run_parser(commands: Any) -> None:
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
        help="con --engine dask: dirección de un clúster existente (tcp://host:8786); "
        "por defecto un LocalCluster",
    )
    run.add_argument(
        "--input",
        help="con --engine dask: exportaciones Parquet del registro (ruta o glob) "
        "en lugar de la base de datos",
    )


def _add_simulate_parser(commands: Any) -> None:
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
    sim.add_argument(
        "--label-delay-hours",
        type=float,
        default=12.0,
        help="el resultado real llega entre 0 y estas horas después de la predicción",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--api-url", help="envía el tráfico a una API en marcha (todas las filas quedan con la hora actual)"
    )


def _add_compare_parser(commands: Any) -> None:
    compare = commands.add_parser(
        "compare", help="compara en sombra un retador con el campeón en las entradas con resultado real"
    )
    compare.add_argument(
        "--challenger", required=True, help="versión retadora (ls mlops_pipeline/artifacts/models)"
    )
    compare.add_argument("--champion", help="versión campeona (por defecto la actual)")
    compare.add_argument("--since", help="solo las entradas registradas desde esa fecha (AAAA-MM-DD, UTC)")
    compare.add_argument(
        "--resamples", type=int, help="remuestras del bootstrap (por defecto monitoring.bootstrap_draws)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model_monitoring.py", description="Monitoreo de deriva del modelo servido."
    )
    parser.add_argument(
        "--config", type=Path, help="otro config.yaml (por defecto el del proyecto o MLOPS_CONFIG)"
    )
    parser.add_argument("--model", help="versión a monitorear (por defecto la campeona)")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(commands)
    _add_simulate_parser(commands)
    _add_compare_parser(commands)
    return parser


def _monitor_once(
    settings: Settings, engine: Any, args: argparse.Namespace, config: MonitoringConfig
) -> list[dict]:
    """One pass of ``run``: windows sampled here, or with ``--engine dask`` counted on a cluster."""
    end = pd.Timestamp(args.end) if args.end else None
    options = {"version": args.model, "window": args.window, "end": end, "backfill": args.backfill}
    if args.engine == "local":
        return run_windows(engine, settings.models_dir, config, **options)
    import dask_engine

    with dask_engine.dask_client(args.scheduler) as client:
        log = dask_engine.cluster_log(client, engine, settings.db_url, args.input, progress=not args.json)
        return run_windows(engine, settings.models_dir, config, **options, log=log)


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


def _scenario(settings: Settings, args: argparse.Namespace) -> simulation.DriftScenario:
    """The drift the options ask for, or the simulator's default scenario for the version's columns."""
    overrides = {
        "shift": _pairs(args.shift, float),
        "missing": _pairs(args.missing, float),
        "new_category": _pairs(args.new_category, float),
        "mix": _pairs(args.mix, str),
    }
    if any(overrides.values()):
        return simulation.DriftScenario(start_day=args.drift_start, **overrides)
    metadata = registry.load_metadata(settings.models_dir, args.model)
    data, _ = ft_engineering.load_project_data(settings.config)
    return simulation.default_scenario(
        data.frame, metadata.numeric_features, metadata.categorical_features, start_day=args.drift_start
    )


def _simulate_command(settings: Settings, engine: Any, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report = simulation.simulate_traffic(
        settings,
        engine,
        args.days,
        args.rows_per_day,
        _scenario(settings, args),
        args.feedback_share,
        seed=args.seed,
        version=args.model,
        api_url=args.api_url,
        label_delay_hours=args.label_delay_hours,
    )
    print(
        f"Simulados {len(report['days'])} días, {report['rows']} predicciones y {report['feedback']} "
        f"resultados reales en {time.perf_counter() - started:.1f} s (modelo {report['version']}).\n"
        f"Deriva desde el día {args.drift_start} en: {', '.join(report['features'])}.\n"
        "Siguiente paso: python mlops_pipeline/src/model_monitoring.py run --backfill"
    )
    return 0


def _since(text: str | None) -> pd.Timestamp | None:
    """``--since`` as midnight UTC of that day."""
    if text is None:
        return None
    try:
        return _utc(pd.Timestamp(text)).normalize()
    except ValueError as exc:
        raise ValueError(f"--since espera una fecha AAAA-MM-DD y llegó '{text}'") from exc


def _compare_command(settings: Settings, engine: Any, args: argparse.Namespace) -> int:
    """``compare``: the shadow comparison of ``--challenger`` against the champion, stored and printed."""
    config, since = settings.config.monitoring, _since(args.since)
    resamples = config.bootstrap_draws if args.resamples is None else args.resamples
    if resamples < 100:
        raise ValueError(f"--resamples debe ser al menos 100 (llegó {resamples})")
    try:
        champion, challenger = shadow.load_pair(settings.models_dir, args.challenger, args.champion)
        result = shadow.compare(engine, champion, challenger, since, n_boot=resamples, seed=config.seed)
    except shadow.CannotCompare as exc:
        print(f"Error: {exc.spanish}", file=sys.stderr)
        return 2
    row = shadow.read_comparison(engine, shadow.write_comparison(engine, result, since, source="cli"))
    table = messages.comparison_table(row["metrics"], row["level"])
    print(messages.comparison_header(row), table.to_markdown(index=False, floatfmt=".4f"), sep="\n\n")
    print(f"\n{messages.comparison_conclusion(row)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``run``, ``simulate`` and ``compare``; user errors print a message and return 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings(mlops_config=args.config)
        engine = store.open_store(settings.db_url)
        if args.command == "simulate":
            return _simulate_command(settings, engine, args)
        if args.command == "compare":
            return _compare_command(settings, engine, args)
        return _run_command(settings, engine, args)
    except (ConfigError, registry.ModelNotFoundError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
