"""Reasons for each prediction: which model inputs push a row's score the most, and by how much.

A reason is a model input (a raw feature, or a derived feature under its config name), its value
on the row and its signed contribution to the row's *explained score*: the log-odds of the
positive class (binary), the score of the predicted class (multiclass) or the predicted value
(regression). Contributions are measured against a ``base_value``, and how depends on the model:

- ``linear_exact`` (logistic regression, ridge): each transformed column adds ``coef * (z - z0)``
  to the score, where ``z0`` is the *typical row* (every raw feature at its training median or
  mode, `registry.FeatureSpec.example`, derived features computed from them). A feature's
  contribution is the sum over its columns (a one-hot feature's levels, its missing indicator),
  so the contributions add up exactly to the score minus the base value, the score of the
  typical row. The score is the logit (binary) or the class's linear score (multiclass).
- ``xgboost_tree_shap``: XGBoost's own exact tree SHAP values (``pred_contribs=True``) on the
  transformed columns, summed back to features the same way; they add up to the margin minus
  the base value, XGBoost's expected margin over the training data.
- ``typical_value_replacement`` (random forest, histogram gradient boosting, dummy, anything
  else): a feature's contribution is the score of the row minus the score of the same row with
  that feature set to the typical row's value (its columns replaced after the preprocessing, so
  derived features stay as they are); the score of a class is its clipped log-odds. All
  features of all rows go through the model in one batch. Interactions are not split, so the
  contributions need not add up to the score minus the base value (the typical row's score).
  An input already at its typical value contributes 0 and is not scored again.

`feature_contributions` gives every input's contribution; `explain` keeps each row's ``top_k``
largest in absolute value as ``reason_<k>_feature`` / ``_value`` / ``_contribution`` columns
(empty where fewer inputs push the score at all) plus ``base_value``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge

import registry
from candidates import CANDIDATES, LabelEncodedClassifier, base_name

MAX_REASONS = 5
LINEAR_EXACT = "linear_exact"
XGBOOST_TREE_SHAP = "xgboost_tree_shap"
TYPICAL_VALUE_REPLACEMENT = "typical_value_replacement"
EXPLAINERS = {
    LINEAR_EXACT: (
        "exact: coefficient times (value - typical value) per transformed column, summed per feature; "
        "adds up to the score minus base_value, the score of the typical row"
    ),
    XGBOOST_TREE_SHAP: (
        "exact: XGBoost tree SHAP values (pred_contribs) summed per feature; adds up to the margin "
        "minus base_value, XGBoost's expected margin"
    ),
    TYPICAL_VALUE_REPLACEMENT: (
        "model-agnostic: score of the row minus the score with that feature at its typical value; "
        "base_value is the score of the typical row; interactions are not split"
    ),
}
"""What each explainer computes (for ``/model/info``)."""
LINEAR_MODELS = (LogisticRegression, Ridge)
LOG_ODDS_CLIP = 1e-3
"""Probabilities are clipped to [0.001, 0.999] before the log-odds (so at most ±6.9): a forest's
probability is often exactly 0 or 1, and a step from 0.98 to 1 must not outweigh every other."""
MAX_BATCH_ROWS = 200_000
"""Rows of one replacement batch (input rows times features), which bounds its memory."""


@dataclass(frozen=True)
class Contributions:
    """Every model input's contribution to each row's explained score.

    Attributes:
        values: one row per input row (same index), one column per model input.
        inputs: the rows' values of the same inputs, as the model read them (cleaned, derived).
        base_value: per row, what the contributions are measured from.
        score: per row, the explained score (log-odds, class score, margin or value).
        kind: the explainer (`explainer_kind`).
    """

    values: pd.DataFrame
    inputs: pd.DataFrame
    base_value: np.ndarray
    score: np.ndarray
    kind: str


def _stages(pipeline) -> tuple:
    """The fitted pipeline's three stages: cleaning with derived features, columns, estimator."""
    preprocessor, estimator = pipeline[0], pipeline[-1]
    columns = preprocessor[-1]
    if not isinstance(columns, ColumnTransformer):
        raise ValueError("explanations need a pipeline whose preprocessor ends in a ColumnTransformer")
    return preprocessor[:-1], columns, estimator


def _booster(estimator):
    """The XGBoost model inside an estimator (ours wraps classifiers in LabelEncodedClassifier:
    the fitted one once fitted, else the unfitted one it holds)."""
    if isinstance(estimator, LabelEncodedClassifier):
        estimator = getattr(estimator, "estimator_", estimator.estimator)
    return estimator if isinstance(estimator, xgboost.XGBModel) else None


def estimator_kind(estimator) -> str:
    """The explainer of a (fitted or unfitted) estimator: the one rule behind `explainer_kind` and
    `candidate_explainer_kind`."""
    if isinstance(estimator, LINEAR_MODELS):
        return LINEAR_EXACT
    return XGBOOST_TREE_SHAP if _booster(estimator) is not None else TYPICAL_VALUE_REPLACEMENT


def explainer_kind(model: registry.LoadedModel) -> str:
    """How a version's reasons are computed: ``linear_exact``, ``xgboost_tree_shap`` or
    ``typical_value_replacement`` (descriptions in `EXPLAINERS`)."""
    return estimator_kind(model.pipeline[-1])


def candidate_explainer_kind(task: str, model_name: str) -> str | None:
    """The explainer of a training candidate by its name (``xgboost_tuned`` too), without loading
    any model: `estimator_kind` of an unfitted estimator of that family; None for a name that is
    no candidate of the task (a version saved by hand)."""
    family = CANDIDATES.get(task, {}).get(base_name(model_name))
    return None if family is None else estimator_kind(family.factory())


def _input_of(output: str, inputs: list[str]) -> str:
    """The input column an output column of a scikit-learn transformer comes from, by its name:
    the same name (numbers, ordinals), ``missingindicator_<input>`` or ``<input>_<level>`` (one-hot;
    the longest input name that fits wins)."""
    if output in inputs:
        return output
    indicated = output.removeprefix("missingindicator_")
    if indicated in inputs:
        return indicated
    prefixes = [name for name in inputs if output.startswith(f"{name}_")]
    if not prefixes:
        raise ValueError(f"cannot tell which input the transformed column '{output}' comes from")
    return max(prefixes, key=len)


def output_sources(columns: ColumnTransformer) -> list[str]:
    """The model input behind each column of a fitted ColumnTransformer's output, in output order."""
    sources = []
    for _, transformer, inputs in columns.transformers_:
        if transformer != "drop" and len(inputs):
            inputs = list(inputs)
            sources += [_input_of(name, inputs) for name in transformer.get_feature_names_out()]
    return sources


def _group_matrix(sources: list[str]) -> tuple[list[str], np.ndarray]:
    """The model inputs in order, and the 0/1 matrix (columns x inputs) that sums each input's columns."""
    features = list(dict.fromkeys(sources))
    groups = np.zeros((len(sources), len(features)))
    groups[np.arange(len(sources)), [features.index(source) for source in sources]] = 1.0
    return features, groups


def typical_row(metadata: registry.ModelMetadata) -> pd.DataFrame:
    """One raw row with every feature at its training median (numbers) or mode (categories)."""
    return pd.DataFrame([{feature.name: feature.example for feature in metadata.features}])


def _explained_class(model: registry.LoadedModel, estimator, Z: np.ndarray) -> np.ndarray:
    """Per row, the index (in ``classes_``) of the class whose score is explained: the positive
    class (binary), the most probable one (multiclass); 0 for regression."""
    if model.task == "regression":
        return np.zeros(len(Z), dtype=int)
    classes = [str(label) for label in estimator.classes_]
    positive = model.metadata.positive_class
    if len(classes) == 2 and positive in classes and model.metadata.threshold is not None:
        return np.full(len(Z), classes.index(positive))
    return np.asarray(estimator.predict_proba(Z)).argmax(axis=1)


def _pick(matrix: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Row ``i``'s entry in column ``classes[i]``."""
    return matrix[np.arange(len(matrix)), classes]


def _linear(estimator, Z, z0, groups, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact contributions of a linear model: ``coef * (z - z0)`` per column, summed per input."""
    coef, intercept = np.atleast_2d(estimator.coef_), np.atleast_1d(estimator.intercept_)
    if isinstance(estimator, LogisticRegression) and len(coef) == 1:  # binary: the score of classes_[1]
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    weights = coef[classes]
    base = weights @ z0 + intercept[classes]
    return (weights * (Z - z0)) @ groups, base, _pick(Z @ coef.T + intercept, classes)


def _tree_shap(xgb_model, Z, groups, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """XGBoost's exact tree SHAP values, summed per input; the bias column is the base value."""
    booster = xgb_model.get_booster()
    matrix = xgboost.DMatrix(Z, feature_names=booster.feature_names)
    shap = np.asarray(booster.predict(matrix, pred_contribs=True), dtype=float)
    if shap.ndim == 3:  # multiclass: (rows, classes, columns + bias)
        shap = shap[np.arange(len(shap)), classes]
    elif isinstance(xgb_model, xgboost.XGBClassifier):  # binary: the margin of class 1
        shap = shap * np.where(classes == 1, 1.0, -1.0)[:, None]
    return shap[:, :-1] @ groups, shap[:, -1], shap.sum(axis=1)


def _scores(estimator, task: str, Z: np.ndarray) -> np.ndarray:
    """Each class's clipped log-odds (classification), or the value as one column (regression)."""
    if task == "regression":
        return np.asarray(estimator.predict(Z), dtype=float)[:, None]
    proba = np.clip(np.asarray(estimator.predict_proba(Z), dtype=float), LOG_ODDS_CLIP, 1 - LOG_ODDS_CLIP)
    return np.log(proba) - np.log1p(-proba)


def _replacement(estimator, task, Z, z0, groups, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score of each row minus its score with one input at the typical value, for every input at once:
    the rows, the typical row and one copy of the rows per input (that input's columns from ``z0``)
    go through the model as one batch. A copy whose input already has the typical value would score
    the same as the row (a contribution of 0), so it is left out of the batch."""
    n, n_inputs = len(Z), groups.shape[1]
    moved = ((Z != z0).astype(float) @ groups > 0).T  # (inputs, rows): the input is not at its typical value
    replaced = np.where(groups.T[:, None, :] > 0, z0, Z[None, :, :])[moved]
    scores = _scores(estimator, task, np.vstack([Z, z0[None, :], replaced]))
    score, base = _pick(scores[:n], classes), scores[n, classes]
    without = np.tile(score, (n_inputs, 1))
    without[moved] = _pick(scores[n + 1 :], np.broadcast_to(classes, moved.shape)[moved])
    return score[:, None] - without.T, base, score


def _chunked_replacement(estimator, task, Z, z0, groups, classes) -> tuple:
    """`_replacement` over blocks of rows, so that one batch stays under `MAX_BATCH_ROWS` rows."""
    step = max(1, MAX_BATCH_ROWS // (groups.shape[1] + 1))
    parts = [
        _replacement(estimator, task, Z[i : i + step], z0, groups, classes[i : i + step])
        for i in range(0, len(Z), step)
    ]
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def feature_contributions(model: registry.LoadedModel, frame: pd.DataFrame) -> Contributions:
    """Every model input's signed contribution to each row's explained score.

    Args:
        model: a saved version (`registry.load_model`).
        frame: raw input rows, as for `scoring.predict_frame` (the model's features are taken).

    Returns:
        The contributions, the input values, the base value and the explained score per row.
    """
    prepare, columns, estimator = _stages(model.pipeline)
    # the typical row goes last through the same transform calls (each row is transformed alone);
    # stacked as objects and typed once, so that a column the request leaves all empty (one record
    # without income) takes the typical row's type, which `pd.concat` is deprecating
    names = model.feature_names
    parts = [frame.reindex(columns=names), typical_row(model.metadata).reindex(columns=names)]
    stacked = np.concatenate([part.to_numpy(dtype=object) for part in parts])
    prepared = prepare.transform(pd.DataFrame(stacked, columns=names).infer_objects())
    matrix = np.asarray(columns.transform(prepared), dtype=float)
    Z, z0 = matrix[:-1], matrix[-1]
    features, groups = _group_matrix(output_sources(columns))
    classes, kind = _explained_class(model, estimator, Z), explainer_kind(model)
    if kind == LINEAR_EXACT:
        values, base, score = _linear(estimator, Z, z0, groups, classes)
    elif kind == XGBOOST_TREE_SHAP:
        values, base, score = _tree_shap(_booster(estimator), Z, groups, classes)
    else:
        values, base, score = _chunked_replacement(estimator, model.task, Z, z0, groups, classes)
    return Contributions(
        pd.DataFrame(values, index=frame.index, columns=features),
        prepared[features].iloc[:-1].set_axis(frame.index),
        np.asarray(base, dtype=float),
        np.asarray(score, dtype=float),
        kind,
    )


def reason_columns(top_k: int) -> list[str]:
    """The columns `explain` returns for ``top_k`` reasons."""
    parts = ("feature", "value", "contribution")
    return ["base_value", *(f"reason_{k}_{part}" for k in range(1, top_k + 1) for part in parts)]


def top_reasons(contributions: Contributions, top_k: int) -> pd.DataFrame:
    """Each row's ``top_k`` contributions largest in absolute value, as `reason_columns`; a reason
    whose contribution is zero (the input does not move the score) is left empty."""
    values = contributions.values.to_numpy()
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top_k]
    rows = np.arange(len(values))[:, None]
    chosen, names = values[rows, order], np.asarray(contributions.values.columns, dtype=object)[order]
    inputs = contributions.inputs.to_numpy(dtype=object)[rows, order]
    empty = chosen == 0
    table = {"base_value": contributions.base_value}
    for k in range(min(top_k, values.shape[1])):
        table[f"reason_{k + 1}_feature"] = np.where(empty[:, k], None, names[:, k])
        table[f"reason_{k + 1}_value"] = np.where(empty[:, k], None, inputs[:, k])
        table[f"reason_{k + 1}_contribution"] = np.where(empty[:, k], np.nan, chosen[:, k])
    return pd.DataFrame(table, index=contributions.values.index).reindex(columns=reason_columns(top_k))


def explain(model: registry.LoadedModel, frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The ``top_k`` reasons of each row's prediction (see the module docstring).

    Args:
        model: a saved version (`registry.load_model`).
        frame: raw input rows, as for `scoring.predict_frame`.
        top_k: how many reasons per row, 1 to `MAX_REASONS`.

    Returns:
        One row per input row (same index): ``base_value``, then ``reason_<k>_feature``,
        ``reason_<k>_value`` and ``reason_<k>_contribution`` for k = 1..top_k, largest first.

    Raises:
        ValueError: for a ``top_k`` out of range.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_REASONS:
        raise ValueError(f"top_k must be an integer from 1 to {MAX_REASONS}, not {top_k!r}")
    if not len(frame):
        return pd.DataFrame(columns=reason_columns(top_k), index=frame.index)
    return top_reasons(feature_contributions(model, frame), top_k)


# ----------------------------------------------------------------------------- for the API and dashboard
def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def row_reasons(row: Mapping[str, object]) -> list[dict]:
    """The reasons of one `explain` row as ``[{"feature", "value", "contribution"}, ...]``, largest
    first, without the empty ones (the shape of a JSON prediction's ``reasons``)."""
    reasons, k = [], 1
    while f"reason_{k}_feature" in row:
        if _present(row[f"reason_{k}_feature"]):
            value = row[f"reason_{k}_value"]
            reasons.append(
                {
                    "feature": row[f"reason_{k}_feature"],
                    "value": value if _present(value) else None,
                    "contribution": float(row[f"reason_{k}_contribution"]),
                }
            )
        k += 1
    return reasons


def _value_text(value: object) -> str:
    if not _present(value):
        return "sin dato"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        number = float(value)
        return f"{number:.0f}" if number.is_integer() or abs(number) >= 1000 else f"{number:.3g}"
    return str(value)


def reason_text(feature: str, value: object, contribution: float) -> str:
    """A reason in Spanish for the dashboard: ``"Income = 30: +0.80"``, ``"Income = sin dato: -0.12"``."""
    return f"{feature} = {_value_text(value)}: {contribution:+.2f}"
