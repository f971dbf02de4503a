"""The prediction log and feedback functions, against a SQLite file and PostgreSQL."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import scoring
import store

DAY = timedelta(days=1)


def _features(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Income": np.linspace(10, 100, n),
            "Home": ["rent", None] * (n // 2) + ["owner"] * (n % 2),
            "score": np.arange(n),  # a feature named like a log column
        }
    )


def _outputs(n: int, threshold: float = 0.5) -> pd.DataFrame:
    """`scoring.batch_outputs`-shaped outputs; ``threshold=nan`` makes them multiclass-like."""
    score = np.linspace(0, 1, n)
    return pd.DataFrame(
        {
            "id": scoring.new_ids(n),
            "prediction": np.where(score >= 0.5, "bad", "good"),
            "score": score,
            "threshold": threshold,
            "probability_bad": score,
            "probability_good": 1 - score,
        }
    )


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()


def test_logged_rows_read_back_with_features_as_columns(engine) -> None:
    ids = store.log_predictions(engine, _features(5), _outputs(5), model_version="v1", request_id="r1")

    log = store.read_predictions(engine).set_index("id").loc[ids]

    assert len(set(ids)) == 5
    assert (log["request_id"] == "r1").all() and (log["model_version"] == "v1").all()
    assert log["Income"].tolist() == pytest.approx(np.linspace(10, 100, 5).tolist())
    assert log["Home"].tolist()[:2] == ["rent", None]
    assert log["feature_score"].tolist() == [0, 1, 2, 3, 4]
    assert log["score"].tolist() == pytest.approx(np.linspace(0, 1, 5).tolist())
    assert log["prediction"].tolist() == ["good", "good", "bad", "bad", "bad"]
    assert (log["threshold"] == 0.5).all()
    assert str(log["created_at"].dt.tz) == "UTC"
    assert log["actual"].isna().all()
    # thresholded binary: the score is the positive-class probability, nothing more is kept
    assert not [c for c in log.columns if c.startswith(store.PROBABILITY_PREFIX)]


def test_select_star_is_one_row_per_prediction(engine) -> None:
    ids = store.log_predictions(engine, _features(4), _outputs(4), model_version="v1", request_id="r")

    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM predictions ORDER BY id").mappings().all()

    assert [row["id"] for row in rows] == ids
    assert list(rows[0]) == [column.name for column in store.predictions.columns]
    assert [row["request_id"] for row in rows] == ["r"] * 4
    assert [row["score"] for row in rows] == pytest.approx(np.linspace(0, 1, 4).tolist())
    assert rows[0]["probabilities"] is None and rows[0]["lower"] is None
    features = [row["features"] for row in rows]  # PostgreSQL gives JSON parsed, SQLite as text
    features = [json.loads(f) if isinstance(f, str) else f for f in features]
    assert features[1] == {"Income": 40.0, "Home": None, "score": 1}
    assert store.count_predictions(engine, None, None) == 4


def test_multiclass_probabilities_are_kept_as_json(engine) -> None:
    ids = store.log_predictions(engine, _features(3), _outputs(3, threshold=np.nan), model_version="v1")

    log = store.read_predictions(engine).set_index("id").loc[ids]
    with engine.connect() as connection:
        stored = connection.execute(sa.select(store.predictions.c.probabilities)).scalars().all()

    assert log[["probability_bad", "probability_good"]].iloc[-1].tolist() == [1.0, 0.0]
    assert log["threshold"].isna().all()
    assert {"bad": 0.5, "good": 0.5} in stored


def test_rows_of_several_requests_keep_their_request_ids(engine) -> None:
    outputs = _outputs(4).assign(model_version="v1")

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


def test_regression_outputs_keep_their_interval_and_no_threshold(engine) -> None:
    outputs = pd.DataFrame(
        {
            "id": scoring.new_ids(2),
            "prediction": [1.5, 2.5],
            "score": [1.5, 2.5],
            "lower": [1.0, 2.0],
            "upper": 3.0,
        }
    )

    store.log_predictions(engine, _features(2), outputs, model_version="reg")

    log = store.read_predictions(engine)
    assert not [c for c in log.columns if c.startswith(store.PROBABILITY_PREFIX)]
    assert log["threshold"].isna().all()
    assert sorted(log["prediction"]) == ["1.5", "2.5"]
    assert sorted(log["lower"]) == [1.0, 2.0] and (log["upper"] == 3.0).all()
    assert log["request_id"].isna().all()  # logged outside any request (as the score CLI does)


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


def test_recent_predictions_come_newest_first(engine) -> None:
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
    assert _count(engine, "prediction_feedback") == 2


def test_outcomes_count_in_the_window_they_arrive_in(engine) -> None:
    """A label known two days after its prediction belongs to the window it arrived in."""
    day = datetime(2026, 3, 1, tzinfo=UTC)
    predicted = [day + timedelta(hours=1), day + timedelta(hours=2), day + timedelta(hours=3)]
    ids = store.log_predictions(engine, _features(3), _outputs(3), model_version="v1", created_at=predicted)
    items = [{"prediction_id": i, "actual": a} for i, a in zip(ids, ["bad", "good", "bad"])]
    arrived = [day + timedelta(hours=5), day + timedelta(days=2, hours=1), day + timedelta(days=2)]

    store.record_feedback(engine, items, received_at=arrived)

    first, third = (store.read_outcomes(engine, day + k * DAY, day + (k + 1) * DAY, "v1") for k in (0, 2))
    assert first.values.tolist() == [["good", 0.0, "bad"]]
    assert third.values.tolist() == [["bad", 1.0, "bad"], ["bad", 0.5, "good"]]  # in arrival order
    assert store.read_outcomes(engine, day + DAY, day + 2 * DAY, "v1").empty
    assert store.read_outcomes(engine, day, day + 3 * DAY, "v2").empty
    with pytest.raises(ValueError, match="3 rows but 2"):
        store.record_feedback(engine, items, received_at=arrived[:2])


def test_init_db_widens_the_status_of_an_older_history_and_respells_insufficient(db_url) -> None:
    engine = sa.create_engine(db_url)
    store.metadata.create_all(engine)
    run = {"created_at": datetime.now(UTC), "window_start": datetime.now(UTC), "n_rows": 3, "n_sampled": 3}
    run |= {"window_end": datetime.now(UTC), "model_version": "v1", "summary": {}, "status": "insufficient"}
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # as a store made when the column held 16 characters
            connection.exec_driver_sql("ALTER TABLE monitoring_runs ALTER COLUMN status TYPE VARCHAR(16)")
        connection.execute(store.monitoring_runs.insert().values(**run))

    store.init_db(engine)

    with engine.begin() as connection:
        assert (
            connection.execute(sa.select(store.monitoring_runs.c.status)).scalar_one() == "insufficient_data"
        )
        connection.execute(store.monitoring_runs.insert().values(**run | {"status": "x" * 32}))
    engine.dispose()


def test_feedback_with_an_unknown_id_writes_nothing(engine) -> None:
    ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")
    wrong = ["nope", scoring.new_ids(1)[0], ids[0] + "0", ids[0].upper(), ""]

    with pytest.raises(store.UnknownPredictionError) as error:
        store.record_feedback(
            engine,
            [
                {"prediction_id": ids[0], "actual": "bad"},
                *({"prediction_id": w, "actual": "bad"} for w in wrong),
            ],
        )

    assert error.value.ids == wrong
    assert _count(engine, "prediction_feedback") == 0


@given(st.integers(min_value=1, max_value=300))
def test_prediction_ids_are_unique_hex_in_row_order(n: int) -> None:
    ids = scoring.new_ids(n)

    assert len(set(ids)) == n and ids == sorted(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert set(ids).isdisjoint(scoring.new_ids(n))


def test_a_failed_insert_leaves_the_log_unchanged(engine) -> None:
    first = _outputs(2)
    store.log_predictions(engine, _features(2), first, model_version="v1")
    again = pd.concat([_outputs(1), first.iloc[[1]]], ignore_index=True)  # one new id, one taken

    with pytest.raises(sa.exc.IntegrityError):  # the same error type on both backends
        store.log_predictions(engine, _features(2), again, model_version="v1")

    assert sorted(store.read_predictions(engine)["id"]) == sorted(first["id"])


def test_outputs_the_log_cannot_take_are_rejected(engine) -> None:
    with pytest.raises(ValueError, match="3 feature rows but 2 outputs"):
        store.log_predictions(engine, _features(3), _outputs(2), model_version="v1")
    with pytest.raises(ValueError, match="flat outputs"):
        store.log_predictions(
            engine, _features(1), _outputs(1).assign(probabilities=[{"bad": 0.0}]), model_version="v1"
        )
    with pytest.raises(ValueError, match="prediction ids"):
        store.log_predictions(engine, _features(2), _outputs(2).drop(columns="id"), model_version="v1")
    with pytest.raises(ValueError, match="created_at"):
        store.log_predictions(
            engine, _features(2), _outputs(2), model_version="v1", created_at=[datetime.now(UTC)]
        )
    assert store.count_predictions(engine, None, None) == 0


def test_several_processes_create_the_tables_of_a_fresh_store_at_once(db_url) -> None:
    """Workers starting together all run init_db; the lock makes them take turns, none fails."""
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


# ----------------------------------------------------------------------------- earlier layouts
BATCH_LAYOUT = [
    """CREATE TABLE prediction_batches (
        id VARCHAR(32) PRIMARY KEY, created_at TIMESTAMP WITH TIME ZONE NOT NULL,
        model_version VARCHAR(120) NOT NULL, n_rows INTEGER NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX ix_prediction_batches_version_time ON prediction_batches (model_version, created_at)",
    """CREATE TABLE prediction_feedback (
        prediction_id VARCHAR(48) PRIMARY KEY,
        batch_id VARCHAR(32) NOT NULL REFERENCES prediction_batches (id),
        batch_row INTEGER NOT NULL, actual VARCHAR(200) NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
]
"""The DDL of the one-row-per-batch layout (the previous one), as SQLAlchemy created it."""

ROW_LAYOUT = [
    """CREATE TABLE predictions (
        id VARCHAR(36) PRIMARY KEY, request_id VARCHAR(36) NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL, model_version VARCHAR(120) NOT NULL,
        features JSON NOT NULL, prediction VARCHAR(200) NOT NULL, score FLOAT,
        probabilities JSON, threshold FLOAT)""",
    "CREATE INDEX ix_predictions_version_time ON predictions (model_version, created_at)",
    """CREATE TABLE feedback (
        prediction_id VARCHAR(36) PRIMARY KEY REFERENCES predictions (id),
        actual VARCHAR(200) NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
]
"""The DDL of the first layout: one row per prediction, without ``lower`` / ``upper``."""


def _legacy_store(
    db_url: str, ddl: list[str], table: str, rows: list[dict], outcomes: list[dict]
) -> sa.Engine:
    """A store in an earlier layout: its DDL, then ``rows`` in ``table`` and ``outcomes`` in its feedback."""
    engine = store.create_db_engine(db_url)
    when = sa.DateTime(timezone=True)
    columns = {"created_at": when, "features": sa.JSON, "probabilities": sa.JSON}
    feedback_table = "feedback" if table == "predictions" else "prediction_feedback"
    with engine.begin() as connection:
        for statement in ddl:
            connection.exec_driver_sql(statement)
        for name, values in ((table, rows), (feedback_table, outcomes)):
            target = sa.table(name, *(sa.column(c, columns.get(c)) for c in values[0]))
            connection.execute(target.insert(), values)
    return engine


def _payload(requests: list, features: dict, outputs: dict) -> str:
    """A batch's JSON payload as the previous layout wrote it."""
    return json.dumps({"requests": requests, "features": features, "outputs": outputs})


def test_a_store_of_the_batch_layout_is_migrated_with_its_ids_and_feedback(db_url) -> None:
    t0, t1 = datetime(2026, 5, 1, 10, tzinfo=UTC), datetime(2026, 5, 2, 9, 30, tzinfo=UTC)
    binary = _payload(
        [["req-a", 2], ["req-b", 1]],
        {"columns": ["Income", "Home"], "data": [[10.0, "rent"], [None, None], [30.5, "owner"]]},
        {
            "columns": ["prediction", "score", "threshold", "probability_bad", "probability_good"],
            "data": [["bad", 0.7, 0.5, 0.7, 0.3], ["good", 0.2, 0.5, 0.2, 0.8], ["good", 0.4, 0.5, 0.4, 0.6]],
        },
    )
    multiclass = _payload(
        [["req-c", 1]],
        {"columns": ["Income", "Home"], "data": [[5.0, "priv"]]},
        {
            "columns": ["prediction", "score", "threshold", "probability_a", "probability_b"],
            "data": [["b", 0.6, None, 0.4, 0.6]],
        },
    )
    batches = [
        {"id": "a" * 32, "created_at": t0, "model_version": "v1", "n_rows": 3, "payload": binary},
        {"id": "b" * 32, "created_at": t1, "model_version": "v2", "n_rows": 1, "payload": multiclass},
    ]
    outcome = {
        "prediction_id": f"{'a' * 32}-2",
        "batch_id": "a" * 32,
        "batch_row": 2,
        "actual": "bad",
        "created_at": t1,
    }
    engine = _legacy_store(db_url, BATCH_LAYOUT, "prediction_batches", batches, [outcome])
    try:
        store.init_db(engine)
        store.init_db(engine)  # a second start finds the new layout and copies nothing again

        log = store.read_predictions(engine).set_index("id")
        assert log.index.tolist() == [f"{'a' * 32}-{row}" for row in range(3)] + [f"{'b' * 32}-0"]
        assert log["request_id"].tolist() == ["req-a", "req-a", "req-b", "req-c"]
        assert log["created_at"].tolist() == [pd.Timestamp(t0)] * 3 + [pd.Timestamp(t1)]
        assert log["model_version"].tolist() == ["v1"] * 3 + ["v2"]
        assert log["Income"].iloc[[0, 2, 3]].tolist() == [10.0, 30.5, 5.0] and pd.isna(log["Income"].iloc[1])
        assert log["Home"].tolist() == ["rent", None, "owner", "priv"]
        assert log["score"].tolist() == pytest.approx([0.7, 0.2, 0.4, 0.6])
        assert log["actual"].tolist() == [None, None, "bad", None]
        # the binary rows drop the probabilities their score gives; the multiclass row keeps them
        assert log[["probability_a", "probability_b"]].iloc[3].tolist() == [0.4, 0.6]
        assert log[["probability_a", "probability_b"]].iloc[:3].isna().all().all()
        assert store.read_outcomes(engine, None, None, "v1").values.tolist() == [["good", 0.4, "bad"]]
        assert _count(engine, "prediction_batches_legacy") == 2  # kept, renamed
        assert not sa.inspect(engine).has_table("prediction_batches")
        store.record_feedback(engine, [{"prediction_id": f"{'b' * 32}-0", "actual": "a"}])
        assert _count(engine, "prediction_feedback") == 2
    finally:
        engine.dispose()


def test_a_store_of_the_first_layout_is_migrated(db_url) -> None:
    when = datetime(2026, 3, 1, 8, tzinfo=UTC)
    rows = [
        {"id": "1" * 32, "request_id": "r1", "created_at": when, "model_version": "v1",
         "features": {"Income": 12.5, "Home": "rent"}, "prediction": "bad", "score": 0.8,
         "probabilities": {"bad": 0.8, "good": 0.2}, "threshold": 0.5},
        {"id": "2" * 32, "request_id": "r1", "created_at": when, "model_version": "v1",
         "features": {"Income": None, "Home": "owner"}, "prediction": "y", "score": 0.5,
         "probabilities": {"x": 0.2, "y": 0.5, "z": 0.3}, "threshold": None},
    ]  # fmt: skip
    outcome = {"prediction_id": "1" * 32, "actual": "good", "created_at": when}
    engine = _legacy_store(db_url, ROW_LAYOUT, "predictions", rows, [outcome])
    try:
        store.init_db(engine)

        log = store.read_predictions(engine).set_index("id")
        assert log.index.tolist() == ["1" * 32, "2" * 32]
        assert log["Income"].iloc[0] == 12.5 and log["Home"].tolist() == ["rent", "owner"]
        assert log["actual"].tolist() == ["good", None]
        assert log["threshold"].iloc[0] == 0.5 and pd.isna(log["threshold"].iloc[1])
        assert log["probability_y"].iloc[1] == 0.5 and pd.isna(log["probability_y"].iloc[0])
        assert "probability_bad" not in log
        assert _count(engine, "predictions_legacy") == 2 and _count(engine, "feedback_legacy") == 1
        ids = store.log_predictions(engine, _features(2), _outputs(2), model_version="v1")
        assert store.count_predictions(engine, None, None) == 4 and len(ids) == 2
    finally:
        engine.dispose()
