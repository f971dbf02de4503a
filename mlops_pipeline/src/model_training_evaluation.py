"""Training and evaluation: compare candidate models, tune the leaders, choose and save a champion.

Every candidate is one scikit-learn Pipeline built by `build_model` (cleaning, derived features,
preprocessing, estimator) and scored with one ``scoring`` dict whose metrics are the same
functions `summarize_classification` / `summarize_regression` compute. That dict feeds the
cross-validation, the summary table and the champion choice.

Steps: load and split the configured data; K-fold CV on the training split (stratified for
classification) giving mean and standard deviation of each metric, fit time and per-row predict
time; an Optuna search for the leading candidates; the decision threshold (binary only) chosen
on out-of-fold predictions; test-set metrics; the selection rule; every candidate saved as a
registry version, the champion marked; the summary table, comparison plots and MLflow runs.

CLI: ``python mlops_pipeline/src/model_training_evaluation.py [--config PATH] [--artifacts DIR]
[--no-tuning] [--no-tracking] [--trials N] [--timeout S] [--models a,b] [--primary-metric M]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibrationDisplay
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    precision_recall_curve,
    roc_curve,
)
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, label_binarize
from sklearn.utils import validation as sk_validation
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm
from xgboost import XGBClassifier, XGBRegressor

import drift
import ft_engineering
import metrics
import registry
from settings import ConfigError, ProjectConfig, SearchParam, Settings, TrainingConfig, get_settings

logger = logging.getLogger(__name__)

TUNED_SUFFIX = "_tuned"
PARALLEL_BACKEND = "threading"
INTERVAL_LEVEL = 0.9
LIBRARIES = ["scikit-learn", "xgboost", "pandas", "numpy", "scipy", "optuna", "mlflow", "joblib"]


# ----------------------------------------------------------------------------- XGBoost label wrapper
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


# ----------------------------------------------------------------------------- the one model builder
def build_model(estimator: BaseEstimator, preprocessor: Pipeline) -> Pipeline:
    """One Pipeline: the preprocessor (cleaning, derived features, ColumnTransformer), then the estimator.

    Args:
        estimator: an unfitted classifier or regressor.
        preprocessor: the unfitted pipeline from `ft_engineering.preprocessor_from_config`.

    Returns:
        ``Pipeline([("preprocessor", preprocessor), ("model", estimator)])``, unfitted.
    """
    return Pipeline([("preprocessor", clone(preprocessor)), ("model", clone(estimator))])


# ----------------------------------------------------------------------------- metrics


def prediction_interval(y_true, y_pred, level: float = INTERVAL_LEVEL) -> dict:
    """The half-width of a ``level`` prediction interval from out-of-fold absolute residuals.

    It is the conformal quantile (the ceil((n + 1) * level)-th smallest residual), so
    ``prediction ± half_width`` covers about ``level`` of new true values drawn like the training
    rows, whatever the model (marginal coverage: the same width on every row).
    """
    residuals = np.sort(np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)))
    rank = min(math.ceil((len(residuals) + 1) * level), len(residuals))
    return {
        "level": level,
        "half_width": float(residuals[rank - 1]),
        "method": "conformal quantile of out-of-fold absolute residuals",
    }


BINARY_NOTE = (
    "En CV, las métricas de etiqueta (accuracy, precision, recall, F1, balanced accuracy) usan la clase más probable "
    "(umbral 0.5); en prueba usan el umbral de cada modelo, elegido sobre sus predicciones fuera de pliegue."
)
DISPLAY_METRICS = {
    "binary": ["roc_auc", "pr_auc", "f1", "balanced_accuracy", "brier"],
    "multiclass": ["roc_auc_ovr", "f1_macro", "balanced_accuracy", "log_loss"],
    "regression": ["rmse", "mae", "r2", "mape"],
}


def summarize_classification(
    y_true, y_pred, y_score, *, labels: list | None = None, pos_label: Any = None
) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall, F1, ROC-AUC, PR-AUC, log loss and Brier score.

    Args:
        y_true: true labels.
        y_pred: predicted labels.
        y_score: binary: the positive-class probability (n,); multiclass: the (n, k) probability
            matrix with columns in the order of ``labels``.
        labels: every class, in the column order of ``y_score`` (default: sorted labels seen).
        pos_label: the positive class for binary tasks (default: the last of ``labels``).

    Returns:
        {metric: value}; multiclass uses macro and weighted averages and one-vs-rest ROC/PR-AUC.
    """
    y_score = np.asarray(y_score, dtype=float)
    labels = (
        list(labels)
        if labels is not None
        else sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    )
    binary = y_score.ndim == 1 or y_score.shape[1] == 2 and len(labels) == 2
    if not binary:
        return {
            name: metric(y_true, y_pred, y_score)
            for name, metric in metrics.metric_table("multiclass", labels).items()
        }
    pos_label = labels[-1] if pos_label is None else pos_label
    if y_score.ndim == 2:
        y_score = y_score[:, labels.index(pos_label)]
    return {
        name: metric(y_true, y_pred, y_score)
        for name, metric in metrics.metric_table("binary", labels, pos_label).items()
    }


def summarize_regression(y_true, y_pred) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE (NaN where some true value is zero)."""
    return {name: metric(y_true, y_pred) for name, metric in metrics.metric_table("regression").items()}


def scoring_from(metrics: dict[str, metrics.Metric]) -> dict[str, Any]:
    """The ``scoring`` dict for `cross_validate`: the same metrics as scorers."""
    return {name: metric.scorer() for name, metric in metrics.items()}


# ----------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class Candidate:
    """A model family: how to build it, its default parameters and search space, how simple it is."""

    factory: Callable[..., BaseEstimator]
    complexity: int
    defaults: dict = field(default_factory=dict)
    search_space: dict[str, SearchParam] = field(default_factory=dict)


def _xgb_classifier(**params) -> LabelEncodedClassifier:
    return LabelEncodedClassifier(XGBClassifier(**params))


_TREE_SPACE = {
    "max_depth": SearchParam(low=4, high=12),
    "min_samples_leaf": SearchParam(low=2, high=30),
    "max_features": SearchParam(choices=["sqrt", "log2"]),
}
_HGB_SPACE = {
    "learning_rate": SearchParam(low=0.02, high=0.3, log=True),
    "max_leaf_nodes": SearchParam(low=8, high=48),
    "min_samples_leaf": SearchParam(low=5, high=60),
    "l2_regularization": SearchParam(low=1e-3, high=10.0, log=True),
}
_XGB_SPACE = {
    "learning_rate": SearchParam(low=0.02, high=0.3, log=True),
    "max_depth": SearchParam(low=2, high=8),
    "min_child_weight": SearchParam(low=1, high=10),
    "subsample": SearchParam(low=0.6, high=1.0),
    "colsample_bytree": SearchParam(low=0.5, high=1.0),
    "reg_lambda": SearchParam(low=1e-2, high=10.0, log=True),
}
_XGB_DEFAULTS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 3,
    "tree_method": "hist",
    "n_jobs": 1,
}

CANDIDATES: dict[str, dict[str, Candidate]] = {
    "classification": {
        "dummy": Candidate(DummyClassifier, 0, {"strategy": "prior"}),
        "logistic_regression": Candidate(
            LogisticRegression,
            1,
            {"C": 1.0, "max_iter": 2000},
            {"C": SearchParam(low=1e-3, high=100.0, log=True)},
        ),
        "random_forest": Candidate(
            RandomForestClassifier, 2, {"n_estimators": 200, "min_samples_leaf": 3, "n_jobs": 1}, _TREE_SPACE
        ),
        "hist_gradient_boosting": Candidate(
            HistGradientBoostingClassifier,
            3,
            {"learning_rate": 0.05, "max_iter": 150, "max_leaf_nodes": 15, "early_stopping": False},
            _HGB_SPACE,
        ),
        "xgboost": Candidate(_xgb_classifier, 4, _XGB_DEFAULTS, _XGB_SPACE),
    },
    "regression": {
        "dummy": Candidate(DummyRegressor, 0, {"strategy": "mean"}),
        "ridge": Candidate(Ridge, 1, {"alpha": 1.0}, {"alpha": SearchParam(low=1e-3, high=100.0, log=True)}),
        "random_forest": Candidate(
            RandomForestRegressor, 2, {"n_estimators": 200, "min_samples_leaf": 3, "n_jobs": 1}, _TREE_SPACE
        ),
        "hist_gradient_boosting": Candidate(
            HistGradientBoostingRegressor,
            3,
            {"learning_rate": 0.05, "max_iter": 150, "max_leaf_nodes": 15, "early_stopping": False},
            _HGB_SPACE,
        ),
        "xgboost": Candidate(XGBRegressor, 4, _XGB_DEFAULTS, _XGB_SPACE),
    },
}


def base_name(name: str) -> str:
    """The model family of a candidate name (``xgboost_tuned`` -> ``xgboost``)."""
    return name.removesuffix(TUNED_SUFFIX)


def candidate_params(task: str, training: TrainingConfig) -> dict[str, dict]:
    """Each configured candidate (all of the task's when none are) with its parameters.

    Raises:
        ConfigError: naming ``training.models.<name>`` when it is not a model for the task.
    """
    known = CANDIDATES[task]
    configured = training.models or {name: {} for name in known}
    unknown = [name for name in configured if name not in known]
    if unknown:
        raise ConfigError(f"training.models: {unknown} are not {task} models; choose from {sorted(known)}")
    unsearched = [name for name in training.search_spaces if name not in known]
    if unsearched:
        raise ConfigError(
            f"training.search_spaces: {unsearched} are not {task} models; choose from {sorted(known)}"
        )
    return {name: {**known[name].defaults, **(params or {})} for name, params in configured.items()}


def make_estimator(task: str, name: str, params: dict, seed: int) -> BaseEstimator:
    """The unfitted estimator of a candidate family with ``params`` and the run's seed."""
    candidate = CANDIDATES[task][base_name(name)]
    try:
        estimator = candidate.factory(**params)
    except TypeError as exc:
        raise ConfigError(f"training.models.{base_name(name)}: {exc}") from exc
    seeded = {key: seed for key in estimator.get_params() if key.endswith("random_state")}
    return estimator.set_params(**seeded)


def search_space(task: str, name: str, training: TrainingConfig) -> dict[str, SearchParam]:
    """The Optuna space of a candidate: the config's, else the family's default."""
    return dict(training.search_spaces.get(name) or CANDIDATES[task][name].search_space)


# ----------------------------------------------------------------------------- context of one run
@dataclass(frozen=True)
class TrainingContext:
    """Everything a candidate evaluation needs, fixed for one run."""

    data: ft_engineering.Dataset
    training: TrainingConfig
    kind: str
    metrics: dict[str, metrics.Metric]
    primary: str
    preprocessor: Pipeline
    cv: Any
    seed: int

    @property
    def scoring(self) -> dict[str, Any]:
        return scoring_from(self.metrics)

    @property
    def task(self) -> str:
        return self.data.task

    @property
    def greater_is_better(self) -> bool:
        return self.metrics[self.primary].greater_is_better


def task_kind(data: ft_engineering.Dataset) -> str:
    """The task kind: binary, multiclass or regression."""
    if data.task == "regression":
        return "regression"
    return "binary" if len(data.classes) == 2 else "multiclass"


def make_context(
    data: ft_engineering.Dataset, config: ProjectConfig, primary_metric: str | None = None
) -> TrainingContext:
    """The run's metrics, primary metric, preprocessor and CV splitter."""
    training, seed = config.training, config.split.seed
    kind = task_kind(data)
    table = metrics.metric_table(kind, data.classes, data.positive_class)
    primary = primary_metric or training.primary_metric or metrics.DEFAULT_PRIMARY[kind]
    if primary not in table:
        raise ConfigError(
            f"training.primary_metric '{primary}' is not a {kind} metric; choose from {sorted(table)}"
        )
    splitter = KFold if kind == "regression" else StratifiedKFold
    cv = splitter(n_splits=training.cv_folds, shuffle=True, random_state=seed)
    preprocessor = ft_engineering.preprocessor_from_config(data.roles, config.dataset)
    return TrainingContext(data, training, kind, table, primary, preprocessor, cv, seed)


# ----------------------------------------------------------------------------- scores and thresholds
def model_scores(pipeline, X: pd.DataFrame, kind: str, pos_label: Any = None) -> np.ndarray:
    """Binary: positive-class probability; multiclass: the probability matrix; regression: predictions."""
    if kind == "regression":
        return np.asarray(pipeline.predict(X), dtype=float)
    proba = pipeline.predict_proba(X)
    if kind == "binary":
        return proba[:, list(pipeline.classes_).index(pos_label)]
    return proba


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


def select_threshold(y_true, y_score, rule: str, pos_label: Any, fixed: float = 0.5) -> float:
    """The decision threshold on the positive-class probability, by ``rule``.

    ``f1``: the threshold with the best F1 of the positive class; ``youden``: the one maximising
    TPR - FPR; ``fixed``: ``fixed``. Call it on out-of-fold predictions, never on test rows.
    """
    positive = metrics._is_positive(y_true, pos_label)
    if rule == "fixed" or positive.all() or not positive.any():
        return float(fixed)
    if rule == "f1":
        precision, recall, thresholds = precision_recall_curve(positive, y_score)
        denominator = precision[:-1] + recall[:-1]
        f1 = np.divide(
            2 * precision[:-1] * recall[:-1],
            denominator,
            out=np.zeros_like(denominator),
            where=denominator > 0,
        )
        return float(thresholds[int(np.argmax(f1))])
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(positive, y_score)
        return float(min(thresholds[int(np.argmax(tpr - fpr))], 1.0))
    raise ConfigError(f"training.threshold_rule '{rule}' is not one of f1, youden, fixed")


# ----------------------------------------------------------------------------- evaluation of a candidate
@contextmanager
def compute_limits() -> Iterator[None]:
    """Parallel CV folds in threads, each estimator single-threaded (no oversubscription on small machines)."""
    with threadpool_limits(limits=1), parallel_config(backend=PARALLEL_BACKEND):
        yield


@dataclass
class CandidateResult:
    """One candidate's CV and test results and its model refitted on the whole training split."""

    name: str
    params: dict
    pipeline: Pipeline
    cv_scores: dict[str, np.ndarray]
    fit_time: float
    predict_time_per_row: float
    test_metrics: dict[str, float]
    test_scores: np.ndarray
    test_predictions: np.ndarray
    oof_index: pd.Index
    oof_scores: np.ndarray
    threshold: float | None
    complexity: int

    def cv_summary(self) -> dict[str, dict[str, float]]:
        return {
            m: {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v))} for m, v in self.cv_scores.items()
        }

    def flat_metrics(self) -> dict[str, float]:
        """``cv_<metric>_mean`` / ``cv_<metric>_std``, ``test_<metric>``, ``fit_time_s`` and ``predict_us_per_row``."""
        flat = {f"cv_{m}_{s}": v for m, stats in self.cv_summary().items() for s, v in stats.items()}
        flat |= {f"test_{m}": v for m, v in self.test_metrics.items()}
        return flat | {"fit_time_s": self.fit_time, "predict_us_per_row": self.predict_time_per_row * 1e6}


def out_of_fold_scores(
    cv_result: dict, X: pd.DataFrame, kind: str, pos_label: Any
) -> tuple[pd.Index, np.ndarray]:
    """Each training row scored by the fold model that did not see it; rows in fold order."""
    indices = cv_result["indices"]["test"]
    parts = [
        model_scores(estimator, X.iloc[rows], kind, pos_label)
        for estimator, rows in zip(cv_result["estimator"], indices)
    ]
    order = np.concatenate(indices)
    return X.index[order], np.concatenate(parts)


def evaluate_candidate(
    name: str, params: dict, split: ft_engineering.Split, context: TrainingContext
) -> CandidateResult:
    """Cross-validate a candidate on the training split, choose its threshold, refit, score the test split.

    The threshold only sees out-of-fold predictions of training rows; the test split is used
    after everything is fixed, to report test metrics.
    """
    data, kind = context.data, context.kind
    pipeline = build_model(make_estimator(data.task, name, params, context.seed), context.preprocessor)
    with compute_limits():
        cv_result = cross_validate(
            pipeline,
            split.X_train,
            split.y_train,
            cv=context.cv,
            scoring=context.scoring,
            n_jobs=context.training.n_jobs,
            return_estimator=True,
            return_indices=True,
        )
        oof_index, oof_scores = out_of_fold_scores(cv_result, split.X_train, kind, data.positive_class)
        pipeline.fit(split.X_train, split.y_train)
        start = time.perf_counter()
        test_scores = model_scores(pipeline, split.X_test, kind, data.positive_class)
        predict_time = (time.perf_counter() - start) / max(len(split.X_test), 1)
    threshold = None
    if kind == "binary":
        threshold = select_threshold(
            split.y_train.loc[oof_index],
            oof_scores,
            context.training.threshold_rule,
            data.positive_class,
            context.training.fixed_threshold,
        )
    test_predictions = predictions_from_scores(
        test_scores, kind, data.classes, data.positive_class, threshold
    )
    if kind == "regression":
        test_metrics = summarize_regression(split.y_test, test_predictions)
    else:
        test_metrics = summarize_classification(
            split.y_test, test_predictions, test_scores, labels=data.classes, pos_label=data.positive_class
        )
    return CandidateResult(
        name=name,
        params=params,
        pipeline=pipeline,
        cv_scores={m: np.asarray(cv_result[f"test_{m}"], dtype=float) for m in context.metrics},
        fit_time=float(np.mean(cv_result["fit_time"])),
        predict_time_per_row=predict_time,
        test_metrics=test_metrics,
        test_scores=test_scores,
        test_predictions=test_predictions,
        oof_index=oof_index,
        oof_scores=oof_scores,
        threshold=threshold,
        complexity=CANDIDATES[data.task][base_name(name)].complexity,
    )


# ----------------------------------------------------------------------------- tuning
def _suggest(trial, name: str, param: SearchParam):
    if param.choices is not None:
        return trial.suggest_categorical(name, param.choices)
    if isinstance(param.low, int) and isinstance(param.high, int):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)


def tune_candidate(
    name: str, params: dict, split: ft_engineering.Split, context: TrainingContext, timeout: float
) -> dict:
    """Optuna (seeded TPE) over the candidate's search space, maximising or minimising the CV primary metric.

    The configured parameters are the first trial, so the search never reports worse than them.

    Returns:
        The best parameters found, merged over ``params``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(context.task, name, context.training)
    if not space:
        return dict(params)
    scorer = context.scoring[context.primary]

    def objective(trial) -> float:
        trial_params = {**params, **{key: _suggest(trial, key, p) for key, p in space.items()}}
        pipeline = build_model(
            make_estimator(context.task, name, trial_params, context.seed), context.preprocessor
        )
        with compute_limits():
            scores = cross_val_score(
                pipeline,
                split.X_train,
                split.y_train,
                cv=context.cv,
                scoring=scorer,
                n_jobs=context.training.n_jobs,
            )
        return float(np.mean(scores))

    direction = "maximize" if context.greater_is_better else "minimize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=context.seed))
    first = {key: params[key] for key in space if key in params and _in_space(params[key], space[key])}
    if first:
        study.enqueue_trial(first, skip_if_exists=True)
    study.optimize(objective, n_trials=context.training.tuning.trials, timeout=timeout)
    logger.info(
        "tuned %s: %d trials, best CV %s = %.4f", name, len(study.trials), context.primary, study.best_value
    )
    return {**params, **study.best_params}


def _in_space(value: Any, param: SearchParam) -> bool:
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
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def select_champion(
    table: pd.DataFrame, primary: str, greater_is_better: bool, tolerance: float
) -> Selection:
    """Pick the champion from CV results: best primary metric, preferring the simpler model when
    its mean is within ``tolerance`` CV standard deviations of the best.

    Simpler means a lower ``complexity`` (dummy < linear < random forest < HGB < XGBoost, which
    is also roughly their training cost), then the untuned version of a family. Measured times
    are not used, so the same CV scores always give the same champion.

    Args:
        table: one row per candidate (index = name) with ``cv_<primary>_mean``,
            ``cv_<primary>_std`` and ``complexity``.
        primary: the metric name.
        greater_is_better: its direction.
        tolerance: how many standard deviations (of the best model's CV scores) count as a tie.
    """
    means, stds = table[f"cv_{primary}_mean"], table[f"cv_{primary}_std"]
    valid = means.dropna()
    if valid.empty:
        raise ValueError(f"no candidate has a cross-validated {primary}")
    best = valid.idxmax() if greater_is_better else valid.idxmin()
    margin = float(tolerance * stds[best])
    gap = (valid[best] - valid) if greater_is_better else (valid - valid[best])
    eligible = table.loc[gap.index[gap <= margin + 1e-12]]
    tuned = pd.Series(eligible.index.str.endswith(TUNED_SUFFIX), index=eligible.index, name="tuned")
    champion = eligible.assign(tuned=tuned).sort_values(["complexity", "tuned"], kind="stable").index[0]
    direction = "mayor" if greater_is_better else "menor"
    rule = (
        f"Gana el {direction} {primary} medio en validación cruzada sobre el conjunto de entrenamiento; "
        f"entre los modelos a no más de {tolerance:g} desviación(es) estándar de CV del mejor, se prefiere el más simple "
        "(dummy < lineal < random forest < HGB < XGBoost) y, dentro de una misma familia, la versión sin ajustar "
        "(la elección no depende de tiempos medidos, para que sea reproducible)."
    )
    if champion == best:
        reason = f"{champion} tiene el {direction} {primary} de CV ({valid[best]:.4f} ± {stds[best]:.4f}) y ningún modelo más simple queda dentro del margen ({margin:.4f})."
    else:
        reason = (
            f"{best} tiene el {direction} {primary} de CV ({valid[best]:.4f} ± {stds[best]:.4f}); "
            f"{len(eligible)} modelos quedan dentro del margen de {margin:.4f} ({', '.join(map(str, eligible.index))}) "
            f"y el más simple de ellos es {champion} ({valid[champion]:.4f})."
        )
    return Selection(
        str(champion),
        str(best),
        primary,
        greater_is_better,
        tolerance,
        margin,
        [str(n) for n in eligible.index],
        rule,
        reason,
    )


def is_tunable(task: str, name: str, training: TrainingConfig) -> bool:
    """Whether a configured candidate takes part in the search: not the baseline, not already tuned, a space to search."""
    return (
        not name.endswith(TUNED_SUFFIX)
        and CANDIDATES[task][name].complexity > 0
        and bool(search_space(task, name, training))
    )


def leading_candidates(
    results: dict[str, CandidateResult], context: TrainingContext, count: int
) -> list[str]:
    """The ``count`` best non-baseline candidates by CV primary metric that have a search space."""
    tunable = {
        name: result.cv_summary()[context.primary]["mean"]
        for name, result in results.items()
        if is_tunable(context.task, name, context.training)
    }
    ranked = sorted(tunable, key=lambda name: tunable[name], reverse=context.greater_is_better)
    return ranked[:count]


# ----------------------------------------------------------------------------- summary table
def summary_table(results: dict[str, CandidateResult], context: TrainingContext) -> pd.DataFrame:
    """One row per candidate: CV mean and std of each metric, fit and predict time, test metrics, threshold."""
    rows = {
        name: result.flat_metrics() | {"threshold": result.threshold, "complexity": result.complexity}
        for name, result in results.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table.sort_values(
        f"cv_{context.primary}_mean", ascending=not context.greater_is_better, kind="stable"
    )


def display_metrics(kind: str, primary: str) -> list[str]:
    """The metrics shown for a task kind, the primary one first."""
    return [primary, *[m for m in DISPLAY_METRICS[kind] if m != primary]]


def display_table(table: pd.DataFrame, kind: str, primary: str) -> pd.DataFrame:
    """The summary table for people: CV as "mean ± std", test values, times; Spanish headings."""
    metrics = display_metrics(kind, primary)
    out = pd.DataFrame(index=table.index.rename("Modelo"))
    for metric in metrics:
        out[f"CV {metric}"] = [
            f"{m:.4f} ± {s:.4f}" for m, s in zip(table[f"cv_{metric}_mean"], table[f"cv_{metric}_std"])
        ]
    for metric in metrics:
        out[f"Prueba {metric}"] = table[f"test_{metric}"].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    out["Ajuste (s)"] = table["fit_time_s"].map("{:.2f}".format)
    out["Predicción (µs/fila)"] = table["predict_us_per_row"].map("{:.1f}".format)
    if kind == "binary":
        out["Umbral"] = table["threshold"].map("{:.3f}".format)
    out["Campeón"] = table["champion"].map({True: "★", False: ""})
    return out.reset_index()


# ----------------------------------------------------------------------------- plots
def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _top_label(scores: np.ndarray) -> np.ndarray:
    """Score per contract: binary/regression as they are; multiclass: probability of the predicted class."""
    return scores.max(axis=1) if scores.ndim == 2 else scores


def plot_curves(
    results: dict[str, CandidateResult], y_test: pd.Series, context: TrainingContext, path: Path
) -> Path:
    """ROC and PR curves of every candidate on the test split (multiclass: micro-averaged one-vs-rest)."""
    figure = Figure(figsize=(13, 5.5))
    roc_ax, pr_ax = figure.subplots(1, 2)
    data = context.data
    for name, result in results.items():
        if context.kind == "binary":
            y_true, scores, pos = y_test, result.test_scores, data.positive_class
        else:
            y_true, scores, pos = (
                label_binarize(y_test, classes=data.classes).ravel(),
                result.test_scores.ravel(),
                1,
            )
        RocCurveDisplay.from_predictions(y_true, scores, pos_label=pos, name=name, ax=roc_ax)
        PrecisionRecallDisplay.from_predictions(y_true, scores, pos_label=pos, name=name, ax=pr_ax)
    suffix = "" if context.kind == "binary" else " (micro-promedio uno-contra-resto)"
    roc_ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_ax.set(
        title=f"Curvas ROC en prueba{suffix}",
        xlabel="Tasa de falsos positivos",
        ylabel="Tasa de verdaderos positivos",
    )
    pr_ax.set(
        title=f"Curvas precisión-exhaustividad en prueba{suffix}",
        xlabel="Exhaustividad (recall)",
        ylabel="Precisión",
    )
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=8, loc="lower right" if ax is roc_ax else "upper right")
    return _save(figure, path)


def plot_metric_bars(table: pd.DataFrame, kind: str, primary: str, path: Path) -> Path:
    """Bars of CV mean per metric and candidate, with one-standard-deviation error bars."""
    metrics = display_metrics(kind, primary)
    columns = min(len(metrics), 3)
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(5 * columns, 3.8 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    names = list(table.index)
    colors = ["tab:orange" if champion else "tab:blue" for champion in table["champion"]]
    for ax, metric in zip(axes, metrics):
        ax.barh(names, table[f"cv_{metric}_mean"], xerr=table[f"cv_{metric}_std"], color=colors, capsize=3)
        ax.set_title(f"{metric} (CV, media ± DE)")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
    figure.suptitle("Comparación de candidatos (naranja: campeón)")
    return _save(figure, path)


def plot_confusion(
    result: CandidateResult, y_test: pd.Series, labels: list, path: Path | None = None
) -> Figure | Path:
    """Confusion matrix of a candidate on the test split (binary: at its threshold)."""
    figure = Figure(figsize=(5.5, 5))
    ax = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_test, result.test_predictions, labels=labels, ax=ax, colorbar=False
    )
    ax.set(
        title=f"Matriz de confusión en prueba: {result.name}", xlabel="Clase predicha", ylabel="Clase real"
    )
    return _save(figure, path) if path else figure


def plot_calibration(
    result: CandidateResult, y_test: pd.Series, context: TrainingContext, path: Path
) -> Path:
    """Calibration curve of a candidate (multiclass: confidence of the predicted class)."""
    figure = Figure(figsize=(5.5, 5))
    ax = figure.subplots()
    if context.kind == "binary":
        y_true, scores = metrics._is_positive(y_test, context.data.positive_class), result.test_scores
        title, observed = f"Calibración: P({context.data.positive_class})", "Fracción observada de positivos"
    else:
        y_true, scores = np.asarray(y_test) == result.test_predictions, _top_label(result.test_scores)
        title, observed = "Calibración: confianza de la clase predicha", "Fracción observada de aciertos"
    CalibrationDisplay.from_predictions(
        y_true, scores, n_bins=10, strategy="quantile", name=result.name, ax=ax
    )
    ax.set(title=f"{title} ({result.name})", xlabel="Probabilidad media predicha", ylabel=observed)
    return _save(figure, path)


def plot_regression(
    result: CandidateResult, y_test: pd.Series, folder: Path | None = None
) -> dict[str, Path] | Figure:
    """Predicted vs actual and residuals of a regression candidate on the test split."""
    y_true, y_pred = np.asarray(y_test, dtype=float), result.test_predictions
    figure = Figure(figsize=(11, 5))
    scatter_ax, residual_ax = figure.subplots(1, 2)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    scatter_ax.scatter(y_true, y_pred, s=8, alpha=0.5)
    scatter_ax.plot([low, high], [low, high], linestyle=":", color="grey")
    scatter_ax.set(xlabel="Real", ylabel="Predicho", title=f"Predicho vs real: {result.name}")
    residual_ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.5)
    residual_ax.axhline(0, linestyle=":", color="grey")
    residual_ax.set(xlabel="Predicho", ylabel="Residuo (real - predicho)", title="Residuos en prueba")
    if folder is None:
        return figure
    return {"predicted_vs_actual": _save(figure, folder / "predicted_vs_actual.png")}


def write_reports(
    table: pd.DataFrame,
    results: dict[str, CandidateResult],
    selection: Selection,
    split,
    context: TrainingContext,
    folder: Path,
) -> dict[str, Path]:
    """The summary table (CSV, Markdown), the selection note and the comparison plots under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    reports = {
        "summary_csv": folder / "summary.csv",
        "summary_md": folder / "summary.md",
        "selection": folder / "selection.json",
    }
    table.to_csv(reports["summary_csv"])
    markdown = display_table(table, context.kind, context.primary).to_markdown(index=False)
    notes = f"**Regla:** {selection.rule}\n\n**Elección:** {selection.reason}\n"
    if context.kind == "binary":
        notes += f"\n{BINARY_NOTE}\n"
    reports["summary_md"].write_text(f"{markdown}\n\n{notes}", encoding="utf-8")
    reports["selection"].write_text(
        json.dumps(selection.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    reports["metric_bars"] = plot_metric_bars(
        table, context.kind, context.primary, folder / "metric_bars.png"
    )
    champion = results[selection.champion]
    if context.kind == "regression":
        reports |= plot_regression(champion, split.y_test, folder)
    else:
        reports["curves"] = plot_curves(results, split.y_test, context, folder / "roc_pr_curves.png")
        reports["confusion_matrix"] = plot_confusion(
            champion, split.y_test, context.data.classes, folder / "confusion_matrix.png"
        )
        reports["calibration"] = plot_calibration(champion, split.y_test, context, folder / "calibration.png")
    return reports


# ----------------------------------------------------------------------------- saving versions
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


def _json_safe(value: Any) -> Any:
    """NaN/inf become None and numpy scalars plain Python, so metadata is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reference_sample(
    result: CandidateResult, X_train: pd.DataFrame, context: TrainingContext
) -> pd.DataFrame:
    """Up to ``reference_sample_size`` raw training rows with the model's ``__prediction__`` and ``__score__``."""
    size = min(context.training.reference_sample_size, len(X_train))
    rows = X_train.sample(n=size, random_state=context.seed) if size < len(X_train) else X_train
    scores = model_scores(result.pipeline, rows, context.kind, context.data.positive_class)
    predictions = predictions_from_scores(
        scores, context.kind, context.data.classes, context.data.positive_class, result.threshold
    )
    reference = rows.reset_index(drop=True)
    reference["__prediction__"] = (
        predictions.astype(float) if context.kind == "regression" else predictions.astype(str)
    )
    reference["__score__"] = _top_label(scores).astype(float)
    return reference


def save_candidates(
    results: dict[str, CandidateResult],
    selection: Selection,
    split,
    context: TrainingContext,
    config,
    models_dir: Path,
) -> dict[str, str]:
    """Save every candidate as a registry version and mark the champion; return {name: version}."""
    data = context.data
    when = datetime.now(UTC)
    shared = {
        "created_at": when.isoformat(),
        "task": data.task,
        "target": data.target,
        "classes": [str(c) for c in data.classes],
        "positive_class": data.positive_class,
        "na_values": list(config.dataset.na_values),
        "features": ft_engineering.feature_schema(split.X_train, data.roles),
        "roles": {
            "numeric": data.roles.numeric,
            "categorical": data.roles.categorical,
            "ordinal": data.roles.ordinal,
        },
        "dataset": {
            "path": str(config.dataset.path),
            "rows": len(data.frame),
            "sha256": file_sha256(config.dataset.path),
        },
        "config": config.model_dump(mode="json"),
        "library_versions": library_versions(),
        "primary_metric": context.primary,
        "split": {"train_rows": len(split.X_train), "test_rows": len(split.X_test)},
    }
    versions = {}
    for name, result in results.items():
        version = registry.new_version_id(name, when)
        metadata = {
            **shared,
            "model_name": name,
            "threshold": result.threshold,
            "interval": prediction_interval(split.y_train.loc[result.oof_index], result.oof_scores)
            if context.kind == "regression"
            else None,
            "params": result.params,
            "metrics": {"cv": result.cv_summary(), "test": result.test_metrics},
            "timings": {
                "fit_time_s": result.fit_time,
                "predict_us_per_row": result.predict_time_per_row * 1e6,
            },
            "selection": {**selection.as_dict(), "is_champion": name == selection.champion},
        }
        reference = reference_sample(result, split.X_train, context)
        registry.save_version(
            models_dir, version, result.pipeline, registry.ModelMetadata.model_validate(_json_safe(metadata)), reference
        )
        drift.load_or_build_profile(models_dir, version, config.monitoring.bins)
        versions[name] = version
    registry.set_champion(models_dir, versions[selection.champion])
    return versions


# ----------------------------------------------------------------------------- MLflow
def tracking_uri(settings: Settings) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else a SQLite store under the artifacts folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{settings.artifacts_dir / 'mlflow.db'}"


def track_run(
    settings: Settings,
    results: dict[str, CandidateResult],
    versions: dict[str, str],
    selection: Selection,
    reports: dict[str, Path],
    split,
    context: TrainingContext,
) -> str | None:
    """Log one parent run (selection, table, plots) and one nested run per candidate to MLflow.

    Each candidate run has its parameters, CV and test metrics, a diagnostic plot and the saved
    model files. A tracking failure is logged, not raised: the versions are already saved.
    """
    import mlflow

    uri = tracking_uri(settings)
    models_dir = settings.models_dir
    experiment_name = f"{settings.config.dataset.path.stem}-{context.data.target}"
    try:
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.get_experiment_by_name(experiment_name)
        if experiment is None:
            artifacts = (settings.artifacts_dir / "mlflow-artifacts").as_uri()
            mlflow.create_experiment(experiment_name, artifact_location=artifacts)
        mlflow.set_experiment(experiment_name)
        with mlflow.start_run(run_name=f"training-{versions[selection.champion].split('-')[0]}"):
            mlflow.log_params(
                {
                    "primary_metric": context.primary,
                    "cv_folds": context.training.cv_folds,
                    "seed": context.seed,
                }
            )
            mlflow.set_tags(
                {"champion": selection.champion, "champion_version": versions[selection.champion]}
            )
            mlflow.log_dict(selection.as_dict(), "selection.json")
            for path in reports.values():
                mlflow.log_artifact(str(path), "reports")
            for name, result in results.items():
                with mlflow.start_run(run_name=name, nested=True):
                    mlflow.log_params(
                        {k: v for k, v in result.params.items() if isinstance(v, (str, int, float, bool))}
                    )
                    metrics = result.flat_metrics()
                    if result.threshold is not None:
                        metrics["threshold"] = result.threshold
                    mlflow.log_metrics(
                        {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
                    )
                    mlflow.set_tags({"version": versions[name], "champion": str(name == selection.champion)})
                    figure = (
                        plot_regression(result, split.y_test)
                        if context.kind == "regression"
                        else plot_confusion(result, split.y_test, context.data.classes)
                    )
                    mlflow.log_figure(figure, "diagnostic.png")
                    mlflow.log_artifacts(str(models_dir / versions[name]), "model")
    except Exception as exc:  # noqa: BLE001 - tracking is optional; the saved versions stand
        logger.error("MLflow tracking to %s failed: %s", uri, exc)
        return None
    return uri


# ----------------------------------------------------------------------------- the whole run
@dataclass
class TrainingResult:
    """What a training run produced."""

    summary: pd.DataFrame
    selection: Selection
    versions: dict[str, str]
    results: dict[str, CandidateResult]
    reports: dict[str, Path]
    context: TrainingContext
    split: ft_engineering.Split
    tracking_uri: str | None
    elapsed_s: float

    @property
    def champion_version(self) -> str:
        return self.versions[self.selection.champion]


def train(
    settings: Settings, training: TrainingConfig | None = None, show_progress: bool = False
) -> TrainingResult:
    """Train, compare, tune, select and save models for the configured dataset.

    Args:
        settings: where the config, the data and the artifacts are.
        training: replaces the config's ``training`` section (CLI overrides); default: the config's.
        show_progress: draw a progress bar on the terminal.

    Returns:
        The summary table, the selection, the saved versions and the report paths.
    """
    start = time.perf_counter()
    config = settings.config
    if training is not None:
        config = config.model_copy(update={"training": training})
    data, _ = ft_engineering.load_project_data(config)
    split = ft_engineering.split_data(data, config.split)
    context = make_context(data, config)
    params = candidate_params(data.task, config.training)
    tuning = config.training.tuning
    n_tuned = (
        min(tuning.top_k, sum(is_tunable(data.task, n, config.training) for n in params))
        if tuning.enabled
        else 0
    )
    logger.info(
        "task=%s (%s), %d candidates, %d-fold CV, primary metric %s",
        data.task,
        context.kind,
        len(params),
        context.cv.n_splits,
        context.primary,
    )
    results: dict[str, CandidateResult] = {}
    with tqdm(total=len(params) + n_tuned, desc="Entrenando", disable=not show_progress) as bar:
        for name, candidate_config in params.items():
            bar.set_postfix_str(name)
            results[name] = evaluate_candidate(name, candidate_config, split, context)
            logger.info(
                "%s: CV %s = %.4f", name, context.primary, results[name].cv_summary()[context.primary]["mean"]
            )
            bar.update()
        for name in leading_candidates(results, context, n_tuned):
            bar.set_postfix_str(f"optuna {name}")
            best = tune_candidate(
                name, results[name].params, split, context, tuning.timeout_seconds / n_tuned
            )
            tuned = name + TUNED_SUFFIX
            results[tuned] = evaluate_candidate(tuned, best, split, context)
            logger.info(
                "%s: CV %s = %.4f",
                tuned,
                context.primary,
                results[tuned].cv_summary()[context.primary]["mean"],
            )
            bar.update()
    table = summary_table(results, context)
    selection = select_champion(
        table, context.primary, context.greater_is_better, config.training.selection_tolerance
    )
    table["champion"] = table.index == selection.champion
    versions = save_candidates(results, selection, split, context, config, settings.models_dir)
    reports = write_reports(table, results, selection, split, context, settings.reports_dir)
    uri = (
        track_run(settings, results, versions, selection, reports, split, context)
        if config.training.tracking
        else None
    )
    logger.info("champion %s saved as %s", selection.champion, versions[selection.champion])
    return TrainingResult(
        table, selection, versions, results, reports, context, split, uri, time.perf_counter() - start
    )


# ----------------------------------------------------------------------------- CLI
def training_overrides(training: TrainingConfig, args: argparse.Namespace) -> TrainingConfig:
    """The config's training section with the CLI flags applied (validated again)."""
    values = training.model_dump()
    tuning = values["tuning"]
    if args.no_tuning:
        tuning["enabled"] = False
    if args.trials is not None:
        tuning["trials"] = args.trials
    if args.timeout is not None:
        tuning["timeout_seconds"] = args.timeout
    if args.no_tracking:
        values["tracking"] = False
    if args.primary_metric:
        values["primary_metric"] = args.primary_metric
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        values["models"] = {n: values["models"].get(n, {}) for n in names}
    return TrainingConfig.model_validate(values)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Entrena, compara y guarda los modelos del dataset configurado."
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="archivo de configuración (por defecto MLOPS_CONFIG o mlops_pipeline/config.yaml)",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        help="carpeta de salidas (por defecto MLOPS_ARTIFACTS_DIR o mlops_pipeline/artifacts)",
    )
    parser.add_argument(
        "--models", help="candidatos separados por comas (por defecto los de training.models)"
    )
    parser.add_argument(
        "--primary-metric",
        help="métrica principal de selección (por defecto la de la config o la de la tarea)",
    )
    parser.add_argument(
        "--no-tuning", action="store_true", help="omite la búsqueda de hiperparámetros con Optuna"
    )
    parser.add_argument("--trials", type=int, help="ensayos de Optuna por modelo")
    parser.add_argument("--timeout", type=float, help="presupuesto total de tiempo de Optuna en segundos")
    parser.add_argument("--no-tracking", action="store_true", help="no registra las corridas en MLflow")
    parser.add_argument(
        "--quiet", action="store_true", help="sin barra de progreso ni registros informativos"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI: train, then print the summary table, the selection rule and where everything went."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        settings = get_settings(mlops_config=args.config, mlops_artifacts_dir=args.artifacts)
        result = train(
            settings, training_overrides(settings.config.training, args), show_progress=not args.quiet
        )
    except ConfigError as exc:
        print(f"Error de configuración: {exc}")
        return 2
    except ValueError as exc:
        print(f"Error: {exc}")
        return 2
    context, selection = result.context, result.selection
    with pd.option_context("display.width", 200):
        print(
            f"\nResumen de candidatos ({context.kind}, métrica principal: {context.primary}; CV = media ± desviación estándar):\n"
        )
        print(display_table(result.summary, context.kind, context.primary).to_markdown(index=False))
    print(f"\nRegla de selección: {selection.rule}")
    print(f"Elección: {selection.reason}")
    champion = result.results[selection.champion]
    if champion.threshold is not None:
        print(
            f"Umbral de decisión ({context.training.threshold_rule}, sobre predicciones fuera de pliegue): {champion.threshold:.3f}"
        )
    print(f"Campeón: {selection.champion} -> versión {result.champion_version} en {settings.models_dir}")
    print(f"Reportes: {settings.reports_dir}")
    if result.tracking_uri:
        print(f"MLflow: mlflow ui --backend-store-uri {result.tracking_uri}")
    print(f"Tiempo total: {result.elapsed_s:.1f} s")
    return 0


if __name__ == "__main__":
    # Run through the importable module so pickled classes (LabelEncodedClassifier) are saved as
    # `model_training_evaluation.X`, loadable by serving, not as `__main__.X`.
    import model_training_evaluation

    raise SystemExit(model_training_evaluation.main())
