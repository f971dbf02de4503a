"""Benchmark of drift monitoring (a script, not a test): prints timings and ratios measured in one run.

1. ``compute_drift`` on 10k, 100k and 1M current rows of the 13 credit features against the
   4,454-row reference (best of 3 after a warm-up), and Evidently's data-drift report on the same
   frames (each in its own process, for its peak RSS).
2. The monitoring job end to end on a SQLite log of 1,000,000 predictions in one day window
   (5% with feedback), in a fresh process: seconds and peak RSS.

Usage: python mlops_pipeline/benchmarks/bench_drift.py [--sizes 10000 100000 1000000] [--log-rows 1000000]
       [--no-evidently] [--no-job]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import drift
import ft_engineering
import model_monitoring
import scoring
from settings import DEFAULT_CONFIG, MonitoringConfig, load_config


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status, because ``ru_maxrss`` of a child started by
    subprocess (vfork + exec) starts from its parent's peak. Elsewhere: ``ru_maxrss``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def credit_data() -> tuple[pd.DataFrame, list[str], list[str]]:
    """The shipped data cleaned as training cleans it, and its (numeric, categorical) roles."""
    data = ft_engineering.load_data(load_config(DEFAULT_CONFIG).dataset)
    return data.X, data.roles.numeric, data.roles.categorical


def current_frame(data: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``rows`` rows drawn from the data, with a mild drift on two columns so the work is real."""
    frame = data.sample(rows, replace=True, random_state=rows).reset_index(drop=True)
    return frame.assign(
        Income=frame["Income"] * 1.1, Home=frame["Home"].where(frame.index % 20 != 0, "nueva")
    )


def best_of(function, repeat: int = 3) -> float:
    function()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def bench_compute_drift(sizes: list[int], evidently: bool) -> list[dict]:
    reference, numeric, categorical = credit_data()
    rows = []
    for size in sizes:
        current = current_frame(reference, size)
        seconds = best_of(lambda frame=current: drift.compute_drift(reference, frame, numeric, categorical))
        row = {"rows": size, "compute_drift_s": round(seconds, 3)}
        if evidently:
            row |= run_child(["evidently", "--rows", str(size)])
            row["evidently_over_ours"] = round(row["evidently_s"] / seconds, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def evidently_child(rows: int) -> dict:
    """Time Evidently 0.7's DataDriftPreset on the same data (default tests per column)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, numeric, categorical = credit_data()
    current = current_frame(reference, rows)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    started = time.perf_counter()
    report = Report([DataDriftPreset()])
    report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return {
        "evidently_s": round(time.perf_counter() - started, 3),
        "evidently_peak_rss_mib": round(peak_rss_mib()),
    }


def run_child(arguments: list[str]) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, *arguments], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the job on a big log
def build_log(folder: Path, log_rows: int) -> dict:
    """Train a logistic regression version, then log ``log_rows`` scored predictions in one day."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    import registry
    import store

    config = load_config(DEFAULT_CONFIG)
    data = ft_engineering.load_data(config.dataset)
    split = ft_engineering.split_data(data, config.split)
    pipeline = Pipeline(
        [
            ("preprocessor", ft_engineering.preprocessor_from_config(data.roles, config.dataset)),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
    pipeline.fit(split.X_train, split.y_train)
    models_dir = folder / "models"
    version = registry.new_version_id("logistic_regression")
    metadata = ft_engineering.model_metadata(
        data,
        split.X_train,
        model_name="logistic_regression",
        created_at=datetime.now(UTC).isoformat(),
        config=config.model_dump(mode="json"),
        version=version,
    )
    model = registry.LoadedModel(version, pipeline, metadata)
    reference = split.X_train.join(
        scoring.predict_frame(model, split.X_train)[["score", "prediction"]].set_axis(
            ["__score__", "__prediction__"], axis=1
        )
    )
    registry.save_version(models_dir, version, pipeline, metadata, reference)
    registry.set_champion(models_dir, version)
    # The profile and the no-drift calibration, as the first monitoring run saves them with the version.
    began = time.perf_counter()
    model_monitoring.monitored_version(models_dir, version, MonitoringConfig())
    print(
        f"profile and calibration built in {time.perf_counter() - began:.1f} s (once per version)", flush=True
    )
    url = f"sqlite:///{folder / 'predictions.db'}"
    engine = store.create_db_engine(url)
    store.init_db(engine)
    day = datetime(2026, 11, 1, tzinfo=UTC)
    chunk = 100_000
    rng = np.random.default_rng(0)
    for first in range(0, log_rows, chunk):
        n = min(chunk, log_rows - first)
        features = data.X.sample(n, replace=True, random_state=first).reset_index(drop=True)
        outputs = scoring.batch_outputs(model, features)
        seconds = np.sort(rng.integers(first * 86_000 // log_rows, (first + n) * 86_000 // log_rows, n))
        times = [day + timedelta(seconds=int(s)) for s in seconds]
        ids = store.log_predictions(engine, features, outputs, model_version=version, created_at=times)
        labels = data.y.sample(n, replace=True, random_state=first + 1).astype(str).tolist()
        picked = rng.random(n) < 0.05
        store.record_feedback(
            engine,
            [{"prediction_id": i, "actual": y} for i, y, p in zip(ids, labels, picked, strict=True) if p],
            received_at=[t for t, p in zip(times, picked, strict=True) if p],  # known the same day
        )
    engine.dispose()
    return {"url": url, "models_dir": str(models_dir), "start": day.isoformat()}


def job_child(url: str, models_dir: str, start: str) -> dict:
    """Run the monitoring job for the day holding the whole log, in this (fresh) process."""
    import store

    began = time.perf_counter()
    engine = store.create_db_engine(url)
    window_start = datetime.fromisoformat(start)
    outcome = model_monitoring.monitor_window(
        engine, Path(models_dir), window_start, window_start + timedelta(days=1), MonitoringConfig()
    )
    return {
        "job_s": round(time.perf_counter() - began, 3),
        "job_peak_rss_mib": round(peak_rss_mib()),
        "n_rows": outcome["run"]["n_rows"],
        "n_sampled": outcome["run"]["n_sampled"],
        "n_feedback": outcome["run"]["summary"]["n_feedback"],
        "status": outcome["run"]["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="all", choices=["all", "evidently", "job"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-job", action="store_true")
    parser.add_argument("--job-args")
    args = parser.parse_args()
    if args.mode == "evidently":
        print(json.dumps(evidently_child(args.rows)))
        return
    if args.mode == "job":
        print(json.dumps(job_child(**json.loads(args.job_args))))
        return
    print("compute_drift vs Evidently (seconds, current rows against the 4,454-row reference):")
    bench_compute_drift(args.sizes, not args.no_evidently)
    if not args.no_job:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            job_args = build_log(Path(folder), args.log_rows)
            print(
                f"log of {args.log_rows:,} predictions built in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            print(json.dumps(run_child(["job", "--job-args", json.dumps(job_args)])))


if __name__ == "__main__":
    main()
