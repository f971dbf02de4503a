"""The prediction store: the prediction log, feedback, and the drift history (SQLAlchemy Core).

A SQLite file under the artifacts folder by default (WAL mode, so several uvicorn workers can
write while the dashboard reads); PostgreSQL when ``DATABASE_URL`` points at one. The same
tables and queries serve both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(120), nullable=False, index=True),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("prediction", sa.String(200), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("probabilities", sa.JSON, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
)
"""One row per returned prediction. ``features`` holds the raw input record; ``score`` is the
positive-class probability (binary), the top-class probability (multiclass) or the predicted value
(regression); ``probabilities`` maps every class to its probability (classification)."""

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("prediction_id", sa.String(36), sa.ForeignKey("predictions.id"), primary_key=True),
    sa.Column("actual", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""The true outcome of a prediction, once known (one per prediction; a later one replaces it)."""

monitoring_runs = sa.Table(
    "monitoring_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(120), nullable=False, index=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_sampled", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
)
"""One row per monitoring window: overall status (green/yellow/red/no_data) and a JSON summary
(alerts, recommendations, performance metrics where feedback exists)."""

drift_results = sa.Table(
    "drift_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("feature", sa.String(200), nullable=False),
    sa.Column("method", sa.String(40), nullable=False),
    sa.Column("statistic", sa.Float, nullable=True),
    sa.Column("p_value", sa.Float, nullable=True),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)
"""One row per feature and statistic of a monitoring run (the tidy output of ``compute_drift``)."""


# ----------------------------------------------------------------------------- prediction log
PREDICTION_COLUMNS = ["id", "request_id", "created_at", "model_version", "prediction", "score", "probabilities", "threshold"]
"""Columns of `read_predictions` before the expanded features (plus ``actual`` from feedback)."""

_ID_CHUNK = 1000


class UnknownPredictionError(LookupError):
    """Feedback names prediction ids that are not in the log; ``ids`` lists them."""

    def __init__(self, ids: list[str]):
        super().__init__(f"unknown prediction ids: {ids[:20]}{' ...' if len(ids) > 20 else ''}")
        self.ids = ids


def _json_lines(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row, serialised by pandas in C (NaN becomes null)."""
    if frame.shape[1] == 0:
        return ["{}"] * len(frame)
    return frame.to_json(orient="records", lines=True, date_format="iso").split("\n")[: len(frame)]


def _json_param(engine: Engine, name: str) -> sa.ColumnElement:
    """A bind parameter taking pre-serialised JSON text (PostgreSQL needs an explicit cast)."""
    param = sa.bindparam(name, type_=sa.Text)
    return sa.cast(param, sa.JSON) if engine.dialect.name == "postgresql" else param


def _utc(when: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def log_predictions(
    engine: Engine,
    features: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    model_version: str,
    request_id: str | None = None,
    created_at: datetime | Sequence[datetime] | None = None,
) -> list[str]:
    """Append predictions to the log in one transaction (all rows or none).

    Args:
        engine: the store.
        features: the raw input records, one row per prediction.
        outputs: `model_deploy.predict_frame` output (prediction, score, probabilities, threshold),
            optionally with an ``id`` column; ids are generated where absent.
        model_version: the version that produced the outputs.
        request_id: groups the rows of one request (default: a new id).
        created_at: one time for all rows or one per row (default: now, UTC); lets the
            monitoring simulator write backdated traffic.

    Returns:
        The prediction ids, in row order.
    """
    n = len(features)
    if len(outputs) != n:
        raise ValueError(f"{n} feature rows but {len(outputs)} outputs")
    ids = outputs["id"].astype(str).tolist() if "id" in outputs else [str(uuid4()) for _ in range(n)]
    if n == 0:
        return ids
    request_id = request_id or str(uuid4())
    if created_at is None or isinstance(created_at, datetime):
        times = [_utc(created_at or datetime.now(timezone.utc))] * n
    else:
        times = [_utc(pd.Timestamp(t).to_pydatetime()) for t in created_at]
    probabilities = outputs["probabilities"] if "probabilities" in outputs else pd.Series([None] * n)
    probability_json = [None if p is None else json.dumps(p) for p in probabilities.tolist()]
    threshold = outputs["threshold"] if "threshold" in outputs else pd.Series([None] * n)
    rows = [
        {
            "id": ids[i],
            "request_id": request_id,
            "created_at": times[i],
            "model_version": model_version,
            "features": feature_json,
            "prediction": prediction,
            "score": score,
            "probabilities": probability_json[i],
            "threshold": cut,
        }
        for i, (feature_json, prediction, score, cut) in enumerate(
            zip(
                _json_lines(features.reset_index(drop=True)),
                outputs["prediction"].astype(str).tolist(),
                pd.to_numeric(outputs["score"]).astype(float).tolist(),
                [None if pd.isna(t) else float(t) for t in threshold.tolist()],
            )
        )
    ]
    statement = sa.insert(predictions).values(
        features=_json_param(engine, "features"), probabilities=_json_param(engine, "probabilities")
    )
    with engine.begin() as connection:
        connection.execute(statement, rows)
    return ids


def record_feedback(engine: Engine, items: Sequence[Mapping[str, object]]) -> int:
    """Store true outcomes (``prediction_id``, ``actual``); a later outcome replaces an earlier one.

    Raises:
        UnknownPredictionError: when any id is not in the log; then nothing is written.

    Returns:
        The number of predictions whose outcome was stored.
    """
    latest = {str(item["prediction_id"]): str(item["actual"]) for item in items}
    ids = list(latest)
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        found: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            found.update(connection.execute(sa.select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars())
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise UnknownPredictionError(unknown)
        for start in range(0, len(ids), _ID_CHUNK):
            connection.execute(feedback.delete().where(feedback.c.prediction_id.in_(ids[start : start + _ID_CHUNK])))
        if ids:
            connection.execute(
                feedback.insert(), [{"prediction_id": i, "actual": latest[i], "created_at": now} for i in ids]
            )
    return len(ids)


def read_predictions(
    engine: Engine,
    start: datetime | None = None,
    end: datetime | None = None,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Logged predictions with ``start <= created_at < end``, oldest first, features as columns.

    Columns: `PREDICTION_COLUMNS`, ``actual`` (the feedback outcome or None), then one column per
    input feature (a feature named like a log column is prefixed ``feature_``). ``created_at`` is
    timezone-aware UTC.
    """
    query = (
        sa.select(*[predictions.c[name] for name in PREDICTION_COLUMNS], feedback.c.actual, predictions.c.features)
        .select_from(predictions.outerjoin(feedback, feedback.c.prediction_id == predictions.c.id))
        .order_by(predictions.c.created_at, predictions.c.id)
    )
    if start is not None:
        query = query.where(predictions.c.created_at >= _utc(start))
    if end is not None:
        query = query.where(predictions.c.created_at < _utc(end))
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    log = pd.DataFrame([row[:-1] for row in rows], columns=[*PREDICTION_COLUMNS, "actual"])
    log["created_at"] = pd.to_datetime(log["created_at"], utc=True)
    expanded = pd.DataFrame([row[-1] for row in rows], index=log.index)
    expanded.columns = [f"feature_{c}" if c in log.columns else c for c in expanded.columns]
    return pd.concat([log, expanded], axis=1)


def _enable_sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and WAL mode."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _enable_sqlite_wal)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create the tables that do not exist yet (never drops or alters existing data)."""
    metadata.create_all(engine)
