"""Memory benchmark: peak RSS of the ``score`` CLI on a 5,000,000-row CSV.

Generates the file by resampling the shipped data (in blocks, into a temporary folder deleted
afterwards), runs ``python mlops_pipeline/src/model_deploy.py score`` on it as a child process and
reads the child's peak resident set size from the OS (``getrusage(RUSAGE_CHILDREN)``). Usage::

    python mlops_pipeline/benchmarks/bench_score_memory.py [--rows 5000000] [--artifacts DIR] [--log]

With ``--log`` the CLI also writes every prediction to a prediction log (a SQLite file in the
same temporary folder), as ``score --log`` does.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import registry  # noqa: E402
from settings import get_settings  # noqa: E402

BLOCK_ROWS = 250_000
LIMIT_BYTES = 1 << 30


def write_resampled_csv(source: pd.DataFrame, path: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` rows drawn with replacement from ``source``, one block at a time."""
    written = 0
    for block in range(0, rows, BLOCK_ROWS):
        size = min(BLOCK_ROWS, rows - block)
        sample = source.sample(size, replace=True, random_state=seed + block)
        sample.to_csv(path, mode="a" if written else "w", header=not written, index=False)
        written += size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pico de memoria (RSS) del CLI score sobre un CSV grande.")
    parser.add_argument("--rows", type=int, default=5_000_000, help="filas del CSV generado")
    parser.add_argument("--artifacts", type=Path, help="carpeta de artefactos con un modelo entrenado")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="filas por bloque del CLI score")
    parser.add_argument("--log", action="store_true", help="guardar también cada predicción en el registro")
    args = parser.parse_args(argv)

    settings = get_settings(mlops_artifacts_dir=args.artifacts)
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "MLOPS_ARTIFACTS_DIR": str(settings.artifacts_dir)}
        if registry.champion_version(settings.models_dir) is None:
            import model_training_evaluation

            settings = get_settings(mlops_artifacts_dir=workdir / "artifacts")
            print(f"No trained model found; training into {settings.artifacts_dir} ...", flush=True)
            model_training_evaluation.train(settings)
            env["MLOPS_ARTIFACTS_DIR"] = str(settings.artifacts_dir)
        features = [f.name for f in registry.load_metadata(settings.models_dir).features]
        source = pd.read_csv(settings.config.dataset.path)[features]
        input_path, output_path = workdir / "input.csv", workdir / "output.csv"
        print(f"Generando {args.rows:,} filas en {input_path} ...", flush=True)
        write_resampled_csv(source, input_path, args.rows)
        size_mb = input_path.stat().st_size / 2**20
        del source

        command = [sys.executable, str(SRC / "model_deploy.py"), "score", "--input", str(input_path),
                   "--output", str(output_path), "--chunk-size", str(args.chunk_size)]  # fmt: skip
        if args.log:
            command.append("--log")
            env["DATABASE_URL"] = f"sqlite:///{workdir / 'predictions.db'}"
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        elapsed = time.perf_counter() - start
        peak_bytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
        with open(output_path, "rb") as handle:
            scored = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1

    verdict = "cumple" if peak_bytes < LIMIT_BYTES else "NO cumple"
    print("\n| Filas | CSV de entrada | Tiempo | Filas/s | Pico RSS | Límite |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {scored:,} | {size_mb:,.0f} MiB | {elapsed:,.1f} s | {scored / elapsed:,.0f} | "
        f"{peak_bytes / 2**20:,.0f} MiB | 1 GiB ({verdict}) |"
    )
    return 0 if scored == args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
