"""Retraining: the prediction log's labelled rows as new training data, held out in time order.

``model_training_evaluation.py --retrain`` trains on the original data plus the logged predictions
whose true outcome arrived through ``/feedback``. The most recent labelled rows stay out of
training (`time_holdout`): every new candidate and the current champion are scored on those same
unseen rows (`reports.retrain_markdown` writes the comparison). `read_log` is the only function
that touches the prediction store; the others work on the frames it returns.
"""

from __future__ import annotations

import math

import pandas as pd
import sqlalchemy as sa

import ft_engineering
import store
from settings import DatasetConfig, RetrainConfig

LOG_PREFIX = "feature_"  # `store.read_predictions` prefixes a feature named like a log column


def read_log(url: str) -> pd.DataFrame:
    """Every logged prediction (`store.read_predictions`) of the store at ``url``.

    Raises:
        ValueError: in Spanish, naming the store (password hidden), when it cannot be read.
    """
    engine = store.create_db_engine(url)
    try:
        store.init_db(engine)
        return store.read_predictions(engine)
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ValueError(
            f"no se pudo leer el registro de predicciones en {where}: {exc.orig or exc}"
        ) from exc
    finally:
        engine.dispose()


def labelled_rows(log: pd.DataFrame, data: ft_engineering.Dataset, dataset: DatasetConfig) -> pd.DataFrame:
    """The logged predictions whose outcome is known, as training rows, oldest first.

    Args:
        log: one row per prediction, as `store.read_predictions` gives it: ``created_at``,
            ``actual`` (the feedback outcome or None) and one column per input feature.
        data: the original dataset: its feature roles, target, task and classes.
        dataset: the dataset config (its missing-value tokens).

    Returns:
        The features of ``data.roles``, cleaned as `ft_engineering.load_data` cleans the CSV, the
        target (named ``data.target``) and ``created_at``. Outcomes that are not a class of the
        target (classification) or not a number (regression) are left out; a feature the log
        lacks is missing on every row (the pipeline imputes it).
    """
    known, roles = log[log["actual"].notna()], data.roles
    sources = {c: LOG_PREFIX + c if LOG_PREFIX + c in known else c for c in roles.features}
    raw = known.reindex(columns=list(sources.values())).set_axis(list(sources), axis=1)
    raw = ft_engineering.unify_missing(raw, dataset.na_values)
    frame = ft_engineering.coerce_types(raw, roles.numeric, [*roles.categorical, *roles.ordinal])
    if data.task == "regression":
        target = pd.to_numeric(known["actual"], errors="coerce")
    else:
        target = ft_engineering.as_category_column(known["actual"].astype(str))
        target = target.where(target.isin(data.classes))
    frame = frame.assign(**{data.target: target, "created_at": known["created_at"]})
    return frame[frame[data.target].notna()].sort_values("created_at", kind="stable").reset_index(drop=True)


def time_holdout(
    data: ft_engineering.Dataset, labelled: pd.DataFrame, retrain: RetrainConfig
) -> ft_engineering.Split:
    """Train on every original row plus the older labelled rows; hold out the most recent ones.

    The holdout is the newest ``retrain.holdout_share`` of the labelled rows (at least
    ``retrain.min_holdout_rows``); the original rows keep their index and the log rows follow it.

    Raises:
        ValueError: in Spanish, when the log has too few labelled rows, or (classification) the
            holdout holds a single class, so no comparison could mean anything.
    """
    size = math.ceil(retrain.holdout_share * len(labelled))
    if size < retrain.min_holdout_rows:
        needed = math.ceil(retrain.min_holdout_rows / retrain.holdout_share)
        raise ValueError(
            f"el registro de predicciones tiene {len(labelled)} filas con resultado real y --retrain "
            f"necesita al menos {needed} (training.retrain: holdout_share {retrain.holdout_share:g}, "
            f"min_holdout_rows {retrain.min_holdout_rows}); envíe más resultados con POST /feedback"
        )
    recent = labelled.iloc[-size:]
    if data.task == "classification" and recent[data.target].nunique() < 2:
        raise ValueError(
            f"las {size} filas más recientes con resultado real son todas de la clase "
            f"'{recent[data.target].iloc[0]}': no permiten comparar modelos; espere más resultados"
        )
    older, features = labelled.iloc[:-size], data.roles.features
    X_train = pd.concat([data.X, older[features]], ignore_index=True)
    y_train = pd.concat([data.y, older[data.target]], ignore_index=True)
    index = pd.RangeIndex(len(X_train), len(X_train) + size)
    return ft_engineering.Split(
        X_train, recent[features].set_axis(index), y_train, recent[data.target].set_axis(index)
    )


def sources(data: ft_engineering.Dataset, labelled: pd.DataFrame, split: ft_engineering.Split) -> dict:
    """Where a retraining run's rows came from, for the versions' metadata (``dataset.retrain``)."""
    holdout = labelled.iloc[-len(split.X_test) :]["created_at"]
    return {
        "original_rows": len(data.frame),
        "log_train_rows": len(labelled) - len(holdout),
        "holdout_rows": len(holdout),
        "holdout_from": holdout.min().isoformat(),
        "holdout_to": holdout.max().isoformat(),
    }
