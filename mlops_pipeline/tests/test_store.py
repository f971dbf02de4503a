"""The prediction log and feedback functions, against a SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

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
            "threshold": 0.5,
            "probability_bad": score,
            "probability_good": 1 - score,
        }
    )


def test_logged_rows_read_back_with_features_as_columns(engine) -> None:
    ids = store.log_predictions(engine, _features(5), _outputs(5), model_version="v1", request_id="r1")

    log = store.read_predictions(engine).set_index("id").loc[ids]

    assert len(set(ids)) == 5
    assert (log["request_id"] == "r1").all() and (log["model_version"] == "v1").all()
    assert log["Income"].tolist() == pytest.approx(np.linspace(10, 100, 5).tolist())
    assert log["Home"].tolist()[:2] == ["rent", None]
    assert log["feature_score"].tolist() == [0, 1, 2, 3, 4]
    assert log["score"].tolist() == pytest.approx(np.linspace(0, 1, 5).tolist())
    assert log[["probability_bad", "probability_good"]].iloc[-1].tolist() == [1.0, 0.0]
    assert log["prediction"].tolist() == ["good", "good", "bad", "bad", "bad"]
    assert str(log["created_at"].dt.tz) == "UTC"
    assert log["actual"].isna().all()


def test_a_batch_is_one_row_of_the_log_table(engine) -> None:
    ids = store.log_predictions(engine, _features(4), _outputs(4), model_version="v1")

    with engine.connect() as connection:
        batches = connection.execute(
            sa.select(store.prediction_batches.c.id, store.prediction_batches.c.n_rows)
        ).all()

    assert [tuple(row) for row in batches] == [(store.parse_id(ids[0])[0], 4)]
    assert [store.parse_id(i)[1] for i in ids] == [0, 1, 2, 3]
    assert store.count_predictions(engine, None, None) == 4


def test_rows_of_several_requests_keep_their_request_ids(engine) -> None:
    outputs = _outputs(4).assign(id=store.new_ids(4), model_version="v1")

    ids = store.log_predictions(
        engine, _features(4), outputs, model_version="v1", request_id=["a", "a", "b", "a"]
    )

    assert ids == outputs["id"].tolist()
    assert store.read_predictions(engine).set_index("id").loc[ids, "request_id"].tolist() == [
        "a",
        "a",
        "b",
        "a",
    ]


def test_regression_outputs_have_no_probabilities_or_threshold(engine) -> None:
    outputs = pd.DataFrame({"prediction": [1.5, 2.5], "score": [1.5, 2.5]})

    store.log_predictions(engine, _features(2), outputs, model_version="reg")

    log = store.read_predictions(engine)
    assert not [c for c in log.columns if c.startswith(store.PROBABILITY_PREFIX)]
    assert log["threshold"].isna().all()
    assert sorted(log["prediction"]) == ["1.5", "2.5"]
    assert log["request_id"].nunique() == 1


def test_time_window_and_version_filters(engine) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    per_row = [base + timedelta(hours=h) for h in (3, 0, 2, 1)]
    ids = store.log_predictions(engine, _features(4), _outputs(4), model_version="v1", created_at=per_row)
    store.log_predictions(
        engine, _features(2), _outputs(2), model_version="v2", created_at=base + timedelta(hours=2)
    )

    window = store.read_predictions(engine, base + timedelta(hours=1), base + timedelta(hours=3))
    only_v1 = store.read_predictions(
        engine, base + timedelta(hours=1), base + timedelta(hours=3), model_version="v1"
    )

    assert len(window) == 4 and len(only_v1) == 2
    assert window["created_at"].is_monotonic_increasing
    assert window["created_at"].min() == pd.Timestamp(base + timedelta(hours=1))
    assert only_v1["id"].tolist() == [ids[3], ids[2]]  # oldest first, each row under its own id
    assert store.read_predictions(engine, base + timedelta(days=1)).empty
    assert store.count_predictions(engine, base + timedelta(hours=1), base + timedelta(hours=3)) == 4
    assert store.prediction_time_range(engine, "v1") == (base, base + timedelta(hours=3))


def test_recent_predictions_come_newest_first_across_batches(engine) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    old = store.log_predictions(engine, _features(3), _outputs(3), model_version="v1", created_at=base)
    new = store.log_predictions(
        engine, _features(2), _outputs(2), model_version="v1", created_at=base + timedelta(hours=1)
    )
    store.record_feedback(engine, [{"prediction_id": old[2], "actual": "bad"}])

    recent = store.recent_predictions(engine, "v1", 3)

    assert recent["id"].tolist() == [new[1], new[0], old[2]]
    assert recent["actual"].tolist() == [None, None, "bad"]
    assert recent["Income"].tolist() == pytest.approx([100.0, 10.0, 100.0])
    assert store.recent_predictions(engine, "v2", 3).empty


def test_feedback_is_stored_and_replaced(engine) -> None:
    ids = store.log_predictions(engine, _features(3), _outputs(3), model_version="v1")

    assert store.record_feedback(engine, [{"prediction_id": ids[0], "actual": "bad"}]) == 1
    store.record_feedback(
        engine, [{"prediction_id": ids[0], "actual": "good"}, {"prediction_id": ids[1], "actual": 1}]
    )

    actual = store.read_predictions(engine).set_index("id")["actual"]
    assert actual[ids[0]] == "good" and actual[ids[1]] == "1" and actual[ids[2]] is None
    assert store.read_outcomes(engine, None, None, "v1").values.tolist() == [
        ["good", 0.0, "good"],
        ["bad", 0.5, "1"],
    ]


def test_feedback_with_an_unknown_id_writes_nothing(engine) -> None:
    ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")
    batch = store.parse_id(ids[0])[0]
    wrong = ["nope", f"{batch}-2", f"{batch}-01", f"{batch}--1", f"{store.new_batch_id()}-0", "-0"]

    with pytest.raises(store.UnknownPredictionError) as error:
        store.record_feedback(
            engine,
            [
                {"prediction_id": ids[0], "actual": "bad"},
                *({"prediction_id": w, "actual": "bad"} for w in wrong),
            ],
        )

    assert error.value.ids == wrong
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.feedback)).scalar_one() == 0


@given(st.integers(min_value=1, max_value=50), st.text(max_size=40))
def test_prediction_ids_parse_back_and_other_text_is_refused(n: int, text: str) -> None:
    ids = store.new_ids(n)
    batch = ids[0].rpartition("-")[0]

    assert [store.parse_id(i) for i in ids] == [(batch, row) for row in range(n)]
    parsed = store.parse_id(text)
    assert parsed is None or f"{parsed[0]}-{parsed[1]}" == text


def test_a_failed_insert_leaves_the_log_unchanged(engine) -> None:
    first = _outputs(2).assign(id=store.new_ids(2))
    store.log_predictions(engine, _features(2), first, model_version="v1")

    with pytest.raises(sa.exc.IntegrityError):  # the same batch id again
        store.log_predictions(engine, _features(2), first, model_version="v1")

    assert sorted(store.read_predictions(engine)["id"]) == sorted(first["id"])


def test_outputs_the_log_cannot_take_are_rejected(engine) -> None:
    with pytest.raises(ValueError, match="3 feature rows but 2 outputs"):
        store.log_predictions(engine, _features(3), _outputs(2), model_version="v1")
    with pytest.raises(ValueError, match="flat outputs"):
        store.log_predictions(
            engine, _features(1), _outputs(1).assign(probabilities=[{"bad": 0.0}]), model_version="v1"
        )
    with pytest.raises(ValueError, match="one batch"):
        store.log_predictions(engine, _features(2), _outputs(2).assign(id=["a-0", "b-1"]), model_version="v1")
    assert store.count_predictions(engine, None, None) == 0


def test_a_store_of_the_previous_layout_is_left_as_it_was(db_url) -> None:
    """The old one-row-per-prediction tables stay untouched; the new ones are created beside them."""
    engine = store.create_db_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE predictions (id VARCHAR(36) PRIMARY KEY, features TEXT)")
            connection.exec_driver_sql(
                "CREATE TABLE feedback (prediction_id VARCHAR(36) PRIMARY KEY, actual VARCHAR(200))"
            )
            connection.exec_driver_sql("INSERT INTO feedback VALUES ('old', 'bad')")
        store.init_db(engine)

        ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")
        store.record_feedback(engine, [{"prediction_id": ids[0], "actual": "bad"}])

        assert store.read_predictions(engine)["actual"].tolist() == ["bad", None]
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT prediction_id, actual FROM feedback").all() == [
                ("old", "bad")
            ]
    finally:
        engine.dispose()


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
