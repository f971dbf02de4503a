"""Serving benchmark: the project's API, logging every prediction, against MLflow's scoring server.

The same fitted champion pipeline is served twice, each by one uvicorn worker on this machine:

- ours: ``model_deploy.py serve``, every prediction committed to a SQLite log in a temporary
  folder before the answer (``SELECT count(*) FROM predictions`` is checked at the end);
- MLflow's: the pipeline saved with ``mlflow.sklearn.save_model`` (with its signature) and
  served by ``mlflow models serve --env-manager local -w 1``, which logs nothing.

Both get the same 10,000-row CSV (``Content-Type: text/csv``) in interleaved rounds, then single
JSON records from 1 and 8 concurrent clients (httpx, one thread each, a fixed number of requests
each, the two servers alternating by segment). Prints a Markdown table with the ratios DESIGN.md
sets (10,000-row throughput ours/MLflow >= 1.2; single-record p99 at 8 clients <= 0.5 of MLflow's)
and the load average. Usage::

    python mlops_pipeline/benchmarks/bench_serving.py [--artifacts DIR] [--model VERSION] [--rounds 15]

Without a trained champion in ``--artifacts`` (default: MLOPS_ARTIFACTS_DIR or
mlops_pipeline/artifacts) it trains one into a temporary folder first.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import sqlalchemy as sa

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import registry
from settings import Settings, get_settings

BATCH_ROWS = 10_000
SEGMENTS = 4  # single-record runs alternate the two servers this many times
WARMUP_REQUESTS = 5  # per client and segment, not measured (connection set-up)
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A running server and how to send it a CSV batch and a single record."""

    name: str
    base: str
    process: psutil.Process
    batch_path: str
    record_body: Callable[[dict], dict]


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


def sample_rows(settings: Settings, model: registry.LoadedModel, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` raw feature rows resampled from the configured dataset."""
    data = pd.read_csv(settings.config.dataset.path)[model.feature_names]
    return data.sample(n, replace=True, random_state=seed).reset_index(drop=True)


PIPELINE_MODULES = ("ft_engineering", "cleaning", "expressions", "settings")
"""The modules a fitted pipeline's pickle refers to, shipped with the MLflow model."""


def save_mlflow_model(model: registry.LoadedModel, rows: pd.DataFrame, folder: Path) -> Path:
    """The fitted pipeline as an MLflow model, with the signature a user would log, in ``folder``.

    The pipeline's own transformers live in ``ft_engineering`` and ``cleaning`` (which import
    ``expressions`` and ``settings``): those files go in as ``code_paths``, so the server can
    unpickle it.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(rows, model.pipeline.predict(rows))
    path = folder / "mlflow_model"
    mlflow.sklearn.save_model(
        model.pipeline,
        str(path),
        signature=signature,
        serialization_format="cloudpickle",
        code_paths=[str(SRC / f"{name}.py") for name in PIPELINE_MODULES],
    )
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], port: int, health: str) -> Iterator[psutil.Process]:
    """A server process started with ``command``, once ``health`` answers 200; stopped afterwards."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not start (exit code {process.returncode})")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def our_server(stack: ExitStack, settings: Settings, version: str, db_url: str) -> Server:
    port = free_port()
    env = {**os.environ, "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir), "MODEL_VERSION": version}
    env |= {"DATABASE_URL": db_url, "MLOPS_CONFIG": str(settings.mlops_config)}
    command = [sys.executable, str(SRC / "model_deploy.py"), "serve", "--port", str(port), "--workers", "1"]
    process = stack.enter_context(running(command, env, port, "/health"))
    return Server("ours", f"http://127.0.0.1:{port}", process, "/predict", lambda record: record)


def mlflow_server(stack: ExitStack, model_path: Path) -> Server:
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # it runs `uvicorn` from the PATH
    command = [str(BIN / "mlflow"), "models", "serve", "-m", str(model_path), "--env-manager", "local",
               "-p", str(port), "-w", "1"]  # fmt: skip
    process = stack.enter_context(running(command, env, port, "/ping"))
    as_records = lambda record: {"dataframe_records": [record]}  # noqa: E731
    return Server("mlflow", f"http://127.0.0.1:{port}", process, "/invocations", as_records)


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU time of a server and its children (uvicorn's worker)."""
    members = [process, *process.children(recursive=True)]
    return sum(times.user + times.system for times in (member.cpu_times() for member in members))


def batch_rounds(servers: list[Server], body: bytes, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Wall-clock and server CPU seconds of each 10,000-row CSV request, rounds interleaved (the
    order flips every round; round 0 only warms up)."""
    seconds: dict[str, dict[str, list[float]]] = {s.name: {"wall": [], "cpu": []} for s in servers}
    clients = {s.name: httpx.Client(base_url=s.base, timeout=120) for s in servers}
    try:
        for round_ in range(rounds + 1):
            for server in servers if round_ % 2 else servers[::-1]:
                cpu, start = cpu_seconds(server.process), time.perf_counter()
                response = clients[server.name].post(
                    server.batch_path, content=body, headers={"Content-Type": "text/csv"}
                )
                wall = time.perf_counter() - start
                response.raise_for_status()
                if round_:
                    seconds[server.name]["wall"].append(wall)
                    seconds[server.name]["cpu"].append(cpu_seconds(server.process) - cpu)
    finally:
        for client in clients.values():
            client.close()
    return seconds


def record_latencies_ms(server: Server, records: list[dict], clients: int, per_client: int) -> list[float]:
    """Latency of single-record requests from ``clients`` threads, ``per_client`` requests each."""

    def session(index: int) -> list[float]:
        measured = []
        with httpx.Client(base_url=server.base, timeout=30) as client:
            for i in range(WARMUP_REQUESTS + per_client):
                body = server.record_body(records[(index * 997 + i) % len(records)])
                start = time.perf_counter()
                client.post(server.batch_path, json=body).raise_for_status()
                if i >= WARMUP_REQUESTS:
                    measured.append((time.perf_counter() - start) * 1000)
        return measured

    with ThreadPoolExecutor(clients) as pool:
        return [value for values in pool.map(session, range(clients)) for value in values]


def latencies(servers: list[Server], records: list[dict], requests: int) -> dict[str, dict[int, list[float]]]:
    """Single-record latencies (ms) per server and number of clients, servers alternating by segment."""
    measured: dict[str, dict[int, list[float]]] = {s.name: {1: [], 8: []} for s in servers}
    for clients in (1, 8):
        for segment in range(SEGMENTS):
            for server in servers if segment % 2 else servers[::-1]:
                values = record_latencies_ms(server, records, clients, requests // SEGMENTS)
                measured[server.name][clients] += values
    return measured


def logged_rows(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one()
    finally:
        engine.dispose()


def median_ms(function: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def in_process_steps(model: registry.LoadedModel, body: bytes, mlflow_path: Path, workdir: Path) -> dict:
    """Median ms of each step of one 10,000-row CSV request in this process (no HTTP), for both
    servers: where the time goes."""
    from mlflow.pyfunc import load_model, scoring_server

    import api_input
    import api_output
    import scoring
    import store

    schema, csv = api_input.InputSchema(model.metadata), api_input.Body(body, is_csv=True)
    frame = api_input.parse_body(csv, schema, BATCH_ROWS)
    outputs = scoring.batch_outputs(model, frame)
    engine = store.open_store(f"sqlite:///{workdir / 'steps.db'}")
    pyfunc = load_model(str(mlflow_path))
    signature = pyfunc.metadata.get_input_schema()
    theirs = scoring_server.parse_csv_input(io.StringIO(body.decode()), signature)
    steps = {
        "nuestra: leer y validar el CSV (api_input.parse_body)": lambda: api_input.parse_body(
            csv, schema, BATCH_ROWS
        ),
        "nuestra: puntuar (scoring.batch_outputs)": lambda: scoring.batch_outputs(model, frame),
        "nuestra: registro, atributos a JSON (store.json_lines)": lambda: store.json_lines(frame),
        "nuestra: registro completo (store.log_predictions)": lambda: store.log_predictions(
            engine, frame, outputs.assign(id=scoring.new_ids(len(frame))), model_version=model.version
        ),
        "nuestra: respuesta JSON (api_output.render)": lambda: api_output.render(
            outputs, frame, "r", model, False
        ),
        "MLflow: leer el CSV (parse_csv_input)": lambda: scoring_server.parse_csv_input(
            io.StringIO(body.decode()), signature
        ),
        "MLflow: predecir (pyfunc, con su control de esquema)": lambda: pyfunc.predict(theirs),
        "MLflow: todo (scoring_server.invocations)": lambda: scoring_server.invocations(
            body, "text/csv", pyfunc, signature
        ),
    }
    measured = {step: median_ms(function) for step, function in steps.items()}
    engine.dispose()
    print("\n| Paso de un lote de 10 000 filas, en proceso (sin HTTP) | ms (mediana de 7) |\n|---|---|")
    for step, ms in measured.items():
        print(f"| {step} | {ms:.1f} |")
    return measured


def report(seconds: dict, latency: dict, version: str, rounds: int, requests: int, load: tuple) -> dict:
    """Print the Markdown table (Spanish: it goes into docs/serving.md) and return the numbers."""
    best = {name: BATCH_ROWS / min(s["wall"]) for name, s in seconds.items()}
    median = {name: BATCH_ROWS / statistics.median(s["wall"]) for name, s in seconds.items()}
    cpu_ms = {name: 1000 * statistics.median(s["cpu"]) for name, s in seconds.items()}
    pct = {
        name: {
            clients: {p: float(np.percentile(values, p)) for p in (50, 99)} for clients, values in by.items()
        }
        for name, by in latency.items()
    }
    after = os.getloadavg()
    print(
        f"\nModelo {version}; {os.cpu_count()} CPU; {datetime.now():%Y-%m-%d %H:%M}; carga media "
        f"{load[0]:.2f} al empezar y {after[0]:.2f} al terminar; {rounds} rondas de {BATCH_ROWS:,} filas; "
        f"{requests} peticiones de un registro por cliente.\n"
    )
    print("| Medición | Nuestra API (con registro) | MLflow (sin registro) | Nuestra / MLflow | Objetivo |")
    print("|---|---|---|---|---|")
    for label, values in (("mejor", best), ("mediana", median)):
        ratio = values["ours"] / values["mlflow"]
        row = f"{values['ours']:,.0f} | {values['mlflow']:,.0f} | {ratio:.2f}"
        print(f"| Lote CSV de 10 000 filas: filas/s, {label} | {row} | >= 1,2 |")
    ratio = cpu_ms["ours"] / cpu_ms["mlflow"]
    cpu = f"{cpu_ms['ours']:.0f} | {cpu_ms['mlflow']:.0f} | {ratio:.2f}"
    print(f"| CPU del servidor por lote (ms, mediana) | {cpu} | - |")
    for clients in (1, 8):
        for p in (50, 99):
            ours, theirs = pct["ours"][clients][p], pct["mlflow"][clients][p]
            goal = "<= 0,5" if (clients, p) == (8, 99) else "-"
            values = f"{ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}"
            print(f"| Un registro, {clients} cliente(s): p{p} (ms) | {values} | {goal} |")
    throughput = {"rows_per_s_best": best, "rows_per_s_median": median, "cpu_ms_per_batch": cpu_ms}
    return {"version": version, **throughput, "latency_ms": pct, "load_average": [load[0], after[0]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark del servicio frente al servidor de MLflow.")
    parser.add_argument("--artifacts", type=Path, help="carpeta de artefactos con un modelo entrenado")
    parser.add_argument("--model", help="versión a medir (por defecto el campeón)")
    parser.add_argument("--rounds", type=int, default=15, help="rondas intercaladas de lotes de 10 000 filas")
    parser.add_argument("--requests", type=int, default=200, help="peticiones de un registro por cliente")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        settings = trained_settings(args.artifacts, workdir)
        model = registry.load_model(settings.models_dir, args.model)
        rows = sample_rows(settings, model, BATCH_ROWS)
        db_url = f"sqlite:///{workdir / 'predictions.db'}"
        mlflow_model = save_mlflow_model(model, rows, workdir)
        servers = [our_server(stack, settings, model.version, db_url), mlflow_server(stack, mlflow_model)]
        seconds = batch_rounds(servers, rows.to_csv(index=False).encode(), args.rounds)
        records = json.loads(rows.head(500).to_json(orient="records"))
        latency = latencies(servers, records, args.requests)
        stack.close()  # servers stopped: the log is complete
        single = SEGMENTS * (WARMUP_REQUESTS + args.requests // SEGMENTS) * (1 + 8)
        assert logged_rows(db_url) == (args.rounds + 1) * BATCH_ROWS + single, (
            "a prediction is missing from the log"
        )
        summary = report(seconds, latency, model.version, args.rounds, args.requests, load)
        summary["in_process_ms"] = in_process_steps(
            model, rows.to_csv(index=False).encode(), mlflow_model, workdir
        )
    print("\n" + json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
