"""Candidates: the model families training compares, how config picks them, and the selection rule.

`CANDIDATES` is the catalog per task: how to build each family, its default parameters, its
Optuna search space and how simple it is. `training.models` and `training.search_spaces` in
config.yaml choose from it and override it (`candidate_params`, `search_space`); `make_estimator`
builds one, seeded. `select_champion` picks the best by CV, preferring simpler families on a tie.

`LabelEncodedClassifier` ends up inside every saved XGBoost classifier, so loading such a version
(the API, the batch scorer, a Dask worker) imports this small module, not the training script.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import validation as sk_validation
from xgboost import XGBClassifier, XGBRegressor

from settings import ConfigError, SearchParam, TrainingConfig, unknown

TUNED_SUFFIX = "_tuned"  # the name of a family's tuned candidate: xgboost -> xgboost_tuned


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Fit a classifier on integer-encoded labels and answer with the original labels.

    XGBoost only accepts labels ``0..k-1``; this wrapper encodes the target with a
    `LabelEncoder`, so the fitted pipeline predicts (and exposes in ``classes_``) the original
    string labels, as every other scikit-learn classifier does.

    Parameters
    ----------
    estimator : classifier
        The unfitted classifier to train on the encoded labels.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, X):
        sk_validation.check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=float)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


@dataclass(frozen=True)
class Candidate:
    """A model family: how to build it, its default parameters and search space, how simple it is."""

    factory: Callable[..., BaseEstimator]
    complexity: int
    defaults: dict = field(default_factory=dict)
    search_space: dict[str, SearchParam] = field(default_factory=dict)


def xgb_classifier(**params) -> LabelEncodedClassifier:
    """An XGBoost classifier that takes and gives the original labels."""
    return LabelEncodedClassifier(XGBClassifier(**params))


PENALTY_SPACE = SearchParam(low=1e-3, high=100.0, log=True)  # C of the logistic regression, alpha of ridge
FOREST = {"n_estimators": 200, "min_samples_leaf": 3, "n_jobs": 1}
FOREST_SPACE = {
    "max_depth": SearchParam(low=4, high=12),
    "min_samples_leaf": SearchParam(low=2, high=30),
    "max_features": SearchParam(choices=["sqrt", "log2"]),
}
HGB = {"learning_rate": 0.05, "max_iter": 150, "max_leaf_nodes": 15, "early_stopping": False}
HGB_SPACE = {
    "learning_rate": SearchParam(low=0.02, high=0.3, log=True),
    "max_leaf_nodes": SearchParam(low=8, high=48),
    "min_samples_leaf": SearchParam(low=5, high=60),
    "l2_regularization": SearchParam(low=1e-3, high=10.0, log=True),
}
XGB = {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 3, "tree_method": "hist", "n_jobs": 1}
XGB_SPACE = {
    "learning_rate": SearchParam(low=0.02, high=0.3, log=True),
    "max_depth": SearchParam(low=2, high=8),
    "min_child_weight": SearchParam(low=1, high=10),
    "subsample": SearchParam(low=0.6, high=1.0),
    "colsample_bytree": SearchParam(low=0.5, high=1.0),
    "reg_lambda": SearchParam(low=1e-2, high=10.0, log=True),
}
LOGISTIC = {"C": 1.0, "max_iter": 2000}

CANDIDATES: dict[str, dict[str, Candidate]] = {
    "classification": {
        "dummy": Candidate(DummyClassifier, 0, {"strategy": "prior"}),
        "logistic_regression": Candidate(LogisticRegression, 1, LOGISTIC, {"C": PENALTY_SPACE}),
        "random_forest": Candidate(RandomForestClassifier, 2, FOREST, FOREST_SPACE),
        "hist_gradient_boosting": Candidate(HistGradientBoostingClassifier, 3, HGB, HGB_SPACE),
        "xgboost": Candidate(xgb_classifier, 4, XGB, XGB_SPACE),
    },
    "regression": {
        "dummy": Candidate(DummyRegressor, 0, {"strategy": "mean"}),
        "ridge": Candidate(Ridge, 1, {"alpha": 1.0}, {"alpha": PENALTY_SPACE}),
        "random_forest": Candidate(RandomForestRegressor, 2, FOREST, FOREST_SPACE),
        "hist_gradient_boosting": Candidate(HistGradientBoostingRegressor, 3, HGB, HGB_SPACE),
        "xgboost": Candidate(XGBRegressor, 4, XGB, XGB_SPACE),
    },
}


def base_name(name: str) -> str:
    """The model family of a candidate name (``xgboost_tuned`` -> ``xgboost``)."""
    return name.removesuffix(TUNED_SUFFIX)


def candidate_params(task: str, training: TrainingConfig) -> dict[str, dict]:
    """Each configured candidate (all of the task's when none are) with its parameters.

    Raises:
        ConfigError: naming ``training.models`` or ``training.search_spaces`` for an unknown name.
    """
    known = CANDIDATES[task]
    configured = training.models or {name: {} for name in known}
    for key, names in (("models", configured), ("search_spaces", training.search_spaces)):
        absent = [name for name in names if name not in known]
        if absent:
            what = "un modelo de " + ("regresión" if task == "regression" else "clasificación")
            raise ConfigError(f"training.{key}: {unknown(absent[0], sorted(known), what)}")
    return {name: {**known[name].defaults, **(params or {})} for name, params in configured.items()}


def make_estimator(task: str, name: str, params: dict, seed: int) -> BaseEstimator:
    """The unfitted estimator of a candidate family with ``params`` and the run's seed."""
    try:
        estimator = CANDIDATES[task][base_name(name)].factory(**params)
    except TypeError as exc:
        raise ConfigError(f"training.models.{base_name(name)}: parámetro no válido ({exc})") from exc
    seeds = {key: seed for key in estimator.get_params() if key.endswith("random_state")}
    return estimator.set_params(**seeds)


def search_space(task: str, name: str, training: TrainingConfig) -> dict[str, SearchParam]:
    """The Optuna space of a candidate: the config's, else the family's default."""
    return dict(training.search_spaces.get(name) or CANDIDATES[task][name].search_space)


def is_tunable(task: str, name: str, training: TrainingConfig) -> bool:
    """Whether a candidate is searched: not the baseline, not already tuned, with a space."""
    if name.endswith(TUNED_SUFFIX) or CANDIDATES[task][name].complexity == 0:
        return False
    return bool(search_space(task, name, training))


def suggest(trial, name: str, param: SearchParam) -> Any:
    """An Optuna trial's value for one parameter (integers when both ends are)."""
    if param.choices is not None:
        return trial.suggest_categorical(name, param.choices)
    if isinstance(param.low, int) and isinstance(param.high, int):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)


def in_space(value: Any, param: SearchParam) -> bool:
    """Whether a configured value lies in a parameter's space (so it can be the first trial)."""
    if param.choices is not None:
        return value in param.choices
    return isinstance(value, (int, float)) and param.low <= value <= param.high


# ----------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class Selection:
    """The champion and why it was picked."""

    champion: str
    best: str
    primary_metric: str
    greater_is_better: bool
    tolerance: float
    margin: float
    eligible: list[str]
    rule: str
    reason: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def selection_rule(primary: str, greater_is_better: bool, tolerance: float) -> str:
    """The selection rule in words, for the user."""
    direction = "mayor" if greater_is_better else "menor"
    return (
        f"Gana el {direction} {primary} medio en validación cruzada sobre el conjunto de entrenamiento; "
        f"entre los modelos a no más de {tolerance:g} desviación(es) estándar de CV del mejor, se "
        "prefiere el más simple (dummy < lineal < random forest < HGB < XGBoost) y, dentro de una "
        "misma familia, la versión sin ajustar (la elección no depende de tiempos medidos, para que "
        "sea reproducible)."
    )


def select_champion(
    table: pd.DataFrame, primary: str, greater_is_better: bool, tolerance: float
) -> Selection:
    """The champion from CV results (``table``: per candidate ``cv_<primary>_mean`` / ``_std``,
    ``complexity``): the best primary metric, unless simpler models are within ``tolerance``
    standard deviations (of the best one's CV scores): then the simplest of them.

    Simpler means a lower ``complexity``, then the untuned version of a family. Measured times are
    not used, so the same CV scores always give the same champion.
    """
    means, stds = table[f"cv_{primary}_mean"], table[f"cv_{primary}_std"]
    valid = means.dropna()
    if valid.empty:
        raise ValueError(f"no candidate has a cross-validated {primary}")
    best = valid.idxmax() if greater_is_better else valid.idxmin()
    margin = float(tolerance * stds[best])
    gap = (valid[best] - valid) if greater_is_better else (valid - valid[best])
    eligible = table.loc[gap.index[gap <= margin + 1e-12]]
    tuned = eligible.index.str.endswith(TUNED_SUFFIX)
    champion = eligible.assign(tuned=tuned).sort_values(["complexity", "tuned"], kind="stable").index[0]
    names = [str(name) for name in eligible.index]
    direction = "mayor" if greater_is_better else "menor"
    best_text = f"el {direction} {primary} de CV ({valid[best]:.4f} ± {stds[best]:.4f})"
    if champion == best:
        reason = (
            f"{champion} tiene {best_text} y ningún modelo más simple queda dentro del margen ({margin:.4f})."
        )
    else:
        reason = (
            f"{best} tiene {best_text}; {len(names)} modelos quedan dentro del margen de {margin:.4f} "
            f"({', '.join(names)}) y el más simple de ellos es {champion} ({valid[champion]:.4f})."
        )
    rule = selection_rule(primary, greater_is_better, tolerance)
    return Selection(
        str(champion), str(best), primary, greater_is_better, tolerance, margin, names, rule, reason
    )
