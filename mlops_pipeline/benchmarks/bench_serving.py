"""Serving benchmark: the real API (uvicorn) against in-process ``predict_proba``, in one run.

Measures, on the shipped data and its trained champion:

1. in-process ``pipeline.predict_proba`` rows/s on 10,000 rows (the reference);
2. ``POST /predict`` rows/s for a 10,000-row CSV, with prediction logging on (SQLite) and off;
3. single-record latency p50/p99 with 1 and with 8 concurrent clients (logging on).

Throughputs are reported as ratios to the in-process one. Usage::

    python mlops_pipeline/benchmarks/bench_serving.py [--artifacts DIR] [--workers 2]

Without a trained champion in ``--artifacts`` (default: MLOPS_ARTIFACTS_DIR or
mlops_pipeline/artifacts) it trains one into a temporary folder first.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import registry  # noqa: E402
from settings import Settings, get_settings  # noqa: E402

BATCH_ROWS = 10_000


def trained_settings(artifacts: Path | None, workdir: Path) -> Settings:
    """Settings with a trained champion: the given artifacts, else a fresh training run."""
    settings = get_settings(mlops_artifacts_dir=artifacts)
    if registry.champion_version(settings.models_dir):
        return settings
    import model_training_evaluation

    settings = get_settings(mlops_artifacts_dir=workdir / "artifacts")
    print(f"No trained model found; training into {settings.artifacts_dir} ...", flush=True)
    model_training_evaluation.train(settings)
    return settings


def sample_rows(settings: Settings, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` raw feature rows resampled from the configured dataset."""
    features = [f["name"] for f in registry.load_metadata(settings.models_dir)["features"]]
    data = pd.read_csv(settings.config.dataset.path)[features]
    return data.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def in_process_rows_per_second(settings: Settings, rows: pd.DataFrame, repeats: int, version: str) -> float:
    model = registry.load_model(settings.models_dir, version)
    X = rows[model.feature_names]
    model.pipeline.predict_proba(X)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.pipeline.predict_proba(X)
        times.append(time.perf_counter() - start)
    return len(X) / statistics.median(times)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config_with_logging(settings: Settings, folder: Path, log: bool) -> Path:
    """A copy of the config with ``serving.log_predictions`` set."""
    raw = settings.config.model_dump(mode="json")
    raw["serving"]["log_predictions"] = log
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def server(settings: Settings, config: Path, db_url: str, workers: int, version: str) -> Iterator[str]:
    """The API in a uvicorn process (no access log), as ``model_deploy.py serve`` starts it."""
    port = free_port()
    env = {**os.environ, "MLOPS_CONFIG": str(config), "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir), "DATABASE_URL": db_url, "MODEL_VERSION": version}
    command = [sys.executable, "-m", "uvicorn", "model_deploy:app", "--app-dir", str(SRC), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def api_rows_per_second(base: str, body: bytes, repeats: int) -> float:
    with httpx.Client(base_url=base, timeout=120) as client:
        times = []
        for attempt in range(repeats + 1):
            start = time.perf_counter()
            response = client.post("/predict", content=body, headers={"Content-Type": "text/csv"})
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            if attempt:
                times.append(elapsed)
    return BATCH_ROWS / statistics.median(times)


def latencies_ms(base: str, records: list[dict], clients: int, per_client: int) -> list[float]:
    def session(index: int) -> list[float]:
        out = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(per_client + 5):
                record = records[(index * per_client + i) % len(records)]
                start = time.perf_counter()
                client.post("/predict", json=record).raise_for_status()
                if i >= 5:  # the first requests warm the connection up
                    out.append((time.perf_counter() - start) * 1000)
        return out

    with ThreadPoolExecutor(clients) as pool:
        return [value for values in pool.map(session, range(clients)) for value in values]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark del servicio de predicción (proporciones respecto a predict_proba en proceso).")
    parser.add_argument("--artifacts", type=Path, help="carpeta de artefactos con un modelo entrenado")
    parser.add_argument("--model", help="versión a medir (por defecto el campeón)")
    parser.add_argument("--workers", type=int, default=1, help="procesos de uvicorn")
    parser.add_argument("--repeats", type=int, default=5, help="repeticiones de cada lote (se usa la mediana)")
    parser.add_argument("--requests", type=int, default=100, help="peticiones de un registro por cliente")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        workdir = Path(tmp)
        settings = trained_settings(args.artifacts, workdir)
        champion = registry.resolve_version(settings.models_dir, args.model)
        rows = sample_rows(settings, BATCH_ROWS)
        body = rows.to_csv(index=False).encode()
        records = json.loads(rows.head(500).to_json(orient="records"))

        reference = in_process_rows_per_second(settings, rows, args.repeats, champion)
        results: dict[str, float] = {"in_process_rows_per_s": reference}
        for logging_on in (True, False):
            config = config_with_logging(settings, workdir / f"log_{logging_on}", logging_on)
            db_url = f"sqlite:///{workdir / f'predictions_{logging_on}.db'}"
            with server(settings, config, db_url, args.workers, champion) as base:
                key = "with_logging" if logging_on else "without_logging"
                results[f"api_rows_per_s_{key}"] = api_rows_per_second(base, body, args.repeats)
                if logging_on:
                    for clients in (1, 8):
                        values = latencies_ms(base, records, clients, args.requests)
                        results[f"p50_ms_{clients}_clients"] = float(np.percentile(values, 50))
                        results[f"p99_ms_{clients}_clients"] = float(np.percentile(values, 99))

    with_ratio = results["api_rows_per_s_with_logging"] / reference
    without_ratio = results["api_rows_per_s_without_logging"] / reference
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nModelo: {champion}; {os.cpu_count()} CPU (carga media {load}); uvicorn --workers {args.workers}; SQLite\n")
    print("| Medición | Valor | Proporción vs. en proceso | Objetivo |")
    print("|---|---|---|---|")
    print(f"| `predict_proba` en proceso, 10 000 filas | {reference:,.0f} filas/s | 1.00 | - |")
    print(f"| `/predict` CSV 10 000 filas, con registro | {results['api_rows_per_s_with_logging']:,.0f} filas/s | {with_ratio:.2f} | >= 0.33 |")
    print(f"| `/predict` CSV 10 000 filas, sin registro | {results['api_rows_per_s_without_logging']:,.0f} filas/s | {without_ratio:.2f} | >= 0.67 |")
    for clients in (1, 8):
        print(
            f"| 1 registro, {clients} cliente(s): p50 / p99 | {results[f'p50_ms_{clients}_clients']:.1f} / "
            f"{results[f'p99_ms_{clients}_clients']:.1f} ms | - | {'p99 < 60 ms' if clients == 8 else '-'} |"
        )
    print("\n" + json.dumps({**results, "ratio_with_logging": with_ratio, "ratio_without_logging": without_ratio, "model": champion}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
