"""Fitted-pipeline benchmark: our preprocessor against a plain scikit-learn pipeline, in one run.

Both pipelines end in the same ``LogisticRegression(max_iter=1000)`` and are fitted on the shipped
data (4,454 rows, the 13 configured features):

- ours: ``preprocessor_from_config`` (cleaning, the config's derived features, ColumnTransformer),
  given the raw rows as a client sends them (missing tokens such as ``"ignore"`` still in);
- plain: what a user would write after ``pd.read_csv(na_values=...)``: a ColumnTransformer with
  median imputation (with indicators) and scaling for numbers, constant imputation and one-hot
  for categories, given the same rows with the missing tokens already read as NaN.

``predict_proba`` on 10,000 rows (drawn with replacement, seeded) is timed in interleaved rounds,
so that a change in the machine's load affects both alike; the ratio ours / plain is printed as
best and median (and the median of the ratio within each round, the steadiest of the three on a
loaded machine), with a breakdown of our pipeline's steps. The target is a ratio of at most 1.3.
Usage::

    python mlops_pipeline/benchmarks/bench_pipeline.py [--config PATH] [--rounds 30] [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import ft_engineering  # noqa: E402
from settings import DatasetConfig, get_settings  # noqa: E402

TARGET_RATIO = 1.3


def plain_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    """The scikit-learn pipeline a user would write for the same columns and estimator."""
    numeric_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    columns = ColumnTransformer(
        [
            ("numeric", numeric_steps, numeric),
            ("categorical", categorical_steps, categorical),
        ]
    )
    return Pipeline([("preprocessor", columns), ("classifier", LogisticRegression(max_iter=1000))])


def fitted_pipelines(
    dataset: DatasetConfig,
) -> tuple[Pipeline, Pipeline, pd.DataFrame, pd.DataFrame]:
    """Both pipelines fitted on the shipped rows, and the raw rows each one is given."""
    data = ft_engineering.load_data(dataset)
    features = data.roles.features
    raw = pd.read_csv(dataset.path)  # as a client sends it: tokens such as "ignore" still in
    tokens_as_nan = pd.read_csv(dataset.path, na_values=dataset.na_values)
    preprocessor = ft_engineering.preprocessor_from_config(data.roles, dataset)
    ours = Pipeline(
        [
            ("preprocessor", preprocessor),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )
    ours.fit(raw[features], raw[dataset.target])
    plain = plain_pipeline(data.roles.numeric, data.roles.categorical)
    plain.fit(tokens_as_nan[features], tokens_as_nan[dataset.target])
    return ours, plain, raw[features], tokens_as_nan[features]


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def step_calls(ours: Pipeline, X: pd.DataFrame) -> dict[str, Callable[[], object]]:
    """One call per step of our pipeline, each on the output of the step before (computed once)."""
    preprocessor, classifier = (
        ours.named_steps["preprocessor"],
        ours.named_steps["classifier"],
    )
    clean, derive, columns = (preprocessor.named_steps[name] for name in ("clean", "derive", "columns"))
    cleaned = clean.transform(X)
    derived = derive.transform(cleaned)
    matrix = columns.transform(derived)
    return {
        "clean": lambda: clean.transform(X),
        "derive": lambda: derive.transform(cleaned),
        "columns": lambda: columns.transform(derived),
        "classifier": lambda: classifier.predict_proba(matrix),
    }


def timed_rounds(
    ours: Pipeline,
    plain: Pipeline,
    X_ours: pd.DataFrame,
    X_plain: pd.DataFrame,
    rounds: int,
) -> dict[str, list[float]]:
    """Seconds per call of each measurement, in interleaved rounds (round 0 warms up and is dropped)."""
    plain_columns, plain_classifier = (
        plain.named_steps["preprocessor"],
        plain.named_steps["classifier"],
    )
    plain_matrix = plain_columns.transform(X_plain)
    calls = {
        "ours": lambda: ours.predict_proba(X_ours),
        "plain": lambda: plain.predict_proba(X_plain),
    }
    calls |= {f"ours.{name}": call for name, call in step_calls(ours, X_ours).items()}
    calls |= {
        "plain.columns": lambda: plain_columns.transform(X_plain),
        "plain.classifier": lambda: plain_classifier.predict_proba(plain_matrix),
    }
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds + 1):
        order = list(calls) if round_ % 2 else list(reversed(calls))  # neither side always goes first
        measured = {name: seconds(calls[name]) for name in order}
        if round_:
            for name, value in measured.items():
                timings[name].append(value)
    return timings


def report(timings: dict[str, list[float]], rows: int, rounds: int) -> dict:
    """Print the ratio and the breakdown as Markdown tables; return them as a dict."""
    best = {name: min(values) for name, values in timings.items()}
    median = {name: statistics.median(values) for name, values in timings.items()}
    ratio_best, ratio_median = (
        best["ours"] / best["plain"],
        median["ours"] / median["plain"],
    )
    paired = statistics.median(o / p for o, p in zip(timings["ours"], timings["plain"]))  # same round
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\n`predict_proba` sobre {rows:,} filas; {rounds} rondas intercaladas; {os.cpu_count()} CPU "
        f"(carga media {load})\n"
    )
    print("| Pipeline | ms (mejor / mediana) |")
    print("|---|---|")
    labels = {
        "ours": "nuestro (limpieza + derivadas + ColumnTransformer)",
        "plain": "scikit-learn simple",
    }
    for name, label in labels.items():
        print(f"| {label} | {best[name] * 1000:.1f} / {median[name] * 1000:.1f} |")
    ratios = f"**{ratio_best:.2f} / {ratio_median:.2f}** (objetivo <= {TARGET_RATIO})"
    print(f"| **proporción nuestro / simple** | {ratios} |")
    print(f"| proporción en cada ronda (mediana) | {paired:.2f} |")
    print("\n| Paso | ms (mejor / mediana) | Parte del total (mediana) |")
    print("|---|---|---|")
    for name in (n for n in timings if "." in n):
        total = median[name.split(".")[0]]
        share = median[name] / total
        print(f"| {name} | {best[name] * 1000:.1f} / {median[name] * 1000:.1f} | {share:.0%} |")
    return {
        "rows": rows,
        "rounds": rounds,
        "ratio_best": round(ratio_best, 3),
        "ratio_median": round(ratio_median, 3),
        "ratio_paired_median": round(paired, 3),
        "ms_best": {name: round(value * 1000, 2) for name, value in best.items()},
        "ms_median": {name: round(value * 1000, 2) for name, value in median.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark del pipeline ajustado frente a un pipeline simple de scikit-learn."
    )
    parser.add_argument("--config", type=Path, help="config (por defecto MLOPS_CONFIG o config.yaml)")
    parser.add_argument("--rounds", type=int, default=30, help="rondas intercaladas")
    parser.add_argument("--rows", type=int, default=10_000, help="filas por llamada a predict_proba")
    parser.add_argument("--seed", type=int, default=0, help="semilla del muestreo con reemplazo")
    args = parser.parse_args(argv)

    dataset = get_settings(mlops_config=args.config).config.dataset
    ours, plain, raw, tokens_as_nan = fitted_pipelines(dataset)
    rows = raw.sample(args.rows, replace=True, random_state=args.seed).index
    X_ours = raw.loc[rows].reset_index(drop=True)
    X_plain = tokens_as_nan.loc[rows].reset_index(drop=True)
    summary = report(timed_rounds(ours, plain, X_ours, X_plain, args.rounds), args.rows, args.rounds)
    print("\n" + json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
