"""Tracking: what a training run records about itself, in each saved version and in MLflow.

`run_metadata` is the part of ``metadata.json`` every version of a run shares (task, feature
schema, which data: its SHA-256 and row count, the config, the library versions), and
`reference_sample` the raw training rows saved as its drift reference. `log_run` writes one
MLflow parent run (parameters, tags, the selection, the report files) and one nested run per
candidate (`CandidateRun`). The training script gathers the values; nothing here trains.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

import ft_engineering
import registry
import scoring
from settings import ProjectConfig

logger = logging.getLogger(__name__)

LIBRARIES = ["scikit-learn", "xgboost", "pandas", "numpy", "scipy", "optuna", "mlflow", "joblib"]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a saved model depends on."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_metadata(
    data: ft_engineering.Dataset,
    split: ft_engineering.Split,
    config: ProjectConfig,
    primary: str,
    when: datetime,
    sources: dict,
) -> dict:
    """The metadata every version of one run shares: task, data (``sources``: rows from elsewhere
    than the dataset file), feature schema, config, library versions."""
    roles, path = data.roles, config.dataset.path
    return {
        "created_at": when.isoformat(),
        "task": data.task,
        "target": data.target,
        "classes": [str(c) for c in data.classes],
        "positive_class": data.positive_class,
        "na_values": list(config.dataset.na_values),
        "features": ft_engineering.feature_schema(split.X_train, roles),
        "dropped_columns": list(roles.dropped),
        "roles": {"numeric": roles.numeric, "categorical": roles.categorical, "ordinal": roles.ordinal},
        "dataset": {"path": str(path), "rows": len(data.frame), "sha256": file_sha256(path), **sources},
        "config": config.model_dump(mode="json"),
        "library_versions": library_versions(),
        "primary_metric": primary,
        "split": {"train_rows": len(split.X_train), "test_rows": len(split.X_test)},
    }


def reference_sample(
    model: registry.LoadedModel, X_train: pd.DataFrame, size: int, seed: int
) -> pd.DataFrame:
    """Up to ``size`` raw training rows with the version's outputs as serving makes them
    (`scoring.predict_frame`) in ``__prediction__`` and ``__score__``: the drift reference."""
    rows = X_train.sample(n=size, random_state=seed) if size < len(X_train) else X_train
    outputs = scoring.predict_frame(model, rows, flat=True)
    reference = rows.reset_index(drop=True)
    kind = float if model.task == "regression" else str
    reference["__prediction__"] = outputs["prediction"].to_numpy().astype(kind)
    reference["__score__"] = outputs["score"].to_numpy(dtype=float)
    return reference


def tracking_uri(artifacts_dir: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else a SQLite store under the artifacts folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{artifacts_dir / 'mlflow.db'}"


@dataclass(frozen=True)
class CandidateRun:
    """What one candidate's nested MLflow run records."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float | None]
    tags: dict[str, str]
    figure: Figure
    model_folder: Path

    def plain_params(self) -> dict[str, Any]:
        """The parameters MLflow can store (strings, numbers, booleans)."""
        return {k: v for k, v in self.params.items() if isinstance(v, (str, int, float, bool))}

    def finite_metrics(self) -> dict[str, float]:
        """The metrics that are numbers (MLflow rejects None and NaN)."""
        return {k: float(v) for k, v in self.metrics.items() if v is not None and math.isfinite(v)}


def log_run(
    uri: str,
    experiment: tuple[str, Path],
    run_name: str,
    params: dict[str, Any],
    tags: dict[str, str],
    documents: dict[str, dict],
    files: list[Path],
    candidates: list[CandidateRun],
) -> str | None:
    """Log a parent run (``params``, ``tags``, JSON ``documents``, report ``files``) and one nested
    run per candidate (parameters, metrics, tags, a diagnostic figure, the saved model files).

    ``experiment`` is its name and the folder for its artifacts when it is new. A tracking failure
    is logged and gives None, never an exception: the saved versions stand without it.
    """
    import mlflow

    name, artifacts = experiment
    try:
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifacts.as_uri())
        mlflow.set_experiment(name)
        with mlflow.start_run(run_name=run_name):
            mlflow.log_params(params)
            mlflow.set_tags(tags)
            for name, document in documents.items():
                mlflow.log_dict(document, name)
            for path in files:
                mlflow.log_artifact(str(path), "reports")
            for candidate in candidates:
                with mlflow.start_run(run_name=candidate.name, nested=True):
                    mlflow.log_params(candidate.plain_params())
                    mlflow.log_metrics(candidate.finite_metrics())
                    mlflow.set_tags(candidate.tags)
                    mlflow.log_figure(candidate.figure, "diagnostic.png")
                    mlflow.log_artifacts(str(candidate.model_folder), "model")
    except Exception as exc:  # noqa: BLE001 - tracking is optional; the saved versions stand
        logger.error("MLflow tracking to %s failed: %s", uri, exc)
        return None
    return uri
