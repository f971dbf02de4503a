"""Training and evaluation: compare candidate models, tune the leaders, choose and save a champion.

Every candidate (a family of `candidates.CANDIDATES`, chosen by ``training.models``) is one
scikit-learn Pipeline built by `build_model` (cleaning, derived features, preprocessing,
estimator) and scored with the metric table of `metrics`: its scorers feed the cross-validation,
and `summarize_classification` / `summarize_regression` compute the same metrics on the test
split, so the CV columns, the test columns and the champion choice agree.

Steps: load and split the configured data; K-fold CV on the training split (stratified for
classification) giving mean and standard deviation of each metric, fit time and per-row predict
time; an Optuna search for the leading candidates; the decision threshold (binary only) chosen on
out-of-fold predictions, with the expected cost of its decisions when ``training.costs`` is set;
test-set metrics; the selection rule (`candidates.select_champion`); every candidate saved as a
registry version, the champion marked; the summary table and notes (`reports`), comparison plots
(`plots`) and MLflow runs (`tracking`).

``--retrain`` (`retrain`) trains the same candidates on the original data plus the prediction
log's labelled rows, holds out the newest of those rows (`retraining`), registers the versions
without promoting any, writes ``reports/retrain_<version>.md`` against the champion and stores the
shadow comparison of the recommended version on the holdout rows (`shadow.compare_retrained`).

CLI: ``python mlops_pipeline/src/model_training_evaluation.py [--config PATH] [--artifacts DIR]
[--no-tuning] [--no-tracking] [--trials N] [--timeout S] [--models a,b] [--primary-metric M]
[--retrain] [--quiet]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

import candidates
import drift
import ft_engineering
import metrics
import performance
import plots
import registry
import reports
import retraining
import shadow
import tracking
from candidates import LabelEncodedClassifier  # noqa: F401 - versions saved before it moved load it from here
from scoring import model_scores, predictions_from_scores
from settings import ConfigError, Costs, ProjectConfig, Settings, TrainingConfig, get_settings, unknown

logger = logging.getLogger(__name__)

PARALLEL_BACKEND = "threading"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TABLE_FILES = {"summary_csv": "summary.csv", "summary_md": "summary.md", "selection": "selection.json"}


# ----------------------------------------------------------------------------- the one model builder
def build_model(estimator: BaseEstimator, preprocessor: Pipeline) -> Pipeline:
    """``Pipeline([("preprocessor", preprocessor), ("model", estimator)])``, both cloned and unfitted.

    The preprocessor (`ft_engineering.preprocessor_from_config`: cleaning, derived features,
    ColumnTransformer) travels inside, so serving applies exactly what training fitted.
    """
    return Pipeline([("preprocessor", clone(preprocessor)), ("model", clone(estimator))])


# ----------------------------------------------------------------------------- test-set summaries
def summarize_classification(
    y_true, y_pred, y_score, *, labels: list | None = None, pos_label: Any = None
) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall, F1, ROC-AUC, PR-AUC, log loss and Brier score.

    ``y_score`` is the positive-class probability (n,) or the (n, k) probability matrix with
    columns in the order of ``labels`` (default: the sorted labels seen); ``pos_label`` defaults to
    the last label. Multiclass gives macro and weighted averages and one-vs-rest ROC/PR-AUC instead.
    """
    y_score = np.asarray(y_score, dtype=float)
    if labels is None:
        labels = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    labels = list(labels)
    if y_score.ndim == 2 and not (y_score.shape[1] == 2 and len(labels) == 2):
        return metrics.evaluate(metrics.metric_table("multiclass", labels), y_true, y_pred, y_score)
    pos_label = labels[-1] if pos_label is None else pos_label
    if y_score.ndim == 2:
        y_score = y_score[:, labels.index(pos_label)]
    return metrics.evaluate(metrics.metric_table("binary", labels, pos_label), y_true, y_pred, y_score)


def summarize_regression(y_true, y_pred) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE (NaN where some true value is zero)."""
    return metrics.evaluate(metrics.metric_table("regression"), y_true, y_pred)


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
        return metrics.scoring(self.metrics)

    def model(self, name: str, params: dict) -> Pipeline:
        """A candidate's unfitted pipeline, seeded."""
        estimator = candidates.make_estimator(self.data.task, name, params, self.seed)
        return build_model(estimator, self.preprocessor)

    @property
    def greater_is_better(self) -> bool:
        return self.metrics[self.primary].greater_is_better

    @property
    def costs(self) -> Costs | None:
        """The decision costs of a binary task (``training.costs``); other tasks ignore them, as they
        ignore ``training.threshold_rule``."""
        return self.training.costs if self.kind == "binary" else None


def make_context(
    data: ft_engineering.Dataset, config: ProjectConfig, primary_metric: str | None = None
) -> TrainingContext:
    """The run's metrics, primary metric, preprocessor and CV splitter."""
    training, seed = config.training, config.split.seed
    kind = metrics.task_kind(data.task, data.classes)
    table = metrics.metric_table(kind, data.classes, data.positive_class)
    primary = primary_metric or training.primary_metric or metrics.DEFAULT_PRIMARY[kind]
    if primary not in table:
        what = {"binary": "de clasificación binaria", "multiclass": "multiclase"}.get(kind, "de regresión")
        raise ConfigError(
            f"training.primary_metric: {unknown(primary, sorted(table), f'una métrica {what}')}"
        )
    splitter = KFold if kind == "regression" else StratifiedKFold
    cv = splitter(n_splits=training.cv_folds, shuffle=True, random_state=seed)
    preprocessor = ft_engineering.preprocessor_from_config(data.roles, config.dataset)
    return TrainingContext(data, training, kind, table, primary, preprocessor, cv, seed)


# ----------------------------------------------------------------------------- cross-validation and test
@contextmanager
def compute_limits() -> Iterator[None]:
    """Parallel CV folds in threads, each estimator single-threaded (no oversubscription)."""
    with threadpool_limits(limits=1), parallel_config(backend=PARALLEL_BACKEND):
        yield


def cross_validated(
    pipeline: Pipeline, split: ft_engineering.Split, context: TrainingContext, scoring, **options
):
    """`cross_validate` on the training split with the run's folds and parallelism."""
    with compute_limits():
        X, y, n_jobs = split.X_train, split.y_train, context.training.n_jobs
        return cross_validate(pipeline, X, y, cv=context.cv, scoring=scoring, n_jobs=n_jobs, **options)


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
        """``cv_<metric>_mean`` / ``_std``, ``test_<metric>``, ``fit_time_s`` and ``predict_us_per_row``."""
        flat = {f"cv_{m}_{s}": v for m, stats in self.cv_summary().items() for s, v in stats.items()}
        flat |= {f"test_{m}": v for m, v in self.test_metrics.items()}
        return flat | {"fit_time_s": self.fit_time, "predict_us_per_row": self.predict_time_per_row * 1e6}


def out_of_fold_scores(
    cv_result: dict, X: pd.DataFrame, kind: str, pos_label: Any
) -> tuple[pd.Index, np.ndarray]:
    """Each training row scored by the fold model that did not see it; rows in fold order."""
    indices = cv_result["indices"]["test"]
    folds = zip(cv_result["estimator"], indices)
    parts = [model_scores(estimator, X.iloc[rows], kind, pos_label) for estimator, rows in folds]
    return X.index[np.concatenate(indices)], np.concatenate(parts)


def holdout_metrics(y_true, predictions: np.ndarray, scores: np.ndarray, context: TrainingContext) -> dict:
    """The run's metrics on the test split, and the expected cost of the decisions when costs are set."""
    if context.kind == "regression":
        return summarize_regression(y_true, predictions)
    data = context.data
    values = summarize_classification(
        y_true, predictions, scores, labels=data.classes, pos_label=data.positive_class
    )
    if context.costs:
        values[metrics.EXPECTED_COST] = metrics.expected_cost(
            y_true, predictions, data.positive_class, context.costs
        )
    return values


def evaluate_candidate(
    name: str, params: dict, split: ft_engineering.Split, context: TrainingContext
) -> CandidateResult:
    """Cross-validate a candidate on the training split, choose its threshold, refit, score the test split.

    The threshold only sees out-of-fold predictions of training rows; the test split is used
    after everything is fixed, to report test metrics.
    """
    data, kind, training, pipeline = context.data, context.kind, context.training, context.model(name, params)
    cv_result = cross_validated(
        pipeline, split, context, context.scoring, return_estimator=True, return_indices=True
    )
    with compute_limits():
        oof_index, oof_scores = out_of_fold_scores(cv_result, split.X_train, kind, data.positive_class)
        pipeline.fit(split.X_train, split.y_train)
        start = time.perf_counter()
        test_scores = model_scores(pipeline, split.X_test, kind, data.positive_class)
        predict_time = (time.perf_counter() - start) / max(len(split.X_test), 1)
    threshold, cv_scores = None, {m: np.asarray(cv_result[f"test_{m}"], dtype=float) for m in context.metrics}
    if kind == "binary":
        rule, fixed, y_oof = training.threshold_rule, training.fixed_threshold, split.y_train.loc[oof_index]
        positive, costs = data.positive_class, training.costs
        threshold = metrics.select_threshold(y_oof, oof_scores, rule, positive, fixed, costs)
        if context.costs:  # per fold, at the threshold chosen on all of them: a little optimistic
            decided = predictions_from_scores(oof_scores, kind, data.classes, positive, threshold)
            sizes = [len(rows) for rows in cv_result["indices"]["test"]]
            cv_scores[metrics.EXPECTED_COST] = metrics.fold_costs(y_oof, decided, sizes, positive, costs)
    predictions = predictions_from_scores(test_scores, kind, data.classes, data.positive_class, threshold)
    logger.info("%s: CV %s = %.4f", name, context.primary, np.nanmean(cv_scores[context.primary]))
    return CandidateResult(
        name=name,
        params=params,
        pipeline=pipeline,
        cv_scores=cv_scores,
        fit_time=float(np.mean(cv_result["fit_time"])),
        predict_time_per_row=predict_time,
        test_metrics=holdout_metrics(split.y_test, predictions, test_scores, context),
        test_scores=test_scores,
        test_predictions=predictions,
        oof_index=oof_index,
        oof_scores=oof_scores,
        threshold=threshold,
        complexity=candidates.CANDIDATES[data.task][candidates.base_name(name)].complexity,
    )


# ----------------------------------------------------------------------------- tuning
def tune_candidate(
    name: str, params: dict, split: ft_engineering.Split, context: TrainingContext, timeout: float
) -> dict:
    """Optuna (seeded TPE) over the candidate's search space, optimising the CV primary metric.

    The configured parameters are the first trial, so the search never reports worse than them.
    Returns the best parameters found, merged over ``params``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = candidates.search_space(context.data.task, name, context.training)
    if not space:
        return dict(params)
    scorer = context.scoring[context.primary]

    def objective(trial) -> float:
        trial_params = {**params, **{key: candidates.suggest(trial, key, p) for key, p in space.items()}}
        scores = cross_validated(context.model(name, trial_params), split, context, scorer)["test_score"]
        return float(np.mean(scores))

    sampler = optuna.samplers.TPESampler(seed=context.seed)
    study = optuna.create_study(direction=context.metrics[context.primary].direction, sampler=sampler)
    first = {
        key: params[key] for key in space if key in params and candidates.in_space(params[key], space[key])
    }
    if first:
        study.enqueue_trial(first, skip_if_exists=True)
    study.optimize(objective, n_trials=context.training.tuning.trials, timeout=timeout)
    logger.info(
        "tuned %s: %d trials, best CV %s = %.4f", name, len(study.trials), context.primary, study.best_value
    )
    return {**params, **study.best_params}


def leading_candidates(
    results: dict[str, CandidateResult], context: TrainingContext, count: int
) -> list[str]:
    """The ``count`` best non-baseline candidates by CV primary metric that have a search space."""
    means = {name: result.cv_summary()[context.primary]["mean"] for name, result in results.items()}
    tunable = [name for name in means if candidates.is_tunable(context.data.task, name, context.training)]
    return sorted(tunable, key=means.get, reverse=context.greater_is_better)[:count]


# ----------------------------------------------------------------------------- summary table and reports
def test_errors(result: CandidateResult, y_test: pd.Series, context: TrainingContext) -> dict[str, int]:
    """A candidate's ``test_false_negatives`` and ``test_false_positives``, when costs are set."""
    if not context.costs:
        return {}
    counts = metrics.error_counts(y_test, result.test_predictions, context.data.positive_class)
    return {f"test_{name}": count for name, count in counts.items()}


def summary_table(
    results: dict[str, CandidateResult], context: TrainingContext, y_test: pd.Series
) -> pd.DataFrame:
    """One row per candidate: CV mean and std of each metric, times, test metrics, threshold and,
    with costs, the test errors of each kind."""
    rows = {
        name: result.flat_metrics()
        | {"threshold": result.threshold, "complexity": result.complexity}
        | test_errors(result, y_test, context)
        for name, result in results.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    ascending = not context.greater_is_better
    return table.sort_values(f"cv_{context.primary}_mean", ascending=ascending, kind="stable")


def diagnostic_figure(result: CandidateResult, y_test: pd.Series, context: TrainingContext) -> Figure:
    """One candidate's test diagnostic (`plots.diagnostic`)."""
    return plots.diagnostic(y_test, result.test_predictions, context.data.classes, result.name, context.kind)


def write_reports(run: TrainingResult, folder: Path) -> dict[str, Path]:
    """The summary table (CSV, Markdown), the selection note and the comparison plots under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    context, selection = run.context, run.selection
    paths = {key: folder / name for key, name in TABLE_FILES.items()}
    run.summary.to_csv(paths["summary_csv"])
    markdown = reports.summary_markdown(run.summary, selection, context.kind, context.primary, context.costs)
    if context.costs:
        positive, rule = context.data.positive_class, context.training.threshold_rule
        markdown += reports.cost_section(run.summary, context.costs, rule, run.split.y_test, positive)
    paths["summary_md"].write_text(markdown, encoding="utf-8")
    selection_json = json.dumps(selection.as_dict(), indent=2, ensure_ascii=False)
    paths["selection"].write_text(selection_json, encoding="utf-8")
    data, champion = context.data, (selection.champion, run.results[selection.champion].test_predictions)
    scores = {name: result.test_scores for name, result in run.results.items()}
    positive = data.positive_class if context.kind == "binary" else None
    shown = metrics.headline(context.kind, context.primary)
    figures = plots.run_figures(
        run.summary, shown, run.split.y_test, scores, champion, data.classes, positive, context.kind
    )
    return paths | {key: plots.save(figure, folder / f"{key}.png") for key, figure in figures.items()}


# ----------------------------------------------------------------------------- saving versions
def candidate_metadata(
    result: CandidateResult, selection: candidates.Selection, y_train: pd.Series, kind: str, promote: bool
) -> dict:
    """What one version adds to the run's metadata: its threshold or interval, params, metrics, times."""
    interval = None
    if kind == "regression":
        interval = metrics.prediction_interval(y_train.loc[result.oof_index], result.oof_scores)
    return {
        "model_name": result.name,
        "threshold": result.threshold,
        "interval": interval,
        "params": result.params,
        "metrics": {"cv": result.cv_summary(), "test": result.test_metrics},
        "timings": {"fit_time_s": result.fit_time, "predict_us_per_row": result.predict_time_per_row * 1e6},
        "selection": {**selection.as_dict(), "is_champion": promote and result.name == selection.champion},
    }


def save_candidates(run: TrainingResult, config: ProjectConfig, models_dir: Path) -> dict[str, str]:
    """Save every candidate as a registry version and, after training (not retraining), mark the
    selected one as champion; return {name: version}."""
    when, split, context, promote = datetime.now(UTC), run.split, run.context, run.mode == "train"
    shared = tracking.run_metadata(context.data, split, config, context.primary, when, run.sources)
    size = min(context.training.reference_sample_size, len(split.X_train))
    versions = {}
    for name, result in run.results.items():
        version = registry.new_version_id(name, when)
        values = shared | candidate_metadata(result, run.selection, split.y_train, context.kind, promote)
        metadata = registry.ModelMetadata.model_validate(registry.json_safe(values))
        model = registry.LoadedModel(version, result.pipeline, metadata)
        reference = tracking.reference_sample(model, split.X_train, size, context.seed)
        registry.save_version(models_dir, version, result.pipeline, metadata, reference)
        drift.load_or_build_profile(models_dir, version, config.monitoring.bins)
        performance.save_calibration(
            models_dir, version, result.oof_scores, split.y_train.loc[result.oof_index], metadata
        )
        versions[name] = version
    if promote:
        registry.set_champion(models_dir, versions[run.selection.champion])
    return versions


# ----------------------------------------------------------------------------- MLflow
def decision_params(context: TrainingContext) -> dict:
    """The threshold rule and the decision costs of a binary run, as MLflow parameters."""
    if context.kind != "binary":
        return {}
    costs = context.costs
    cost_params = {"cost_false_negative": costs.false_negative, "cost_false_positive": costs.false_positive}
    return {"threshold_rule": context.training.threshold_rule} | (cost_params if costs else {})


def track_run(settings: Settings, run: TrainingResult) -> str | None:
    """Log the run to MLflow (`tracking.log_run`): a parent run with the selection and the reports,
    one nested run per candidate with its parameters, CV and test metrics, threshold, diagnostic
    plot and saved model files. Returns the tracking URI, or None when tracking failed."""
    context, selection, champion = run.context, run.selection, run.champion_version
    children = [
        tracking.CandidateRun(
            name,
            result.params,
            result.flat_metrics() | {"threshold": result.threshold},
            {"version": run.versions[name], "champion": str(name == selection.champion)},
            diagnostic_figure(result, run.split.y_test, context),
            settings.models_dir / run.versions[name],
        )
        for name, result in run.results.items()
    ]
    params = {"primary_metric": context.primary, "cv_folds": context.cv.n_splits, "seed": context.seed}
    experiment = f"{settings.config.dataset.path.stem}-{context.data.target}"
    return tracking.log_run(
        tracking.tracking_uri(settings.artifacts_dir),
        (experiment, settings.artifacts_dir / "mlflow-artifacts"),
        f"{run.mode}-{champion.split('-')[0]}",
        params | decision_params(context),
        {"champion": selection.champion, "champion_version": champion},
        {"selection.json": selection.as_dict()},
        list(run.reports.values()),
        children,
    )


# ----------------------------------------------------------------------------- the whole run
@dataclass
class TrainingResult:
    """What a training run produced."""

    summary: pd.DataFrame
    selection: candidates.Selection
    results: dict[str, CandidateResult]
    context: TrainingContext
    split: ft_engineering.Split
    mode: str = "train"  # or "retrain": nothing promoted, holdout = the newest labelled log rows
    sources: dict = field(default_factory=dict)  # rows from elsewhere than the dataset file
    versions: dict[str, str] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    tracking_uri: str | None = None
    elapsed_s: float = 0.0

    @property
    def champion_version(self) -> str:
        return self.versions[self.selection.champion]


def evaluate_all(
    params: dict[str, dict], split: ft_engineering.Split, context: TrainingContext, show_progress: bool
) -> dict[str, CandidateResult]:
    """Every configured candidate, then a tuned version of the ``top_k`` leading ones, with a progress bar."""
    tuning, task = context.training.tuning, context.data.task
    tunable = sum(candidates.is_tunable(task, name, context.training) for name in params)
    n_tuned = min(tuning.top_k, tunable) if tuning.enabled else 0
    results: dict[str, CandidateResult] = {}
    with tqdm(total=len(params) + n_tuned, desc="Entrenando", disable=not show_progress) as bar:
        for name, candidate_config in params.items():
            bar.set_postfix_str(name)
            results[name] = evaluate_candidate(name, candidate_config, split, context)
            bar.update()
        for name in leading_candidates(results, context, n_tuned):
            bar.set_postfix_str(f"optuna {name}")
            tuned, timeout = name + candidates.TUNED_SUFFIX, tuning.timeout_seconds / n_tuned
            best = tune_candidate(name, results[name].params, split, context, timeout)
            results[tuned] = evaluate_candidate(tuned, best, split, context)
            bar.update()
    return results


def compare_candidates(
    config: ProjectConfig, data: ft_engineering.Dataset, split: ft_engineering.Split, show_progress: bool
) -> TrainingResult:
    """Evaluate and tune the configured candidates on ``split`` and select the best (nothing saved)."""
    context = make_context(data, config)
    params = candidates.candidate_params(data.task, config.training)
    described = (data.task, context.kind, len(params), context.cv.n_splits, context.primary)
    logger.info("task=%s (%s), %d candidates, %d-fold CV, primary metric %s", *described)
    results = evaluate_all(params, split, context, show_progress)
    table = summary_table(results, context, split.y_test)
    tolerance = config.training.selection_tolerance
    selection = candidates.select_champion(table, context.primary, context.greater_is_better, tolerance)
    table["champion"] = table.index == selection.champion
    return TrainingResult(table, selection, results, context, split)


def with_training(config: ProjectConfig, training: TrainingConfig | None) -> ProjectConfig:
    """The config with its ``training`` section replaced (the CLI's overrides), when given."""
    return config if training is None else config.model_copy(update={"training": training})


def train(
    settings: Settings, training: TrainingConfig | None = None, show_progress: bool = False
) -> TrainingResult:
    """Train, compare, tune, select and save models for the configured dataset.

    ``training`` replaces the config's ``training`` section (the CLI's overrides). Returns the
    summary table, the selection, the saved versions, the report paths and the tracking URI.
    """
    start, config = time.perf_counter(), with_training(settings.config, training)
    data, _ = ft_engineering.load_project_data(config)
    run = compare_candidates(config, data, ft_engineering.split_data(data, config.split), show_progress)
    run.versions = save_candidates(run, config, settings.models_dir)
    run.reports = write_reports(run, settings.reports_dir)
    logger.info("champion %s saved as %s", run.selection.champion, run.champion_version)
    run.tracking_uri = track_run(settings, run) if config.training.tracking else None
    run.elapsed_s = time.perf_counter() - start
    return run


# ----------------------------------------------------------------------------- retraining
def champion_on_holdout(
    champion: registry.LoadedModel, split: ft_engineering.Split, context: TrainingContext
) -> dict:
    """The current champion's version, threshold and metrics on the retraining holdout."""
    data, X = context.data, split.X_test.reindex(columns=champion.feature_names)
    scores = model_scores(champion.pipeline, X, context.kind, data.positive_class)
    threshold = champion.metadata.threshold
    decided = predictions_from_scores(scores, context.kind, data.classes, data.positive_class, threshold)
    values = holdout_metrics(split.y_test, decided, scores, context)
    return {"version": champion.version, "threshold": threshold, "metrics": values}


def retrain(
    settings: Settings, training: TrainingConfig | None = None, show_progress: bool = False
) -> TrainingResult:
    """Retrain on the original data plus the labelled log rows; register the new versions unpromoted.

    The newest labelled rows are held out (`retraining.time_holdout`); the new candidates and the
    current champion are compared on them in ``reports/retrain_<version>.md``, which also gives the
    verdict of the stored shadow comparison of the recommended version on those rows (`shadow`).

    Raises:
        registry.ModelNotFoundError: when there is no champion to compare with.
        ValueError: (Spanish) when the log cannot be read or has too few labelled rows.
    """
    start, config = time.perf_counter(), with_training(settings.config, training)
    champion = registry.load_model(settings.models_dir)
    data, _ = ft_engineering.load_project_data(config)
    labelled = retraining.labelled_rows(retraining.read_log(settings.db_url), data, config.dataset)
    split = retraining.time_holdout(data, labelled, config.training.retrain)
    run = compare_candidates(config, data, split, show_progress)
    run.mode, run.sources = "retrain", {"retrain": retraining.sources(data, labelled, split)}
    run.versions = save_candidates(run, config, settings.models_dir)
    baseline = champion_on_holdout(champion, split, run.context)
    since = pd.Timestamp(run.sources["retrain"]["holdout_from"])
    shadow_text = shadow.compare_retrained(settings, champion.version, run.champion_version, since)
    shown = reports.shown_metrics(run.context.kind, run.context.primary, run.context.costs)
    text = reports.retrain_markdown(
        run.summary, run.versions, run.selection, baseline, run.sources, shown, shadow_text
    )
    path = settings.reports_dir / f"retrain_{run.champion_version}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    run.reports = {"retrain": path}
    logger.info("retrained %d versions, champion %s kept", len(run.versions), champion.version)
    run.tracking_uri = track_run(settings, run) if config.training.tracking else None
    run.elapsed_s = time.perf_counter() - start
    return run


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
    return TrainingConfig.checked(values, "training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Entrena, compara y guarda los modelos del proyecto.")
    flag = parser.add_argument
    flag("--config", type=Path, help="archivo de configuración (por defecto MLOPS_CONFIG o config.yaml)")
    flag("--artifacts", type=Path, help="carpeta de salidas (por defecto MLOPS_ARTIFACTS_DIR o artifacts/)")
    flag("--models", help="candidatos separados por comas (por defecto los de training.models)")
    flag("--primary-metric", help="métrica de selección (por defecto la de la config o la de la tarea)")
    flag("--no-tuning", action="store_true", help="omite la búsqueda de hiperparámetros con Optuna")
    flag("--trials", type=int, help="ensayos de Optuna por modelo")
    flag("--timeout", type=float, help="presupuesto total de tiempo de Optuna en segundos")
    flag("--no-tracking", action="store_true", help="no registra las corridas en MLflow")
    flag("--quiet", action="store_true", help="sin barra de progreso ni registros informativos")
    flag(
        "--retrain",
        action="store_true",
        help="reentrena con los datos originales y las predicciones con resultado real; registra las "
        "versiones sin promoverlas y escribe reports/retrain_<versión>.md",
    )
    return parser.parse_args(argv)


def print_summary(run: TrainingResult, settings: Settings) -> None:
    """The summary table, the selection rule and where everything went, for the user."""
    context, selection, champion = run.context, run.selection, run.results[run.selection.champion]
    print(f"\nResumen de candidatos ({context.kind}, métrica principal: {context.primary}; ", end="")
    print("CV = media ± desviación estándar):\n")
    shown = reports.shown_metrics(context.kind, context.primary, context.costs)
    print(plots.comparison_table(run.summary, shown, context.kind == "binary").to_markdown(index=False))
    print(f"\nRegla de selección: {selection.rule}\nElección: {selection.reason}")
    if champion.threshold is not None:
        rule = context.training.threshold_rule
        print(f"Umbral de decisión ({rule}, sobre predicciones fuera de pliegue): {champion.threshold:.3f}")
    if context.costs:
        cv, test = champion.cv_summary()[metrics.EXPECTED_COST], champion.test_metrics[metrics.EXPECTED_COST]
        costs = f"FN = {context.costs.false_negative:g}, FP = {context.costs.false_positive:g}"
        print(f"Costo esperado por fila ({costs}): CV {cv['mean']:.4f} ± {cv['std']:.4f}, prueba {test:.4f}")
    print(f"Campeón: {selection.champion} -> versión {run.champion_version} en {settings.models_dir}")
    print(f"Reportes: {settings.reports_dir}")
    if run.tracking_uri:
        print(f"MLflow: mlflow ui --backend-store-uri {run.tracking_uri}")
    print(f"Tiempo total: {run.elapsed_s:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """CLI: train, then print the summary table, the selection rule and where everything went."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S"
    )
    try:
        settings = get_settings(mlops_config=args.config, mlops_artifacts_dir=args.artifacts)
        overrides = training_overrides(settings.config.training, args)
        run = (retrain if args.retrain else train)(settings, overrides, show_progress=not args.quiet)
    except ConfigError as exc:
        print(f"Error de configuración: {exc}")
        return 2
    except registry.ModelNotFoundError:
        print(f"Error: no hay un modelo campeón en {settings.models_dir}; entrene primero (sin --retrain)")
        return 2
    except ValueError as exc:
        print(f"Error: {exc}")
        return 2
    if args.retrain:
        print(run.reports["retrain"].read_text(encoding="utf-8"))
        print(f"Reporte: {run.reports['retrain']}\nTiempo total: {run.elapsed_s:.1f} s")
    else:
        print_summary(run, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
