"""Scoring: apply a saved model version (pipeline + threshold) to raw feature rows.

The one place where a model's outputs and prediction ids are made: the API, the ``score`` CLI,
the monitoring simulator and the Dask engine all call `predict_frame` / `batch_outputs`; training
scores its bare fitted pipelines with `model_scores` and `predictions_from_scores`.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from tqdm import tqdm

import ft_engineering
import registry
import store

PROBABILITY_PREFIX = store.PROBABILITY_PREFIX


def predict_frame(model: registry.LoadedModel, frame: pd.DataFrame, *, flat: bool = False) -> pd.DataFrame:
    """Score raw feature rows with a loaded model version.

    Args:
        model: the version to use.
        frame: raw input rows; the model's feature columns are taken in training order.
        flat: give the class probabilities as ``probability_<class>`` columns instead of a column
            of dicts (what `flat_outputs` returns; much cheaper for big batches).

    Returns:
        One row per input row (same index): ``prediction``, ``score``, ``probabilities`` and
        ``threshold``, as `store.predictions` logs them. Binary: the stored threshold on the
        positive-class probability; multiclass: the most probable class; regression: the value,
        plus ``lower`` and ``upper`` when the version has a prediction interval (``interval``).
    """
    X = frame.reindex(columns=model.feature_names)
    if model.task == "regression":
        values = np.asarray(model.pipeline.predict(X), dtype=float)
        outputs = pd.DataFrame(
            {"prediction": values, "score": values, "probabilities": None, "threshold": np.nan},
            index=frame.index,
        )
        if flat:
            outputs = outputs.drop(columns="probabilities")
        interval = model.metadata.interval
        if interval:
            outputs["lower"], outputs["upper"] = (
                values - interval.half_width,
                values + interval.half_width,
            )
        return outputs
    proba = np.asarray(model.pipeline.predict_proba(X), dtype=float)
    classes = [str(c) for c in model.pipeline.classes_]
    positive, threshold = model.metadata.positive_class, model.metadata.threshold
    if len(classes) == 2 and positive in classes and threshold is not None:
        positive_index = classes.index(positive)
        score = proba[:, positive_index]
        labels = np.where(score >= threshold, positive, classes[1 - positive_index])
        cut = float(threshold)
    else:
        best = proba.argmax(axis=1)
        labels, score, cut = (
            np.asarray(classes, dtype=object)[best],
            proba[np.arange(len(proba)), best],
            np.nan,
        )
    outputs = pd.DataFrame({"prediction": labels, "score": score, "threshold": cut}, index=frame.index)
    if flat:
        # Column by column, not a join: a join would multiply rows of a frame with a repeated index.
        for position, label in enumerate(classes):
            outputs[PROBABILITY_PREFIX + label] = proba[:, position]
        return outputs
    outputs.insert(2, "probabilities", [dict(zip(classes, row)) for row in proba.tolist()])
    return outputs


def model_scores(pipeline, X: pd.DataFrame, kind: str, pos_label: Any = None) -> np.ndarray:
    """Binary: positive-class probability; multiclass: the probability matrix; regression: predictions."""
    if kind == "regression":
        return np.asarray(pipeline.predict(X), dtype=float)
    proba = pipeline.predict_proba(X)
    return proba[:, list(pipeline.classes_).index(pos_label)] if kind == "binary" else proba


def predictions_from_scores(
    scores: np.ndarray, kind: str, classes: list, pos_label: Any = None, threshold: float | None = None
) -> np.ndarray:
    """Labels (or values) from `model_scores`: the binary threshold, else the most probable class."""
    if kind == "regression":
        return scores
    if kind == "binary":
        negative = next(label for label in classes if label != pos_label)
        return np.where(scores >= threshold, pos_label, negative).astype(object)
    return np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]


def new_ids(n: int) -> list[str]:
    """``n`` new prediction ids of 32 hex characters: the time in ms, 48 random bits, the row.

    They sort by time and, within one call, by row, so new rows land at the end of the log's
    primary-key index instead of on random pages.
    """
    batch = f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"
    return [f"{batch}{row:08x}" for row in range(n)]


def batch_outputs(model: registry.LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """What batch scoring adds to each row: a new ``id``, the ``model_version``, then the flat
    `predict_frame` outputs (what `store.log_predictions` takes; shared by the API, the
    ``score`` CLI, the simulator and the Dask engine)."""
    outputs = predict_frame(model, frame, flat=True)
    outputs.insert(0, "id", new_ids(len(outputs)))
    outputs.insert(1, "model_version", model.version)
    return outputs


def flat_outputs(outputs: pd.DataFrame) -> pd.DataFrame:
    """Prediction columns for a table: the probabilities as one ``probability_<class>`` column each."""
    if "probabilities" not in outputs:
        return outputs
    flat = outputs.drop(columns="probabilities")
    probabilities = outputs["probabilities"].dropna()
    if len(probabilities):
        expanded = pd.DataFrame(probabilities.tolist(), index=probabilities.index).add_prefix(
            PROBABILITY_PREFIX
        )
        flat = flat.join(expanded)
    return flat


def missing_tokens(metadata: registry.ModelMetadata) -> list[str]:
    """The missing-value tokens a version was trained with."""
    return list(metadata.na_values)


def count_rows(path: Path) -> int:
    """Data rows in a CSV (lines after the header), counted in binary blocks."""
    lines = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


# ----------------------------------------------------------------------------- batch scoring
def score_file(
    model: registry.LoadedModel,
    input_path: Path,
    output_path: Path,
    *,
    chunk_size: int = 50_000,
    engine: sa.Engine | None = None,
    progress: bool = True,
) -> int:
    """Score a CSV of any size in chunks (bounded memory), writing input columns plus predictions.

    The output keeps the input's separator and decimal mark. With ``engine`` every chunk is also
    committed to the prediction log.

    Returns:
        The number of rows scored.
    """
    names = model.feature_names
    with open(input_path, encoding="utf-8-sig", newline="") as handle:
        csv_format = ft_engineering.sniff_csv_format(handle.read(64 * 1024))
    reader = ft_engineering.read_csv(
        input_path, na_values=missing_tokens(model.metadata), chunksize=chunk_size
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scored = 0
    with tqdm(total=count_rows(input_path), unit=" filas", disable=not progress, desc="Puntuando") as bar:
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            missing = [c for c in names if c not in chunk.columns]
            if missing:
                raise ValueError(f"the input lacks the model's columns {missing}")
            features = chunk[names]
            outputs = batch_outputs(model, features)
            if engine is not None:
                store.log_predictions(engine, features, outputs, model_version=model.version)
            chunk.join(outputs).to_csv(
                output_path,
                mode="w" if scored == 0 else "a",
                header=scored == 0,
                index=False,
                sep=csv_format["sep"],
                decimal=csv_format["decimal"],
            )
            scored += len(chunk)
            bar.update(len(chunk))
    return scored
