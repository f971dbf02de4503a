"""Model registry on disk: every trained candidate is a version; one of them is the champion.

Layout under ``<artifacts>/models/``::

    registry.json                 {"champion": "<version>", "updated_at": "..."}
    <version>/model.joblib        the fitted Pipeline (cleaning, derived features, preprocessing, estimator)
    <version>/metadata.json       task, classes, threshold, feature schema, metrics, dataset hash, config...
    <version>/reference.parquet   a sample of the raw training features (the drift reference)

Versions are folder names made from a UTC timestamp and the candidate name, so they sort by age.
No path is ever taken from a request: callers name a version, and it must be one of the folders.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.parquet"
REGISTRY_FILE = "registry.json"
RETRAIN_COMMAND = "python mlops_pipeline/src/model_training_evaluation.py"


class ModelNotFoundError(LookupError):
    """No trained model, or no version by that name."""


class ModelIntegrityError(ValueError):
    """A model file that is not the one saved (its SHA-256 differs from the metadata, or is unknown)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Record):
    """One raw input feature as training saw it (the API's request schema is built from these)."""

    name: str
    kind: Literal["numeric", "categorical", "ordinal"]
    dtype: str = "number"
    missing_share: float = 0.0
    min: float | None = None
    max: float | None = None
    example: Any = None
    categories: list[str] | None = None


class FeatureRoles(_Record):
    """Raw feature names by kind (numeric, then categorical, then ordinal with its level order)."""

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    ordinal: dict[str, list[str]] = Field(default_factory=dict)


class PredictionInterval(_Record):
    """A regression version's symmetric prediction interval: ``prediction ± half_width``."""

    level: float
    half_width: float
    method: str = ""


class ModelMetadata(_Record):
    """The contract of a saved version (``metadata.json``): what it predicts, from which inputs,
    with which threshold, and how it scored. Everything outside training reads these fields;
    ``config``, ``dataset``, ``params`` and the rest are kept as recorded, for people."""

    version: str = ""
    model_name: str = ""
    created_at: str = ""
    task: Literal["classification", "regression"]
    target: str = ""
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    threshold: float | None = None
    features: list[FeatureSpec]
    roles: FeatureRoles = Field(default_factory=FeatureRoles)
    na_values: list[str] = Field(default_factory=list)
    primary_metric: str | None = None
    interval: PredictionInterval | None = None
    metrics: dict[str, dict] = Field(default_factory=dict)
    selection: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    dataset: dict[str, Any] = Field(default_factory=dict)
    split: dict[str, int] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    dropped_columns: list[str] = Field(default_factory=list)
    """Columns of the training file left out of the model (constant, id-like): the API ignores them."""
    model_sha256: str | None = None
    """SHA-256 of ``model.joblib``, checked before the file is unpickled (None: saved before it was)."""

    @model_validator(mode="before")
    @classmethod
    def _from_older_files(cls, data: Any) -> Any:
        """Versions saved before ``na_values`` was a field of its own kept it only in ``config``."""
        if isinstance(data, dict) and "na_values" not in data:
            dataset = (data.get("config") or {}).get("dataset") or {}
            data = {**data, "na_values": list(dataset.get("na_values") or [])}
        return data

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        """Categorical and ordinal features (drift treats both as categories)."""
        return [feature.name for feature in self.features if feature.kind != "numeric"]

    @property
    def is_binary(self) -> bool:
        return self.task == "classification" and len(self.classes) == 2

    @property
    def test_metrics(self) -> dict[str, float]:
        return dict(self.metrics.get("test") or {})


@dataclass(frozen=True)
class LoadedModel:
    """A fitted pipeline with the metadata it was saved with."""

    version: str
    pipeline: Any
    metadata: ModelMetadata

    @property
    def task(self) -> str:
        return self.metadata.task

    @property
    def feature_names(self) -> list[str]:
        return self.metadata.feature_names


def new_version_id(model_name: str, when: datetime | None = None) -> str:
    """A sortable version id such as ``20261123T190501Z-logistic_regression``."""
    when = when or datetime.now(UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{model_name}"


def json_safe(value: Any) -> Any:
    """Strict JSON values: NaN and infinities become None, numpy scalars Python ones, datetimes ISO text."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(handle.name, path)


def save_version(
    models_dir: Path, version: str, pipeline: Any, metadata: ModelMetadata, reference: pd.DataFrame
) -> Path:
    """Save a fitted pipeline, its metadata and its reference sample as a new version folder."""
    folder = models_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / MODEL_FILE, compress=3)
    reference.to_parquet(folder / REFERENCE_FILE, index=False)
    saved = metadata.model_copy(update={"version": version, "model_sha256": file_sha256(folder / MODEL_FILE)})
    write_json_atomic(folder / METADATA_FILE, saved.model_dump(mode="json"))
    return folder


def list_versions(models_dir: Path) -> list[str]:
    """Every saved version, oldest first."""
    if not models_dir.is_dir():
        return []
    return sorted(
        p.name for p in models_dir.iterdir() if (p / METADATA_FILE).is_file() and (p / MODEL_FILE).is_file()
    )


def champion_version(models_dir: Path) -> str | None:
    """The version marked as champion, or None before any training."""
    path = models_dir / REGISTRY_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("champion")


def set_champion(models_dir: Path, version: str) -> None:
    """Mark an existing version as the champion."""
    _check_version(models_dir, version)
    write_json_atomic(
        models_dir / REGISTRY_FILE,
        {"champion": version, "updated_at": datetime.now(UTC).isoformat()},
    )


def _check_version(models_dir: Path, version: str) -> Path:
    if version not in list_versions(models_dir):
        raise ModelNotFoundError(f"unknown model version '{version}'; available: {list_versions(models_dir)}")
    return models_dir / version


def resolve_version(models_dir: Path, version: str | None = None) -> str:
    """The named version, else the champion; raises if there is no trained model."""
    if version:
        _check_version(models_dir, version)
        return version
    champion = champion_version(models_dir)
    if champion is None:
        raise ModelNotFoundError(f"no trained model in {models_dir}: run training first")
    return champion


def load_metadata(models_dir: Path, version: str | None = None) -> ModelMetadata:
    """Metadata of a version (default: the champion), validated against the contract."""
    folder = models_dir / resolve_version(models_dir, version)
    return ModelMetadata.model_validate_json((folder / METADATA_FILE).read_text(encoding="utf-8"))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_model_file(path: Path, metadata: ModelMetadata) -> None:
    """Refuse a model file whose SHA-256 is not the one its metadata recorded at saving.

    Raises:
        ModelIntegrityError: for a version saved without a digest, or a file that changed since.
    """
    if not metadata.model_sha256:
        raise ModelIntegrityError(
            f"version '{metadata.version}' has no recorded SHA-256 of {MODEL_FILE} (saved by an older "
            f"template); it is not loaded. Re-train to save it again: {RETRAIN_COMMAND}"
        )
    actual = file_sha256(path)
    if actual != metadata.model_sha256:
        raise ModelIntegrityError(
            f"{path} does not match the SHA-256 recorded in its metadata ({actual} != "
            f"{metadata.model_sha256}); it is not loaded. Restore the file or re-train: {RETRAIN_COMMAND}"
        )


def load_model(models_dir: Path, version: str | None = None) -> LoadedModel:
    """Load a version's pipeline and metadata (default: the champion), its file checked first.

    Raises:
        ModelIntegrityError: when the file's SHA-256 is missing from or differs from its metadata.
    """
    resolved = resolve_version(models_dir, version)
    metadata = load_metadata(models_dir, resolved)
    path = models_dir / resolved / MODEL_FILE
    verify_model_file(path, metadata)
    return LoadedModel(resolved, joblib.load(path), metadata)


def load_reference(models_dir: Path, version: str | None = None) -> pd.DataFrame:
    """The raw training-feature sample saved with a version (the drift reference)."""
    return pd.read_parquet(models_dir / resolve_version(models_dir, version) / REFERENCE_FILE)
