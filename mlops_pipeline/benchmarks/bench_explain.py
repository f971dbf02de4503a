"""Cost of the reasons: scoring a 1,000-row CSV with and without ``explain(K=3)``, per candidate.

Each classification candidate of the shipped config (its configured parameters, as training
builds it) is fitted once on the shipped data (4,454 rows). A 1,000-row frame is drawn from the
raw CSV with replacement (seeded), as a client would send it (missing tokens such as ``"ignore"``
still in). In interleaved rounds, for each candidate, it times:

- ``scoring.predict_frame`` alone (what ``/predict`` computes without reasons);
- ``scoring.predict_frame`` then ``explain.explain(model, frame, 3)`` (what ``/predict?explain=3``
  computes).

- with ``--api``, also the real ``POST /predict`` of the same rows as a CSV (``Accept: text/csv``,
  logging to SQLite) through the app in process (FastAPI's TestClient), the versions saved to a
  temporary registry: without reasons, and with ``?explain=3`` (the reason columns in the answer).

The ratio with / without is printed per candidate as best (fastest of each) and median of the
per-round ratio (both timed back to back in each round, the steadiest on a loaded machine). The
target is a ratio of at most 5. Usage::

    python mlops_pipeline/benchmarks/bench_explain.py [--config PATH] [--rounds 15] [--rows 1000] [--api]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import candidates  # noqa: E402
import explain  # noqa: E402
import ft_engineering  # noqa: E402
import registry  # noqa: E402
import scoring  # noqa: E402
from model_training_evaluation import build_model  # noqa: E402
from settings import ProjectConfig, Settings, get_settings  # noqa: E402

TARGET_RATIO = 5.0
TOP_K = 3


def fitted_versions(config: ProjectConfig) -> dict[str, registry.LoadedModel]:
    """Every configured candidate fitted on the whole dataset, with the metadata training saves."""
    data = ft_engineering.load_data(config.dataset)
    preprocessor = ft_engineering.preprocessor_from_config(data.roles, config.dataset)
    metadata = ft_engineering.model_metadata(data, data.X)
    versions = {}
    for name, params in candidates.candidate_params(data.task, config.training).items():
        estimator = candidates.make_estimator(data.task, name, params, config.split.seed)
        pipeline = build_model(estimator, preprocessor).fit(data.X, data.y)
        versions[name] = registry.LoadedModel(name, pipeline, metadata)
    return versions


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


@contextmanager
def api_client(versions: dict[str, registry.LoadedModel], frame: pd.DataFrame, config_path: Path | None):
    """A TestClient on the real app, serving every version from a temporary registry."""
    from fastapi.testclient import TestClient

    import model_deploy

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            **({"mlops_config": config_path} if config_path else {}), mlops_artifacts_dir=folder
        )
        for name, model in versions.items():
            registry.save_version(settings.models_dir, name, model.pipeline, model.metadata, frame)
        registry.set_champion(settings.models_dir, next(iter(versions)))
        with TestClient(model_deploy.create_app(settings)) as client:
            yield client


def post_csv(client, params: dict, body: bytes) -> None:
    """``POST /predict`` of a CSV answered in CSV; fails unless it answered 200 with every reason."""
    response = client.post(
        "/predict", params=params, content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    ).raise_for_status()
    if "X-Explain-Error" in response.headers:
        raise RuntimeError(response.headers["X-Explain-Error"])


def timed_rounds(
    versions: dict[str, registry.LoadedModel], frame: pd.DataFrame, rounds: int, client=None
) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each measurement, per candidate, in interleaved rounds (round 0 warms up
    and is dropped): ``without`` and ``with`` reasons, and with a client the ``request`` without
    them and the ``explained_request``."""
    body = frame.to_csv(index=False).encode()
    times = {name: {"without": [], "with": [], "request": [], "explained_request": []} for name in versions}
    for round_ in range(rounds + 1):
        for name, model in versions.items():
            calls = {
                "without": lambda model=model: scoring.predict_frame(model, frame, flat=True),
                "with": lambda model=model: (
                    scoring.predict_frame(model, frame, flat=True),
                    explain.explain(model, frame, TOP_K),
                ),
            }
            if client is not None:
                for measurement, params in (("request", {}), ("explained_request", {"explain": TOP_K})):
                    calls[measurement] = lambda name=name, params=params: post_csv(
                        client, {"model": name, **params}, body
                    )
            for measurement, call in calls.items():
                elapsed = seconds(call)
                if round_:
                    times[name][measurement].append(elapsed)
    return times


def ratios(without: list[float], with_reasons: list[float]) -> dict[str, float]:
    """Best with / best without, and the median of the ratio within each round."""
    per_round = [w / o for w, o in zip(with_reasons, without)]
    return {
        "without_ms_best": round(1e3 * min(without), 2),
        "with_ms_best": round(1e3 * min(with_reasons), 2),
        "ratio_best": round(min(with_reasons) / min(without), 2),
        "ratio_median_per_round": round(statistics.median(per_round), 2),
    }


def summary(versions: dict[str, registry.LoadedModel], times: dict) -> dict[str, dict]:
    """Per candidate: its explainer and the ratios for scoring (and for the request, when timed)."""
    results = {}
    for name, measured in times.items():
        results[name] = {
            "explainer": explain.explainer_kind(versions[name]),
            "scoring": ratios(measured["without"], measured["with"]),
        }
        if measured["request"]:
            results[name]["request"] = ratios(measured["request"], measured["explained_request"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="config file (default: MLOPS_CONFIG or the shipped one)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--api", action="store_true", help="also time POST /predict of the rows as a CSV")
    args = parser.parse_args(argv)
    config = get_settings(mlops_config=args.config).config
    print("Fitting the configured candidates on the whole dataset ...", flush=True)
    versions = fitted_versions(config)
    raw = pd.read_csv(config.dataset.path)
    frame = raw.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    frame = frame[versions[next(iter(versions))].feature_names]
    if args.api:
        with api_client(versions, frame, args.config) as client:
            times = timed_rounds(versions, frame, args.rounds, client)
    else:
        times = timed_rounds(versions, frame, args.rounds)
    results = summary(versions, times)
    report = {
        "rows": args.rows,
        "top_k": TOP_K,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "candidates": results,
        "target_ratio": TARGET_RATIO,
    }
    print(json.dumps(report, indent=2))
    for name, result in results.items():
        for measured in ("scoring", "request"):
            if measured in result:
                ratio = result[measured]["ratio_median_per_round"]
                verdict = "OK" if ratio <= TARGET_RATIO else "OVER TARGET"
                print(f"{name:24s} {result['explainer']:26s} {measured:8s} x{ratio:<6} {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
