"""Benchmark of the monitoring verdicts (a script, not a test): false alarms without drift, detection
of the simulated drifts, performance alerts and CBPE, with the shipped monitoring defaults.

Windows are drawn (with replacement) from the shipped data, scored by the champion and judged by
the same functions the monitoring job runs (``model_monitoring.judge``, ``window_changes``,
``alerts_and_recommendations``, ``performance``), against the champion's saved reference.

1. No-drift windows of 1, 5, 20, 50, 300 and 5,000 rows (``--windows`` each): share of windows
   red, yellow, green and insufficient_data.
2. ``--histories`` noise-only histories of 20 windows of 300 rows: how many raise any alert
   (a yellow or red feature, a trend, a jump) and how many a trend or jump alert.
3. Each ``simulate`` drift (shift, missing, new category, mix) alone, 300 rows a window: share of
   windows red on the drifted feature and on no other input feature (and how often the model
   output is red too).
4. No drift, 30 to 500 labels a window, drawn from the held-out test rows: share of windows red
   for performance (and, for comparison, the old rule: the point estimate 0.05 below the test value).
5. CBPE on windows of 2,000 rows: without concept drift, the share of windows whose estimated
   ROC-AUC is within 0.03 of the realized one; under covariate shift (rows of the shipped data
   resampled with weights exp(+-1.5 * (2 * rank - 1)) of one feature, labels kept with their rows),
   the mean estimated and realized ROC-AUC per shift, and in how many of the shifts that move the
   realized ROC-AUC by more than 0.01 the estimate moves the same way.

Usage: python mlops_pipeline/benchmarks/bench_verdicts.py [--models-dir DIR] [--windows 200]
       [--histories 100] [--seed 0] [--parts no_drift histories ...] [--min-rows N] [--json out.json]
Without a champion in ``--models-dir`` (default: the project's artifacts), the shipped config is
trained first, into a temporary folder (about a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import alerts

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import drift
import ft_engineering
import model_monitoring
import performance
import registry
import scoring
import simulation
from settings import Settings, get_settings

NO_DRIFT_SIZES = (1, 5, 20, 50, 300, 5000)
LABEL_SIZES = (30, 50, 100, 200, 500)
SHIFTS = (-1.5, 1.5)
SHIFTED = ("Seniority", "Age", "Income", "Amount", "Expenses")
MOVED = 0.01
"""A covariate shift "moves" the realized ROC-AUC when its mean changes by more than this."""


def champion_dir(models_dir: Path | None, scratch: Path) -> Path:
    """A models folder with a champion: the one given, the project's, or a fresh default training."""
    for folder in [models_dir, get_settings().models_dir]:
        if folder is not None and registry.champion_version(Path(folder)):
            return Path(folder)
    from model_training_evaluation import train

    print("no champion found: training the shipped config (about a minute)...", flush=True)
    settings = Settings(mlops_artifacts_dir=scratch)
    train(settings)
    return settings.models_dir


def logged(model: registry.LoadedModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Raw feature rows as the log holds them: with the model's score and predicted class."""
    outputs = scoring.predict_frame(model, rows, flat=True)
    return rows.assign(
        __score__=outputs["score"].to_numpy(), __prediction__=outputs["prediction"].astype(str).to_numpy()
    )


def judged(
    target: model_monitoring.MonitoredVersion, window: pd.DataFrame, config
) -> tuple[str, pd.DataFrame]:
    """A window's verdict (green, yellow, red, insufficient_data) and drift rows, as the job decides."""
    cleaned = drift.clean_current(window, target.profile, target.metadata)
    counts = drift.current_counts(target.profile, cleaned)
    unjudged, results = model_monitoring.judge(target, counts, len(window), config)
    return unjudged or drift.worst_status(drift.feature_status(results)["status"]), results


def no_drift(target, scored: pd.DataFrame, config, windows: int, rng) -> dict:
    """Share of each verdict per window size, on windows drawn from the scored shipped data."""
    out = {}
    for size in NO_DRIFT_SIZES:
        verdicts = [
            judged(target, scored.sample(size, replace=True, random_state=rng.integers(2**31)), config)[0]
            for _ in range(windows)
        ]
        out[size] = {s: verdicts.count(s) / windows for s in ("red", "yellow", "green", "insufficient_data")}
        print(f"  {size:>5} rows: {out[size]}", flush=True)
    return out


def noise_histories(target, scored: pd.DataFrame, config, histories: int, rng) -> dict:
    """How many noise-only histories of 20 windows of 300 rows raise any alert, and a change alert."""
    any_alert = change_alert = 0
    days = pd.date_range("2026-01-01", periods=20, freq="D", tz="UTC")
    for _ in range(histories):
        history, alerted, changed = [], False, False
        for start in days:
            window = scored.sample(300, replace=True, random_state=rng.integers(2**31))
            _, results = judged(target, window, config)
            past = pd.concat(history) if history else results.iloc[0:0].assign(window_start=start)
            changes = model_monitoring.window_changes(past, results, start, config)
            raised, _ = alerts.alerts_and_recommendations(results, changes, None, config)
            alerted |= any(a["level"] in ("yellow", "red") for a in raised)
            changed |= any(a["code"] in ("trend", "jump") for a in raised)
            history.append(results.assign(window_start=start))
        any_alert, change_alert = any_alert + alerted, change_alert + changed
    return {"histories": histories, "any_alert": any_alert, "trend_or_jump": change_alert}


def scenarios(target, model, data: ft_engineering.Dataset, reference, config, windows: int, rng) -> dict:
    """Per simulated drift alone: share of windows red on exactly the drifted input feature."""
    full = simulation.default_scenario(data.frame, data.roles.numeric, data.roles.categorical, start_day=0)
    out = {}
    for kind in ("shift", "missing", "new_category", "mix"):
        scenario = simulation.DriftScenario(start_day=0, **{kind: getattr(full, kind)})
        exact = output_red = 0
        for _ in range(windows):
            rows = data.X.sample(300, replace=True, random_state=rng.integers(2**31)).reset_index(drop=True)
            window = logged(model, simulation.apply_drift(rows, scenario, reference, rng))
            _, results = judged(target, window, config)
            red = set(results.loc[results["status"] == "red", "feature"])
            exact += red - set(drift.OUTPUT_COLUMNS) == scenario.features
            output_red += bool(red & set(drift.OUTPUT_COLUMNS))
        out[kind] = {
            "features": sorted(scenario.features),
            "red_on_it_alone": exact / windows,
            "output_red": output_red / windows,
        }
        print(f"  {kind}: {out[kind]}", flush=True)
    return out


def outcomes_of(model, rows: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    outputs = scoring.predict_frame(model, rows)
    return pd.DataFrame(
        {"prediction": outputs["prediction"].to_numpy(), "score": outputs["score"].to_numpy()}
    ).assign(actual=labels.astype(str).to_numpy())


def performance_alerts(model, split: ft_engineering.Split, config, windows: int, rng) -> dict:
    """Share of no-drift windows red for performance (and by the old rule), per label count."""
    held_out = outcomes_of(model, split.X_test, split.y_test)
    metadata = model.metadata
    test_value = metadata.test_metrics.get("roc_auc")
    out = {}
    for size in LABEL_SIZES:
        red = old = 0
        for _ in range(windows):
            window = held_out.sample(size, replace=True, random_state=rng.integers(2**31))
            realized = performance.realized_performance(window, metadata, config)
            red += realized is not None and realized["drop"] is not None
            value = (realized or {}).get("metrics", {}).get("roc_auc")
            old += (
                value is not None and test_value is not None and value < test_value - config.performance_drop
            )
        out[size] = {"red": red / windows, "old_rule_red": old / windows}
        print(f"  {size:>3} labels: {out[size]}", flush=True)
    return out


def cbpe_window(target, model, rows: pd.DataFrame, labels: pd.Series) -> tuple[float, float]:
    """(estimated, realized) ROC-AUC of one labelled window."""
    window = logged(model, rows)
    counts = drift.current_counts(target.profile, drift.clean_current(window, target.profile, model.metadata))
    estimated = performance.estimate(target.profile, counts, target.performance, model.metadata)
    positive = labels.astype(str).to_numpy() == model.metadata.positive_class
    return estimated["metrics"]["roc_auc"], roc_auc_score(positive, window["__score__"])


def shifted_windows(data: ft_engineering.Dataset, feature: str, strength: float, windows: int, rng) -> list:
    """Row positions of windows under covariate shift of ``feature``: rows drawn with weights
    exp(strength * (2 * rank - 1)), rank in [0, 1] (labels keep their rows: P(y | x) unchanged)."""
    rank = pd.to_numeric(data.X[feature], errors="coerce").rank(pct=True).fillna(0.5).to_numpy()
    weights = np.exp(strength * (2 * rank - 1))
    return [rng.choice(len(rank), 2000, p=weights / weights.sum()) for _ in range(windows)]


def cbpe(target, model, data: ft_engineering.Dataset, windows: int, rng) -> dict:
    """CBPE accuracy without concept drift, and whether it moves as the realized ROC-AUC does under
    covariate shift (``SHIFTS`` of each of ``SHIFTED`` features, up and down)."""
    draws = (rng.integers(0, len(data.X), 2000) for _ in range(windows))
    pairs = np.array([cbpe_window(target, model, data.X.iloc[rows], data.y.iloc[rows]) for rows in draws])
    errors = np.abs(pairs[:, 0] - pairs[:, 1])
    base = pairs.mean(axis=0)
    out = {"within_0.03": float(np.mean(errors <= 0.03)), "mean_abs_error": float(errors.mean())}
    out["no_shift"] = {"estimated": float(base[0]), "realized": float(base[1])}
    moved = agreed = 0
    for feature in SHIFTED:
        for strength in SHIFTS:
            rows = shifted_windows(data, feature, strength, max(windows // 5, 10), rng)
            mean = np.mean([cbpe_window(target, model, data.X.iloc[r], data.y.iloc[r]) for r in rows], axis=0)
            change = mean - base
            same_way = bool(np.sign(change[0]) == np.sign(change[1]))
            out[f"{feature}_{strength:+.1f}"] = {"estimated": float(mean[0]), "realized": float(mean[1])} | {
                "same_way": same_way
            }
            if abs(change[1]) > MOVED:
                moved, agreed = moved + 1, agreed + same_way
    out["shifts_moving_realized"] = moved
    out["same_way_of_those"] = agreed
    print(f"  {out}", flush=True)
    return out


PARTS = ("no_drift", "histories", "scenarios", "performance", "cbpe")


def run_parts(parts: list[str], settings: Settings, config, models_dir: Path, args) -> dict:
    """The chosen measurements (``PARTS``) for the champion of ``models_dir``."""
    rng = np.random.default_rng(args.seed)
    target = model_monitoring.monitored_version(models_dir, None, config)
    model = registry.load_model(models_dir, target.version)
    data = ft_engineering.load_data(settings.config.dataset)
    scored = logged(model, data.X)
    print(f"champion {target.version}; monitoring min_rows {config.min_rows}", flush=True)
    few = max(args.windows // 2, 20)
    steps = {
        "no_drift": lambda: no_drift(target, scored, config, args.windows, rng),
        "histories": lambda: noise_histories(target, scored, config, args.histories, rng),
        "scenarios": lambda: scenarios(
            target, model, data, registry.load_reference(models_dir, target.version), config, few, rng
        ),
        "performance": lambda: performance_alerts(
            model, ft_engineering.split_data(data, settings.config.split), config, args.windows, rng
        ),
        "cbpe": lambda: cbpe(target, model, data, few, rng),
    }
    results = {"version": target.version, "min_rows": config.min_rows}
    for number, part in enumerate(parts, start=1):
        print(f"{number}. {part}:", flush=True)
        results[part] = steps[part]()
    print(f"  {results.get('histories', '')}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--histories", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--min-rows", type=int, help="another monitoring.min_rows (default: the config's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings()
    config = settings.config.monitoring
    if args.min_rows:
        config = config.model_copy(update={"min_rows": args.min_rows})
    with tempfile.TemporaryDirectory() as scratch:
        models_dir = champion_dir(args.models_dir, Path(scratch))
        results = run_parts(args.parts, settings, config, models_dir, args)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"done in {results['seconds']} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
