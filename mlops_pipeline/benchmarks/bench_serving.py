"""Serving benchmark: the real API (uvicorn) against in-process ``predict_proba``, in one run.

Measures, on the shipped data and its trained champion:

1. in-process ``pipeline.predict_proba`` rows/s on 10,000 rows (the reference);
2. ``POST /predict`` rows/s for a 10,000-row CSV, with prediction logging on (SQLite) and off;
3. single-record latency p50/p99 with 1 and with 8 concurrent clients (logging on).

Throughputs are reported as ratios to the in-process one, both by wall clock (best and median of
interleaved rounds) and per CPU second of the server (robust to other load on a shared machine).
Usage::

    python mlops_pipeline/benchmarks/bench_serving.py [--artifacts DIR] [--model VERSION] [--workers 1]

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
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
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
    features = [f.name for f in registry.load_metadata(settings.models_dir).features]
    data = pd.read_csv(settings.config.dataset.path)[features]
    return data.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU time of a process and its children (uvicorn workers)."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        times = member.cpu_times()
        total += times.user + times.system
    return total


def in_process_seconds(pipeline, X: pd.DataFrame) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one ``predict_proba`` call."""
    start, cpu = time.perf_counter(), time.process_time()
    pipeline.predict_proba(X)
    return time.perf_counter() - start, time.process_time() - cpu


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
def server(
    settings: Settings, config: Path, db_url: str, workers: int, version: str
) -> Iterator[tuple[str, psutil.Process]]:
    """The API in a uvicorn process (no access log), as ``model_deploy.py serve`` starts it."""
    port = free_port()
    env = {
        **os.environ,
        "MLOPS_CONFIG": str(config),
        "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "DATABASE_URL": db_url,
        "MODEL_VERSION": version,
    }
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
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def api_seconds(client: httpx.Client, server_process: psutil.Process, body: bytes) -> tuple[float, float]:
    """Wall-clock seconds of one 10,000-row request (client side) and the server's CPU seconds."""
    start, cpu = time.perf_counter(), cpu_seconds(server_process)
    response = client.post("/predict", content=body, headers={"Content-Type": "text/csv"})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, cpu_seconds(server_process) - cpu


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


def throughputs(
    settings: Settings,
    version: str,
    servers: dict[str, tuple[str, psutil.Process]],
    rows: pd.DataFrame,
    rounds: int,
) -> dict[str, dict[str, list[float]]]:
    """Wall-clock and CPU seconds per 10,000-row batch, in interleaved rounds (in process, API with
    and without logging), so that a change in the machine's load affects the three alike."""
    model = registry.load_model(settings.models_dir, version)
    X = rows[model.feature_names]
    body = rows.to_csv(index=False).encode()
    clients = {name: httpx.Client(base_url=base, timeout=120) for name, (base, _) in servers.items()}
    seconds: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    try:
        for round_ in range(rounds + 1):  # round 0 warms everything up
            measured = {"in_process": in_process_seconds(model.pipeline, X)}
            measured |= {
                name: api_seconds(clients[name], process, body) for name, (_, process) in servers.items()
            }
            for name, (wall, cpu) in measured.items():
                if round_:
                    seconds["wall"].setdefault(name, []).append(wall)
                    seconds["cpu"].setdefault(name, []).append(cpu)
    finally:
        for client in clients.values():
            client.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark del servicio de predicción (proporciones respecto a predict_proba en proceso)."
    )
    parser.add_argument("--artifacts", type=Path, help="carpeta de artefactos con un modelo entrenado")
    parser.add_argument("--model", help="versión a medir (por defecto el campeón)")
    parser.add_argument("--workers", type=int, default=1, help="procesos de uvicorn")
    parser.add_argument("--rounds", type=int, default=7, help="rondas intercaladas de lotes de 10 000 filas")
    parser.add_argument("--requests", type=int, default=100, help="peticiones de un registro por cliente")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp, ExitStack() as servers:
        workdir = Path(tmp)
        settings = trained_settings(args.artifacts, workdir)
        version = registry.resolve_version(settings.models_dir, args.model)
        rows = sample_rows(settings, BATCH_ROWS)
        running = {}
        for name, logging_on in (("with_logging", True), ("without_logging", False)):
            config = config_with_logging(settings, workdir / name, logging_on)
            db_url = f"sqlite:///{workdir / f'{name}.db'}"
            running[name] = servers.enter_context(server(settings, config, db_url, args.workers, version))
        seconds = throughputs(settings, version, running, rows, args.rounds)
        records = json.loads(rows.head(500).to_json(orient="records"))
        latency = {
            clients: latencies_ms(running["with_logging"][0], records, clients, args.requests)
            for clients in (1, 8)
        }

    best = {name: BATCH_ROWS / min(values) for name, values in seconds["wall"].items()}
    typical = {name: BATCH_ROWS / statistics.median(values) for name, values in seconds["wall"].items()}
    per_cpu = {name: BATCH_ROWS / statistics.median(values) for name, values in seconds["cpu"].items()}
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\nModelo: {version}; {os.cpu_count()} CPU (carga media {load}); uvicorn --workers {args.workers}; SQLite; {args.rounds} rondas\n"
    )
    print(
        "| Medición (lote de 10 000 filas) | Filas/s (mejor / mediana) | Proporción vs. en proceso (mejor / mediana) | Objetivo |"
    )
    print("|---|---|---|---|")
    labels = {
        "in_process": "`predict_proba` en proceso",
        "with_logging": "`/predict` CSV, con registro",
        "without_logging": "`/predict` CSV, sin registro",
    }
    targets = {"in_process": "-", "with_logging": ">= 0.33", "without_logging": ">= 0.67"}
    for name, label in labels.items():
        print(
            f"| {label} | {best[name]:,.0f} / {typical[name]:,.0f} | "
            f"{best[name] / best['in_process']:.2f} / {typical[name] / typical['in_process']:.2f} | {targets[name]} |"
        )
    print(
        "\n| Por segundo de CPU (servidor; en proceso: este proceso) | Filas por s de CPU (mediana) | Proporción |"
    )
    print("|---|---|---|")
    for name, label in labels.items():
        print(f"| {label} | {per_cpu[name]:,.0f} | {per_cpu[name] / per_cpu['in_process']:.2f} |")
    print("\n| Un registro (JSON), con registro | p50 | p99 | Objetivo |")
    print("|---|---|---|---|")
    for clients, values in latency.items():
        goal = "p99 < 60 ms" if clients == 8 else "-"
        print(
            f"| {clients} cliente(s) | {np.percentile(values, 50):.1f} ms | {np.percentile(values, 99):.1f} ms | {goal} |"
        )
    summary = {
        "model": version,
        "rows_per_s_best": best,
        "rows_per_s_median": typical,
        "rows_per_cpu_s_median": per_cpu,
        "latency_ms": {
            c: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))}
            for c, v in latency.items()
        },
    }
    print("\n" + json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
