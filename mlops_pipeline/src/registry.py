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

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.parquet"
REGISTRY_FILE = "registry.json"


class ModelNotFoundError(LookupError):
    """No trained model, or no version by that name."""


@dataclass(frozen=True)
class LoadedModel:
    """A fitted pipeline with the metadata it was saved with."""

    version: str
    pipeline: Any
    metadata: dict

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.metadata["features"]]


def new_version_id(model_name: str, when: datetime | None = None) -> str:
    """A sortable version id such as ``20261123T190501Z-logistic_regression``."""
    when = when or datetime.now(timezone.utc)
    return f"{when:%Y%m%dT%H%M%SZ}-{model_name}"


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(handle.name, path)


def save_version(models_dir: Path, version: str, pipeline: Any, metadata: dict, reference: pd.DataFrame) -> Path:
    """Save a fitted pipeline, its metadata and its reference sample as a new version folder."""
    folder = models_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / MODEL_FILE, compress=3)
    reference.to_parquet(folder / REFERENCE_FILE, index=False)
    write_json_atomic(folder / METADATA_FILE, {**metadata, "version": version})
    return folder


def list_versions(models_dir: Path) -> list[str]:
    """Every saved version, oldest first."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / METADATA_FILE).is_file() and (p / MODEL_FILE).is_file())


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
        models_dir / REGISTRY_FILE, {"champion": version, "updated_at": datetime.now(timezone.utc).isoformat()}
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


def load_metadata(models_dir: Path, version: str | None = None) -> dict:
    """Metadata of a version (default: the champion)."""
    folder = models_dir / resolve_version(models_dir, version)
    return json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))


def load_model(models_dir: Path, version: str | None = None) -> LoadedModel:
    """Load a version's pipeline and metadata (default: the champion)."""
    resolved = resolve_version(models_dir, version)
    pipeline = joblib.load(models_dir / resolved / MODEL_FILE)
    return LoadedModel(resolved, pipeline, load_metadata(models_dir, resolved))


def load_reference(models_dir: Path, version: str | None = None) -> pd.DataFrame:
    """The raw training-feature sample saved with a version (the drift reference)."""
    return pd.read_parquet(models_dir / resolve_version(models_dir, version) / REFERENCE_FILE)
