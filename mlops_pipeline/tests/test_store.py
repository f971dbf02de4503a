"""The prediction log and feedback functions, against a SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import store


def _features(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Income": np.linspace(10, 100, n),
            "Home": ["rent", None] * (n // 2) + ["owner"] * (n % 2),
            "score": np.arange(n),  # a feature named like a log column
        }
    )


def _outputs(n: int) -> pd.DataFrame:
    score = np.linspace(0, 1, n)
    return pd.DataFrame(
        {
            "prediction": np.where(score >= 0.5, "bad", "good"),
            "score": score,
            "probabilities": [{"bad": s, "good": 1 - s} for s in score],
            "threshold": 0.5,
        }
    )


def test_logged_rows_read_back_with_features_as_columns(engine) -> None:
    ids = store.log_predictions(engine, _features(5), _outputs(5), model_version="v1", request_id="r1")

    log = store.read_predictions(engine).set_index("id").loc[ids]  # same-time rows come in id order

    assert len(set(ids)) == 5
    assert (log["request_id"] == "r1").all() and (log["model_version"] == "v1").all()
    assert log["Income"].tolist() == pytest.approx(np.linspace(10, 100, 5).tolist())
    assert log["Home"].tolist()[:2] == ["rent", None]
    assert log["feature_score"].tolist() == [0, 1, 2, 3, 4]
    assert log["score"].tolist() == pytest.approx(np.linspace(0, 1, 5).tolist())
    assert log["probabilities"].iloc[-1] == {"bad": 1.0, "good": 0.0}
    assert log["prediction"].tolist() == ["good", "good", "bad", "bad", "bad"]
    assert str(log["created_at"].dt.tz) == "UTC"
    assert log["actual"].isna().all()


def test_regression_outputs_have_no_probabilities_or_threshold(engine) -> None:
    outputs = pd.DataFrame({"prediction": [1.5, 2.5], "score": [1.5, 2.5]})

    store.log_predictions(engine, _features(2), outputs, model_version="reg")

    log = store.read_predictions(engine)
    assert log["probabilities"].isna().all() and log["threshold"].isna().all()
    assert sorted(log["prediction"]) == ["1.5", "2.5"]
    assert log["request_id"].nunique() == 1


def test_time_window_and_version_filters(engine) -> None:
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    per_row = [base + timedelta(hours=h) for h in range(4)]
    store.log_predictions(engine, _features(4), _outputs(4), model_version="v1", created_at=per_row)
    store.log_predictions(engine, _features(2), _outputs(2), model_version="v2", created_at=base + timedelta(hours=2))

    window = store.read_predictions(engine, base + timedelta(hours=1), base + timedelta(hours=3))
    only_v1 = store.read_predictions(engine, base + timedelta(hours=1), base + timedelta(hours=3), model_version="v1")

    assert len(window) == 4 and len(only_v1) == 2
    assert window["created_at"].min() == pd.Timestamp(base + timedelta(hours=1))
    assert store.read_predictions(engine, base + timedelta(days=1)).empty


def test_feedback_is_stored_and_replaced(engine) -> None:
    ids = store.log_predictions(engine, _features(3), _outputs(3), model_version="v1")

    assert store.record_feedback(engine, [{"prediction_id": ids[0], "actual": "bad"}]) == 1
    store.record_feedback(engine, [{"prediction_id": ids[0], "actual": "good"}, {"prediction_id": ids[1], "actual": 1}])

    actual = store.read_predictions(engine).set_index("id")["actual"]
    assert actual[ids[0]] == "good" and actual[ids[1]] == "1" and actual[ids[2]] is None


def test_feedback_with_an_unknown_id_writes_nothing(engine) -> None:
    ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")

    with pytest.raises(store.UnknownPredictionError) as error:
        store.record_feedback(engine, [{"prediction_id": ids[0], "actual": "bad"}, {"prediction_id": "nope", "actual": "bad"}])

    assert error.value.ids == ["nope"]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.feedback)).scalar_one() == 0


def test_a_failed_insert_leaves_the_log_unchanged(engine) -> None:
    ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")
    clash = _outputs(3).assign(id=["fresh-1", ids[0], "fresh-2"])

    with pytest.raises(sa.exc.IntegrityError):
        store.log_predictions(engine, _features(3), clash, model_version="v1")

    assert sorted(store.read_predictions(engine)["id"]) == sorted(ids)


def test_mismatched_lengths_are_rejected(engine) -> None:
    with pytest.raises(ValueError, match="3 feature rows but 2 outputs"):
        store.log_predictions(engine, _features(3), _outputs(2), model_version="v1")


def test_flat_probability_columns_are_logged_as_a_mapping(engine) -> None:
    outputs = _outputs(2).drop(columns="probabilities").assign(probability_bad=[0.25, 0.75], probability_good=[0.75, 0.25])

    ids = store.log_predictions(engine, _features(2), outputs, model_version="v1")

    log = store.read_predictions(engine).set_index("id").loc[ids]
    assert log["probabilities"].tolist() == [{"bad": 0.25, "good": 0.75}, {"bad": 0.75, "good": 0.25}]


def test_several_processes_create_the_tables_of_a_fresh_store_at_once(db_url) -> None:
    """Workers starting together race to create the tables; none of them fails."""
    engines = [store.create_db_engine(db_url) for _ in range(6)]
    start = threading.Barrier(len(engines))

    def create(engine: sa.Engine) -> None:
        start.wait()
        store.init_db(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(create, engines))
        assert store.log_predictions(engines[0], _features(2), _outputs(2), model_version="v1")
    finally:
        for engine in engines:
            engine.dispose()
