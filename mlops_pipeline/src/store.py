"""The prediction store: the prediction log, feedback, and the drift history (SQLAlchemy Core).

A SQLite file under the artifacts folder by default (WAL mode, so several uvicorn workers can
write while the dashboard reads); PostgreSQL when ``DATABASE_URL`` points at one. The same
tables and queries serve both.
"""

from __future__ import annotations

from pathlib import Path

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
