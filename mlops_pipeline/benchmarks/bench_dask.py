"""Benchmark of the Dask engine (a script, not a test): timings, ratios and memory in one run.

1. Scoring: ``--rows`` rows resampled from the shipped data, written as ``--files`` CSV files (and
   the same rows as one CSV for the single-process CLI) in a temporary folder deleted afterwards;
   ``model_deploy.py score`` (one process, one file, CSV out) against ``score --engine dask``
   (Parquet parts, then CSV parts) on a ``LocalCluster`` of ``--workers`` single-threaded worker
   processes started here (the CLI connects with ``--scheduler``, so cluster start-up is timed
   apart). Reports seconds, the ratios, the 1-minute load average (the machine is shared) and the
   peak RSS of each CLI process and of each worker process (polled every 50 ms with psutil).
2. Drift: ``--drift-rows`` drifted rows generated on the workers (``dask.dataframe.from_map``, so
   the client never holds them) and counted per partition (``dask_engine.compute_drift``), against
   ``drift.compute_drift`` on the same rows in one child process; reports seconds, the
   ratio, peak RSS per worker and of the child, and the largest difference between the results.

Usage: python mlops_pipeline/benchmarks/bench_dask.py [--rows 5000000] [--files 8] [--drift-rows 10000000]
       [--workers 2] [--artifacts DIR] [--no-single]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import drift
import ft_engineering  # noqa: E402
import registry  # noqa: E402
from settings import DEFAULT_CONFIG, get_settings, load_config  # noqa: E402

BLOCK_ROWS = 250_000
DRIFT_PARTITION_ROWS = 500_000


# ----------------------------------------------------------------------------- helpers
class PeakRSS:
    """Peak resident memory (MiB) of some processes, polled every 50 ms while the block runs."""

    def __init__(self, pids: list[int]):
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.peaks = [0] * len(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            for i, process in enumerate(self.processes):
                try:
                    self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> list[int]:
        return [round(peak / 2**20) for peak in self.peaks]


def worker_pids(client) -> list[int]:
    return sorted(client.run(os.getpid).values())


def run_measured(command: list[str], env: dict[str, str], also: list[int] | None = None) -> dict:
    """Run a command; its wall time and peak RSS (MiB), and that of the processes ``also``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakRSS([process.pid]) as own, PeakRSS(also or []) as others:
        output, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"{command[:4]} failed with exit code {process.returncode}")
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": own.mib[0],
        "others_mib": others.mib,
        "output": output.strip(),
    }


def ensure_model(artifacts: Path | None, workdir: Path):
    """Settings with a trained champion: ``artifacts`` if it has one, else a quick training run
    (no tuning, no tracking) into ``workdir``."""
    settings = get_settings(mlops_artifacts_dir=artifacts)
    if registry.champion_version(settings.models_dir) is None:
        import model_training_evaluation

        settings = get_settings(mlops_artifacts_dir=workdir / "artifacts")
        print(f"Sin modelo entrenado: entrenando en {settings.artifacts_dir} (sin ajuste) ...", flush=True)
        training = settings.config.training
        training = training.model_copy(
            update={"tracking": False, "tuning": training.tuning.model_copy(update={"enabled": False})}
        )
        model_training_evaluation.train(settings, training)
    return settings


def write_inputs(source: pd.DataFrame, folder: Path, rows: int, files: int) -> tuple[Path, str]:
    """The same resampled rows as one CSV and as ``files`` CSV parts; (whole file, parts glob)."""
    whole = folder / "whole.csv"
    bounds = np.linspace(0, rows, files + 1).astype(int)
    written = 0
    for part in range(files):
        part_path = folder / "parts" / f"part-{part:03d}.csv"
        part_path.parent.mkdir(exist_ok=True)
        for block in range(bounds[part], bounds[part + 1], BLOCK_ROWS):
            size = min(BLOCK_ROWS, bounds[part + 1] - block)
            sample = source.sample(size, replace=True, random_state=block)
            sample.to_csv(
                part_path,
                mode="a" if block > bounds[part] else "w",
                header=block == bounds[part],
                index=False,
            )
            sample.to_csv(whole, mode="a" if written else "w", header=not written, index=False)
            written += size
    return whole, str(folder / "parts" / "part-*.csv")


# ----------------------------------------------------------------------------- drift data
@cache
def credit_reference() -> tuple[pd.DataFrame, list[str], list[str]]:
    """The shipped data cleaned as training cleans it, and its (numeric, categorical) roles."""
    data = ft_engineering.load_data(load_config(DEFAULT_CONFIG).dataset)
    return data.X, data.roles.numeric, data.roles.categorical


def drifted_rows(seed: int, rows: int = DRIFT_PARTITION_ROWS) -> pd.DataFrame:
    """``rows`` rows resampled from the reference with drift on a few columns (runs on a worker)."""
    reference, _, _ = credit_reference()
    frame = reference.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    return frame.assign(
        Income=frame["Income"] * 1.1,
        Home=frame["Home"].where(rng.random(rows) > 0.05, "nueva"),
        Age=frame["Age"].where(rng.random(rows) > 0.02),
    )


def drift_partitions(total: int) -> list[int]:
    return list(range(int(np.ceil(total / DRIFT_PARTITION_ROWS))))


def single_drift_child(total: int, output: Path) -> None:
    """Child process: compute_drift on all rows in memory; prints seconds and peak RSS."""

    reference, numeric, categorical = credit_reference()
    started = time.perf_counter()
    current = pd.concat([drifted_rows(seed) for seed in drift_partitions(total)], ignore_index=True)
    generated = time.perf_counter()
    result = drift.compute_drift(reference, current, numeric, categorical)
    done = time.perf_counter()
    result.to_parquet(output)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    timings = {"generate_s": round(generated - started, 1), "drift_s": round(done - generated, 1)}
    print(json.dumps(timings | {"peak_rss_mib": peak_mib}))


# ----------------------------------------------------------------------------- benchmarks
def bench_scoring(client, settings, workdir: Path, rows: int, files: int, single: bool) -> dict:
    features = [f.name for f in registry.load_metadata(settings.models_dir).features]
    source = pd.read_csv(settings.config.dataset.path)[features]
    print(f"Generando {rows:,} filas ({files} archivos + 1 archivo entero) ...", flush=True)
    whole, parts = write_inputs(source, workdir, rows, files)
    env = {**os.environ, "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir)}
    script = str(SRC / "model_deploy.py")
    result = {"rows": rows, "files": files, "input_mib": round(whole.stat().st_size / 2**20)}
    for output_format in ("parquet", "csv"):
        dask_options = ["--engine", "dask", "--scheduler", client.scheduler.address, "--input", parts]
        output = ["--output", str(workdir / f"scored_{output_format}"), "--output-format", output_format]
        command = [sys.executable, script, "score", *dask_options, *output, "--quiet"]
        on_dask = run_measured(command, env, worker_pids(client))
        result |= {
            f"dask_{output_format}_s": on_dask["seconds"],
            f"dask_{output_format}_client_peak_rss_mib": on_dask["peak_rss_mib"],
            f"dask_{output_format}_worker_peak_rss_mib": on_dask["others_mib"],
            "load_average": os.getloadavg()[0],
        }
    if single:
        local = run_measured(
            [
                sys.executable,
                script,
                "score",
                "--input",
                str(whole),
                "--output",
                str(workdir / "scored.csv"),
                "--quiet",
            ],
            env,
        )
        result |= {
            "single_csv_s": local["seconds"],
            "single_peak_rss_mib": local["peak_rss_mib"],
            "single_over_dask_parquet": round(local["seconds"] / result["dask_parquet_s"], 2),
            "single_over_dask_csv": round(local["seconds"] / result["dask_csv_s"], 2),
            "load_average_end": os.getloadavg()[0],
        }
    return result


def bench_drift(client, workdir: Path, total: int, single: bool) -> dict:
    import dask.dataframe as dd

    import dask_engine

    reference, numeric, categorical = credit_reference()
    with dask_engine.numpy_strings():
        current = dd.from_map(drifted_rows, drift_partitions(total), meta=drifted_rows(0, 2).iloc[0:0])
    with PeakRSS(worker_pids(client)) as generate_peaks:
        started = time.perf_counter()
        generated = client.compute(current.map_partitions(len).sum()).result()
        generate_s = time.perf_counter() - started
    with PeakRSS(worker_pids(client)) as drift_peaks:
        started = time.perf_counter()
        result = dask_engine.compute_drift(client, reference, current, numeric, categorical)
        dask_s = time.perf_counter() - started
    out = {
        "rows": int(generated),
        "partitions": current.npartitions,
        "dask_generate_only_s": round(generate_s, 1),
        "dask_generate_and_drift_s": round(dask_s, 1),
        "dask_worker_peak_rss_mib": drift_peaks.mib,
        "dask_worker_peak_rss_generate_only_mib": generate_peaks.mib,
        "load_average": os.getloadavg()[0],
    }
    if single:
        path = workdir / "single_drift.parquet"
        child = subprocess.run(
            [sys.executable, __file__, "--single-drift-child", str(total), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        local = json.loads(child.stdout.strip().splitlines()[-1])
        expected = pd.read_parquet(path)
        differences = [
            float(np.nanmax(np.abs(result[c].to_numpy(float) - expected[c].to_numpy(float))))
            for c in ("statistic", "p_value")
        ]
        out |= {
            "single_generate_s": local["generate_s"],
            "single_drift_s": local["drift_s"],
            "single_peak_rss_mib": local["peak_rss_mib"],
            "max_abs_difference": max(differences),
            "single_over_dask": round((local["generate_s"] + local["drift_s"]) / dask_s, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Dask frente al proceso único: puntuación y deriva.")
    parser.add_argument("--rows", type=int, default=5_000_000, help="filas a puntuar")
    parser.add_argument("--files", type=int, default=8, help="archivos CSV de la entrada de Dask")
    parser.add_argument("--drift-rows", type=int, default=10_000_000, help="filas actuales para la deriva")
    parser.add_argument(
        "--workers", type=int, default=2, help="workers (procesos de un hilo) del LocalCluster"
    )
    parser.add_argument("--artifacts", type=Path, help="carpeta de artefactos con un modelo entrenado")
    parser.add_argument(
        "--no-single", action="store_true", help="solo Dask, sin la comparación de un proceso"
    )
    parser.add_argument("--single-drift-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single_drift_child:
        single_drift_child(int(args.single_drift_child[0]), Path(args.single_drift_child[1]))
        return 0

    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
        workdir = Path(tmp)
        settings = ensure_model(args.artifacts, workdir)
        started = time.perf_counter()
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster,
            Client(cluster) as client,
        ):
            startup = round(time.perf_counter() - started, 1)
            print(json.dumps({"cluster_start_s": startup, "workers": args.workers}), flush=True)
            scoring = bench_scoring(client, settings, workdir, args.rows, args.files, not args.no_single)
            print(json.dumps({"scoring": scoring}), flush=True)
            drift = bench_drift(client, workdir, args.drift_rows, not args.no_single)
            print(json.dumps({"drift": drift}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
