"""The prediction store: the prediction log, feedback, and the drift history (SQLAlchemy Core).

A SQLite file under the artifacts folder by default (WAL mode, so several uvicorn workers can
write while the dashboard reads); PostgreSQL when ``DATABASE_URL`` points at one. The same
tables and queries serve both.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(120), nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("prediction", sa.String(200), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("probabilities", sa.JSON, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    # Every read is a time window, of one version or of all: two indexes serve them all, and each
    # index more would slow down the insert that every /predict waits for.
    sa.Index("ix_predictions_version_time", "model_version", "created_at"),
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

PROBABILITY_PREFIX = "probability_"
"""Prefix of the per-class probability columns of a flat prediction table."""

_ID_CHUNK = 1000


def _id_chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in slices of `_ID_CHUNK`, each small enough for one ``IN (...)`` clause."""
    return [ids[start : start + _ID_CHUNK] for start in range(0, len(ids), _ID_CHUNK)]


class UnknownPredictionError(LookupError):
    """Feedback names prediction ids that are not in the log; ``ids`` lists them."""

    def __init__(self, ids: list[str]):
        super().__init__(f"unknown prediction ids: {ids[:20]}{' ...' if len(ids) > 20 else ''}")
        self.ids = ids


def json_lines(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row, serialised by pandas in C (NaN becomes null)."""
    if frame.shape[1] == 0:
        return ["{}"] * len(frame)
    return frame.to_json(orient="records", lines=True, date_format="iso").split("\n")[: len(frame)]


def _json_param(dialect_name: str, name: str) -> sa.ColumnElement:
    """A bind parameter taking pre-serialised JSON text (PostgreSQL needs an explicit cast)."""
    param = sa.bindparam(name, type_=sa.Text)
    return sa.cast(param, sa.JSON) if dialect_name == "postgresql" else param


def _utc(when: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def log_predictions(
    engine: Engine,
    features: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    model_version: str,
    request_id: str | Sequence[str] | None = None,
    created_at: datetime | Sequence[datetime] | None = None,
) -> list[str]:
    """Append predictions to the log in one transaction (all rows or none).

    Args:
        engine: the store.
        features: the raw input records, one row per prediction.
        outputs: `model_deploy.predict_frame` output (prediction, score, probabilities, threshold;
            or ``probability_<class>`` columns instead of probabilities), optionally with an
            ``id`` column; ids are generated where absent.
        model_version: the version that produced the outputs.
        request_id: groups the rows of one request (default: a new id), or one id per row
            (several requests scored together).
        created_at: one time for all rows or one per row (default: now, UTC); lets the
            monitoring simulator write backdated traffic.

    Returns:
        The prediction ids, in row order.
    """
    n = len(features)
    if len(outputs) != n:
        raise ValueError(f"{n} feature rows but {len(outputs)} outputs")
    ids = outputs["id"].astype(str).tolist() if "id" in outputs else new_ids(n)
    if n == 0:
        return ids
    if created_at is None or isinstance(created_at, datetime):
        times = [_utc(created_at or datetime.now(timezone.utc))] * n
    else:
        times = [_utc(pd.Timestamp(t).to_pydatetime()) for t in created_at]
    threshold = outputs["threshold"] if "threshold" in outputs else pd.Series([np.nan] * n)
    columns = {
        "id": ids,
        "request_id": [request_id or new_ids(1)[0]] * n if request_id is None or isinstance(request_id, str) else list(request_id),
        "created_at": times,
        "model_version": [model_version] * n,
        "features": json_lines(features.reset_index(drop=True)),
        "prediction": outputs["prediction"].astype(str).tolist(),
        "score": pd.to_numeric(outputs["score"]).astype(float).tolist(),
        "probabilities": _probability_json(outputs, n),
        "threshold": pd.to_numeric(threshold).astype(float).replace({np.nan: None}).tolist(),
    }
    with engine.begin() as connection:
        _insert_predictions(connection, columns)
    return ids


def new_ids(n: int) -> list[str]:
    """``n`` unique prediction ids: 32 hex characters, the current time in ms then 80 random bits.

    Time-ordered like UUIDv7, so new ids land at the end of the primary-key index instead of on
    random pages (random ids made each 10,000-row insert rewrite thousands of index pages).
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    token = secrets.token_hex(10 * n)
    return [prefix + token[i : i + 20] for i in range(0, 20 * n, 20)]


def _probability_json(outputs: pd.DataFrame, n: int) -> list[str | None]:
    """The ``probabilities`` column of dicts, or the ``probability_<class>`` columns, as JSON text."""
    flat = [c for c in outputs.columns if str(c).startswith(PROBABILITY_PREFIX)]
    if "probabilities" not in outputs and flat:
        return json_lines(outputs[flat].rename(columns=lambda c: c[len(PROBABILITY_PREFIX) :]))
    if "probabilities" not in outputs or outputs["probabilities"].isna().all():
        return [None] * n
    values = outputs["probabilities"].tolist()
    if any(v is None for v in values):
        return [None if v is None else json.dumps(v) for v in values]
    return json_lines(pd.DataFrame(values))


def _insert_predictions(connection: sa.Connection, columns: dict[str, list]) -> None:
    """Bulk insert through the driver's ``executemany``, skipping SQLAlchemy's per-row processing.

    Values arrive ready for the driver: JSON as text (cast on PostgreSQL) and, on SQLite,
    timestamps as UTC text in the format SQLAlchemy's SQLite ``DateTime`` reads back.
    """
    dialect = connection.dialect
    if dialect.name == "sqlite":
        text = {t: t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in set(columns["created_at"])}
        columns = {**columns, "created_at": [text[t] for t in columns["created_at"]]}
    statement = sa.insert(predictions).values(
        features=_json_param(dialect.name, "features"), probabilities=_json_param(dialect.name, "probabilities")
    )
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional:
        params: list = list(zip(*(columns[name] for name in compiled.positiontup)))
    else:
        names = list(columns)
        params = [dict(zip(names, values)) for values in zip(*columns.values())]
    connection.exec_driver_sql(str(compiled), params)


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
        for chunk in _id_chunks(ids):
            found.update(connection.execute(sa.select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars())
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise UnknownPredictionError(unknown)
        for chunk in _id_chunks(ids):
            connection.execute(feedback.delete().where(feedback.c.prediction_id.in_(chunk)))
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
    with engine.connect() as connection:
        rows = connection.execute(_window_filter(query, start, end, model_version)).all()
    log = pd.DataFrame([row[:-1] for row in rows], columns=[*PREDICTION_COLUMNS, "actual"])
    log["created_at"] = pd.to_datetime(log["created_at"], utc=True)
    expanded = pd.DataFrame([row[-1] for row in rows], index=log.index)
    expanded.columns = [f"feature_{c}" if c in log.columns else c for c in expanded.columns]
    return pd.concat([log, expanded], axis=1)


def _enable_sqlite_wal(dbapi_connection, _record, attempts: int = 50) -> None:
    cursor = dbapi_connection.cursor()
    # Connections opening a fresh file together all ask for the switch to WAL, which needs an
    # exclusive lock: SQLite answers "locked" at once (no busy wait, it would deadlock) to all but
    # one. Retrying is enough: once the winner switches, the mode is stored in the file.
    for attempt in range(1, attempts + 1):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if attempt == attempts or "locked" not in str(exc):
                raise
            time.sleep(0.01 * attempt)
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


def defer_wal_checkpoints(engine: Engine) -> bool:
    """On SQLite, stop commits from checkpointing the WAL themselves, so that whoever calls
    `checkpoint_wal` (e.g. a background thread) pays for it; False, doing nothing, elsewhere."""
    if engine.dialect.name != "sqlite":
        return False
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA wal_autocheckpoint=0"))
    engine.dispose()  # pooled connections were opened without the pragma
    return True


def checkpoint_wal(engine: Engine) -> None:
    """Copy committed WAL pages into the SQLite file, without waiting for readers or writers."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def init_db(engine: Engine, attempts: int = 5) -> None:
    """Create the tables that do not exist yet (never drops or alters existing data).

    Several processes (uvicorn workers) starting on a fresh store race to create the same tables:
    the loser's "already exists" error is retried, and the retry finds the tables in place.
    """
    for attempt in range(1, attempts + 1):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError as exc:
            if attempt == attempts or not _creation_race(exc):
                raise
            time.sleep(0.1 * attempt)


def _creation_race(error: sa.exc.DBAPIError) -> bool:
    """Whether a CREATE failed because another process created the same object first."""
    message = str(error.orig).lower()
    # SQLite: "table ... already exists"; PostgreSQL: DuplicateTable, or a unique violation on
    # the catalog (pg_type) when both CREATE TABLE statements run at the same instant
    return "already exists" in message or "duplicate key" in message


# ----------------------------------------------------------------------------- monitoring history
LOG_FIELDS = {"id": "__id__", "created_at": "__created_at__", "prediction": "__prediction__", "score": "__score__"}
"""Log columns `sample_predictions` adds beside the features, named as in ``reference.parquet``."""

RUN_COLUMNS = ["id", "created_at", "window_start", "window_end", "model_version", "n_rows", "n_sampled", "status", "summary"]
HISTORY_COLUMNS = [
    "run_id", "window_start", "window_end", "model_version",
    "feature", "method", "statistic", "p_value", "drifted", "status", "detail",
]


def _in_range(query: sa.Select, column: sa.Column, start: datetime | None, end: datetime | None) -> sa.Select:
    """Restrict ``query`` to ``start <= column < end``; either bound may be open."""
    if start is not None:
        query = query.where(column >= _utc(start))
    if end is not None:
        query = query.where(column < _utc(end))
    return query


def _window_filter(query: sa.Select, start: datetime | None, end: datetime | None, model_version: str | None) -> sa.Select:
    """Restrict a predictions query to ``start <= created_at < end`` and one model version."""
    query = _in_range(query, predictions.c.created_at, start, end)
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    return query


def prediction_time_range(engine: Engine, model_version: str | None = None) -> tuple[datetime | None, datetime | None]:
    """The first and last ``created_at`` in the log (UTC), or (None, None) when it is empty."""
    query = _window_filter(sa.select(sa.func.min(predictions.c.created_at), sa.func.max(predictions.c.created_at)), None, None, model_version)
    with engine.connect() as connection:
        first, last = connection.execute(query).one()
    return (_utc(first) if first else None, _utc(last) if last else None)


def count_predictions(engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None) -> int:
    """How many predictions were logged in ``[start, end)`` (of one version, when given)."""
    query = _window_filter(sa.select(sa.func.count()).select_from(predictions), start, end, model_version)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def sample_predictions(
    engine: Engine,
    start: datetime | None,
    end: datetime | None,
    size: int,
    *,
    seed: int = 0,
    model_version: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """A uniform random sample of at most ``size`` logged predictions of a window, and the window's row count.

    Only the sampled rows' features are read and parsed, so a window of millions of rows costs one
    pass over its ids. The same seed gives the same sample on SQLite and PostgreSQL.

    Returns:
        (frame, n_rows): one column per input feature plus ``__id__``, ``__created_at__``,
        ``__prediction__`` and ``__score__``; ``n_rows`` is the number of rows in the window.
    """
    # One aggregated string of ids is ~10x faster to fetch than a million rows; sorted for determinism.
    id_query = _window_filter(sa.select(sa.func.aggregate_strings(predictions.c.id, ",")), start, end, model_version)
    with engine.connect() as connection:
        joined = connection.execute(id_query).scalar()
        ids = sorted(joined.split(",")) if joined else []
        n_rows = len(ids)
        if n_rows > size:
            ids = pd.Series(ids).sample(n=size, random_state=seed).sort_index().tolist()
        columns = [predictions.c[name] for name in LOG_FIELDS] + [predictions.c.features]
        rows = []
        for chunk in _id_chunks(ids):
            rows += connection.execute(sa.select(*columns).where(predictions.c.id.in_(chunk))).all()
    rows.sort(key=lambda row: row[0])
    log = pd.DataFrame([row[:-1] for row in rows], columns=list(LOG_FIELDS.values()))
    log["__created_at__"] = pd.to_datetime(log["__created_at__"], utc=True)
    features = pd.DataFrame.from_records([row[-1] for row in rows], index=log.index) if rows else pd.DataFrame(index=log.index)
    return pd.concat([features, log], axis=1), n_rows


def read_outcomes(
    engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None
) -> pd.DataFrame:
    """Predictions of a window that have feedback: ``prediction``, ``score``, ``actual``."""
    query = _window_filter(
        sa.select(predictions.c.prediction, predictions.c.score, feedback.c.actual).select_from(
            predictions.join(feedback, feedback.c.prediction_id == predictions.c.id)
        ),
        start,
        end,
        model_version,
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["prediction", "score", "actual"])


def _none_if_nan(value: object) -> object:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def _json_safe(value: object) -> object:
    """Plain JSON values: NaN and infinities become null (PostgreSQL rejects them), numpy scalars Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (pd.isna(value) or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_monitoring_run(engine: Engine, run: Mapping[str, object], results: pd.DataFrame) -> int:
    """Store one monitoring window and its per-feature results in one transaction; return the run id.

    Args:
        run: ``window_start``, ``window_end``, ``model_version``, ``n_rows``, ``n_sampled``,
            ``status`` and ``summary`` (a JSON-able dict); ``created_at`` defaults to now.
        results: the tidy drift table (``feature``, ``method``, ``statistic``, ``p_value``,
            ``drifted``, ``status``, ``detail``; other columns are ignored).

    A window already stored for the same model version (same start and end) is replaced, so a
    backfill can be re-run without duplicating history.
    """
    record = {
        "created_at": _utc(run.get("created_at") or datetime.now(timezone.utc)),
        "window_start": _utc(run["window_start"]),
        "window_end": _utc(run["window_end"]),
        "model_version": str(run["model_version"]),
        "n_rows": int(run["n_rows"]),
        "n_sampled": int(run["n_sampled"]),
        "status": str(run["status"]),
        "summary": _json_safe(run["summary"]),
    }
    same_window = sa.and_(
        monitoring_runs.c.model_version == record["model_version"],
        monitoring_runs.c.window_start == record["window_start"],
        monitoring_runs.c.window_end == record["window_end"],
    )
    with engine.begin() as connection:
        old = connection.execute(sa.select(monitoring_runs.c.id).where(same_window)).scalars().all()
        if old:
            connection.execute(drift_results.delete().where(drift_results.c.run_id.in_(old)))
            connection.execute(monitoring_runs.delete().where(monitoring_runs.c.id.in_(old)))
        run_id = connection.execute(monitoring_runs.insert().values(**record)).inserted_primary_key[0]
        rows = [
            {
                "run_id": run_id,
                "feature": str(row["feature"]),
                "method": str(row["method"]),
                "statistic": _none_if_nan(float(row["statistic"])),
                "p_value": _none_if_nan(float(row["p_value"])),
                "drifted": bool(row["drifted"]),
                "status": str(row["status"]),
                "detail": _none_if_nan(row.get("detail")) or None,
            }
            for row in results.to_dict("records")
        ]
        if rows:
            connection.execute(drift_results.insert(), rows)
    return int(run_id)


def read_runs(
    engine: Engine, model_version: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Monitoring runs, oldest window first (``RUN_COLUMNS``; ``summary`` is a dict; times in UTC).

    ``start`` / ``end`` keep the runs whose window starts in ``[start, end)``.
    """
    query = sa.select(*[monitoring_runs.c[name] for name in RUN_COLUMNS]).order_by(monitoring_runs.c.window_start, monitoring_runs.c.id)
    if model_version is not None:
        query = query.where(monitoring_runs.c.model_version == model_version)
    query = _in_range(query, monitoring_runs.c.window_start, start, end)
    with engine.connect() as connection:
        runs = pd.DataFrame(connection.execute(query).all(), columns=RUN_COLUMNS)
    for column in ("created_at", "window_start", "window_end"):
        runs[column] = pd.to_datetime(runs[column], utc=True)
    return runs


def read_drift_history(
    engine: Engine,
    model_version: str | None = None,
    feature: str | None = None,
    method: str | None = None,
    run_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Per-feature results joined with their run's window, oldest first (``HISTORY_COLUMNS``).

    ``start`` / ``end`` keep the runs whose window starts in ``[start, end)``.
    """
    query = (
        sa.select(
            drift_results.c.run_id,
            monitoring_runs.c.window_start,
            monitoring_runs.c.window_end,
            monitoring_runs.c.model_version,
            *[drift_results.c[name] for name in HISTORY_COLUMNS[4:]],
        )
        .select_from(drift_results.join(monitoring_runs, monitoring_runs.c.id == drift_results.c.run_id))
        .order_by(monitoring_runs.c.window_start, drift_results.c.id)
    )
    for column, value in ((monitoring_runs.c.model_version, model_version), (drift_results.c.feature, feature),
                          (drift_results.c.method, method), (drift_results.c.run_id, run_id)):
        if value is not None:
            query = query.where(column == value)
    query = _in_range(query, monitoring_runs.c.window_start, start, end)
    with engine.connect() as connection:
        history = pd.DataFrame(connection.execute(query).all(), columns=HISTORY_COLUMNS)
    for column in ("window_start", "window_end"):
        history[column] = pd.to_datetime(history[column], utc=True)
    history["statistic"] = history["statistic"].astype(float)
    history["p_value"] = history["p_value"].astype(float)
    return history
