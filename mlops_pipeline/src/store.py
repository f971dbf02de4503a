"""The prediction store: the prediction log, feedback, and the drift history (SQLAlchemy Core).

A SQLite file under the artifacts folder by default (WAL mode, so several uvicorn workers can
write while the dashboard reads); PostgreSQL when ``DATABASE_URL`` points at one. The same
tables and queries serve both.

The prediction log keeps one row per *batch*: the predictions logged together (one request,
several small requests scored together, one chunk of the ``score`` CLI), with each prediction's
request id, input features and outputs in a JSON ``payload``. Logging 10,000 predictions is then
one row written, not 10,000 rows and their index entries (which cost SQLite more than scoring
them costs the model), and prediction ``<batch id>-<row>`` is still found by its id. Read the log
through the functions here (`read_predictions`, `sample_predictions`, `read_outcomes`,
`recent_predictions`): they give one row per prediction.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

prediction_batches = sa.Table(
    "prediction_batches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(120), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_prediction_batches_version_time", "model_version", "created_at"),
)
"""The prediction log: one row per batch of predictions made by one model version at one time.
``payload`` (`encode_payload`) holds, row by row, the request id, the raw input record and the
outputs (``prediction``, ``score``, ``threshold``, ``probability_<class>``, ...). ``score`` is the
positive-class probability (binary), the top-class probability (multiclass) or the predicted
value (regression)."""

feedback = sa.Table(
    "prediction_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(48), primary_key=True),
    sa.Column("batch_id", sa.String(32), sa.ForeignKey("prediction_batches.id"), nullable=False, index=True),
    sa.Column("batch_row", sa.Integer, nullable=False),
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
    sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
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
LOG_COLUMNS = ["id", "request_id", "created_at", "model_version"]
"""Columns of `read_predictions` before the outputs, ``actual`` and the features."""

PROBABILITY_PREFIX = "probability_"
"""Prefix of the per-class probability columns of a flat prediction table."""

_BATCH = (
    prediction_batches.c.id,
    prediction_batches.c.created_at,
    prediction_batches.c.model_version,
    prediction_batches.c.payload,
)
"""The columns `_expand` reads."""

_ID_CHUNK = 1000


def _id_chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in slices of `_ID_CHUNK`, each small enough for one ``IN (...)`` clause."""
    return [ids[start : start + _ID_CHUNK] for start in range(0, len(ids), _ID_CHUNK)]


class UnknownPredictionError(LookupError):
    """Feedback names prediction ids that are not in the log; ``ids`` lists them."""

    def __init__(self, ids: list[str]):
        super().__init__(f"unknown prediction ids: {ids[:20]}{' ...' if len(ids) > 20 else ''}")
        self.ids = ids


def _utc(when: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def new_batch_id() -> str:
    """32 hex characters: the current time in ms then 80 random bits.

    Time-ordered like UUIDv7, so a new batch lands at the end of the primary-key index instead of
    on a random page.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def new_ids(n: int) -> list[str]:
    """The ids of ``n`` predictions logged as one new batch: ``<batch id>-<row>``."""
    batch = new_batch_id()
    return [f"{batch}-{row}" for row in range(n)]


def parse_id(prediction_id: str) -> tuple[str, int] | None:
    """(batch id, row) of a prediction id, or None when the text is not one."""
    batch, _, row = prediction_id.rpartition("-")
    if not batch or not (row.isascii() and row.isdigit()) or f"{batch}-{int(row)}" != prediction_id:
        return None
    return batch, int(row)


def _table_json(frame: pd.DataFrame) -> str:
    """``{"columns": [...], "data": [[row], ...]}``, the rows serialised by pandas in C (NaN becomes
    null; floats keep 15 significant digits)."""
    rows = (
        frame.to_json(orient="values", double_precision=15)
        if frame.shape[1]
        else json.dumps([[]] * len(frame))
    )
    return f'{{"columns":{json.dumps([str(c) for c in frame.columns])},"data":{rows}}}'


def encode_payload(features: pd.DataFrame, outputs: pd.DataFrame, request_ids: Sequence[str]) -> str:
    """A batch's ``payload``: its request ids (as runs of ``[id, rows]``), features and outputs."""
    runs = [[request, len(list(rows))] for request, rows in itertools.groupby(request_ids)]
    return f'{{"requests":{json.dumps(runs)},"features":{_table_json(features)},"outputs":{_table_json(outputs)}}}'


def _batch_rows(
    n: int, outputs: pd.DataFrame, created_at: datetime | Sequence[datetime] | None
) -> list[tuple[str, datetime, np.ndarray]]:
    """How the rows split into batches: (batch id, time, row positions), one batch per distinct time.

    Rows with ids from `new_ids` are that one batch (and need one time).
    """
    if created_at is None or isinstance(created_at, datetime):
        groups = [(_utc(created_at or datetime.now(UTC)), np.arange(n))]
    else:
        times = pd.Series(pd.to_datetime(list(created_at), utc=True))
        groups = [
            (_utc(pd.Timestamp(t).to_pydatetime()), rows)
            for t, rows in times.groupby(times, sort=True).indices.items()
        ]
    if "id" not in outputs:
        return [(new_batch_id(), when, rows) for when, rows in groups]
    ids = outputs["id"].astype(str).tolist()
    batch = ids[0].rpartition("-")[0]
    if ids != [f"{batch}-{row}" for row in range(n)] or len(groups) != 1:
        raise ValueError(
            "predictions with ids are logged as the one batch `new_ids` made them for, at one time"
        )
    return [(batch, *groups[0])]


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
        outputs: flat `scoring.predict_frame` outputs (``prediction``, ``score``, optional
            ``threshold``, ``probability_<class>``, ``lower`` / ``upper``), optionally with the
            ``id`` column `new_ids` made; a ``model_version`` column is ignored (the argument says it).
        model_version: the version that produced the outputs.
        request_id: groups the rows of one request (default: a new id), or one id per row
            (several requests scored together).
        created_at: one time for all rows or one per row (default: now, UTC); lets the
            monitoring simulator write backdated traffic. Each distinct time is its own batch.

    Returns:
        The prediction ids, in row order.
    """
    n = len(features)
    if len(outputs) != n:
        raise ValueError(f"{n} feature rows but {len(outputs)} outputs")
    if "probabilities" in outputs:
        raise ValueError("log flat outputs: the probability_<class> columns of predict_frame(..., flat=True)")
    if n == 0:
        return []
    requests = (
        [request_id or new_batch_id()] * n
        if request_id is None or isinstance(request_id, str)
        else list(request_id)
    )
    values = outputs.drop(columns=["id", "model_version"], errors="ignore").reset_index(drop=True)
    values["prediction"] = values["prediction"].astype(str)
    if "threshold" not in values:
        values.insert(values.columns.get_loc("score") + 1, "threshold", np.nan)
    features = features.reset_index(drop=True)
    batches = _batch_rows(n, outputs, created_at)
    records = []
    for batch, when, rows in batches:
        if len(rows) == n:  # the usual case, one batch: no copies
            payload = encode_payload(features, values, requests)
        else:
            payload = encode_payload(features.iloc[rows], values.iloc[rows], [requests[i] for i in rows])
        records.append(
            {
                "id": batch,
                "created_at": when,
                "model_version": model_version,
                "n_rows": len(rows),
                "payload": payload,
            }
        )
    with engine.begin() as connection:
        connection.execute(prediction_batches.insert(), records)
    if "id" in outputs:  # `_batch_rows` checked they are this batch's ids
        return outputs["id"].astype(str).tolist()
    ids = [""] * n
    for batch, _, rows in batches:
        for position, row in enumerate(rows.tolist()):
            ids[row] = f"{batch}-{position}"
    return ids


def _expand(
    batches: Sequence[sa.Row],
    picks: Mapping[str, Sequence[int]] | None = None,
    actual: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions of ``batches`` (rows of `_BATCH`), in order, or only the rows ``picks`` lists
    per batch id: (`LOG_COLUMNS` + the outputs + ``actual``, the raw features), on one index."""
    layouts: dict[tuple, tuple[list, list, list, list]] = {}
    position = 0
    for batch_id, created_at, version, payload in batches:
        document = json.loads(payload)
        feature_rows, output_rows = document["features"]["data"], document["outputs"]["data"]
        requests = [request for request, count in document["requests"] for _ in range(count)]
        rows = range(len(requests)) if picks is None else picks[batch_id]
        key = (tuple(document["features"]["columns"]), tuple(document["outputs"]["columns"]))
        log_part, feature_part, output_part, order = layouts.setdefault(key, ([], [], [], []))
        log_part.extend((f"{batch_id}-{row}", requests[row], created_at, version) for row in rows)
        feature_part.extend(feature_rows if picks is None else [feature_rows[row] for row in rows])
        output_part.extend(output_rows if picks is None else [output_rows[row] for row in rows])
        order.extend(range(position, position + len(rows)))
        position += len(rows)
    if not layouts:
        empty = pd.DataFrame(columns=[*LOG_COLUMNS, "prediction", "score", "threshold", "actual"])
        return empty, pd.DataFrame(index=empty.index)
    logs, features = [], []
    for (feature_columns, output_columns), (log_part, feature_part, output_part, order) in layouts.items():
        index = pd.Index(order)
        outputs = pd.DataFrame(output_part, columns=list(output_columns), index=index)
        logs.append(pd.concat([pd.DataFrame(log_part, columns=LOG_COLUMNS, index=index), outputs], axis=1))
        features.append(pd.DataFrame(feature_part, columns=list(feature_columns), index=index))
    log = pd.concat(logs).sort_index() if len(logs) > 1 else logs[0]
    log["created_at"] = pd.to_datetime(log["created_at"], utc=True)
    log["actual"] = [None if actual is None else actual.get(i) for i in log["id"]]
    return log, (pd.concat(features).sort_index() if len(features) > 1 else features[0])


def _with_features(log: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The log with the features as columns after it (one named like a log column gets ``feature_``)."""
    return log.join(features.rename(columns=lambda c: f"feature_{c}" if c in log.columns else c))


def _feedback_of(connection: sa.Connection, batch_ids: list[str]) -> dict[str, str]:
    """Prediction id to true outcome, for the predictions of these batches that have one."""
    actual: dict[str, str] = {}
    for chunk in _id_chunks(batch_ids):
        query = sa.select(feedback.c.prediction_id, feedback.c.actual).where(feedback.c.batch_id.in_(chunk))
        actual.update(tuple(row) for row in connection.execute(query))
    return actual


def _fetch_batches(connection: sa.Connection, batch_ids: list[str]) -> list[sa.Row]:
    """The `_BATCH` columns of these batches, in id order."""
    batches: list[sa.Row] = []
    for chunk in _id_chunks(batch_ids):
        batches += connection.execute(sa.select(*_BATCH).where(prediction_batches.c.id.in_(chunk))).all()
    return sorted(batches, key=lambda batch: batch[0])


def record_feedback(engine: Engine, items: Sequence[Mapping[str, object]]) -> int:
    """Store true outcomes (``prediction_id``, ``actual``); a later outcome replaces an earlier one.

    Raises:
        UnknownPredictionError: when any id is not in the log; then nothing is written.

    Returns:
        The number of predictions whose outcome was stored.
    """
    latest = {str(item["prediction_id"]): str(item["actual"]) for item in items}
    keys = {prediction_id: parse_id(prediction_id) for prediction_id in latest}
    now = datetime.now(UTC)
    with engine.begin() as connection:
        sizes: dict[str, int] = {}
        for chunk in _id_chunks(sorted({key[0] for key in keys.values() if key})):
            query = sa.select(prediction_batches.c.id, prediction_batches.c.n_rows).where(
                prediction_batches.c.id.in_(chunk)
            )
            sizes.update(tuple(row) for row in connection.execute(query))
        unknown = [i for i, key in keys.items() if key is None or not 0 <= key[1] < sizes.get(key[0], 0)]
        if unknown:
            raise UnknownPredictionError(unknown)
        ids = list(latest)
        for chunk in _id_chunks(ids):
            connection.execute(feedback.delete().where(feedback.c.prediction_id.in_(chunk)))
        if ids:
            rows = [
                {
                    "prediction_id": i,
                    "batch_id": keys[i][0],
                    "batch_row": keys[i][1],
                    "actual": latest[i],
                    "created_at": now,
                }
                for i in ids
            ]
            connection.execute(feedback.insert(), rows)
    return len(ids)


def _in_range(query: sa.Select, column: sa.Column, start: datetime | None, end: datetime | None) -> sa.Select:
    """Restrict ``query`` to ``start <= column < end``; either bound may be open."""
    if start is not None:
        query = query.where(column >= _utc(start))
    if end is not None:
        query = query.where(column < _utc(end))
    return query


def _window_filter(
    query: sa.Select, start: datetime | None, end: datetime | None, model_version: str | None
) -> sa.Select:
    """Restrict a query on the log to ``start <= created_at < end`` and one model version."""
    query = _in_range(query, prediction_batches.c.created_at, start, end)
    if model_version is not None:
        query = query.where(prediction_batches.c.model_version == model_version)
    return query


def read_predictions(
    engine: Engine,
    start: datetime | None = None,
    end: datetime | None = None,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Logged predictions with ``start <= created_at < end``, oldest first, features as columns.

    Columns: `LOG_COLUMNS`, the outputs (``prediction``, ``score``, ``threshold``,
    ``probability_<class>``...), ``actual`` (the feedback outcome or None), then one column per
    input feature (a feature named like a log column is prefixed ``feature_``). ``created_at`` is
    timezone-aware UTC.
    """
    query = _window_filter(sa.select(*_BATCH), start, end, model_version).order_by(
        prediction_batches.c.created_at, prediction_batches.c.id
    )
    with engine.connect() as connection:
        batches = connection.execute(query).all()
        actual = _feedback_of(connection, [batch[0] for batch in batches])
    return _with_features(*_expand(batches, actual=actual))


def recent_predictions(engine: Engine, model_version: str, limit: int) -> pd.DataFrame:
    """The latest ``limit`` predictions of a version, newest first, shaped like `read_predictions`."""
    query = (
        sa.select(*_BATCH, prediction_batches.c.n_rows)
        .where(prediction_batches.c.model_version == model_version)
        .order_by(prediction_batches.c.created_at.desc(), prediction_batches.c.id.desc())
    )
    batches, picks, rows = [], {}, 0
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True).execute(query)
        for *batch, n_rows in result:  # only as many batches as the limit needs
            batches.append(batch)
            picks[batch[0]] = range(n_rows - 1, -1, -1)
            rows += n_rows
            if rows >= limit:
                break
        result.close()
        actual = _feedback_of(connection, list(picks))
    return _with_features(*_expand(batches, picks, actual)).head(limit)


def prediction_time_range(
    engine: Engine, model_version: str | None = None
) -> tuple[datetime | None, datetime | None]:
    """The first and last ``created_at`` in the log (UTC), or (None, None) when it is empty."""
    created = prediction_batches.c.created_at
    query = _window_filter(sa.select(sa.func.min(created), sa.func.max(created)), None, None, model_version)
    with engine.connect() as connection:
        first, last = connection.execute(query).one()
    return (_utc(first) if first else None, _utc(last) if last else None)


def count_predictions(
    engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None
) -> int:
    """How many predictions were logged in ``[start, end)`` (of one version, when given)."""
    query = _window_filter(
        sa.select(sa.func.coalesce(sa.func.sum(prediction_batches.c.n_rows), 0)), start, end, model_version
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


LOG_FIELDS = {
    "id": "__id__",
    "created_at": "__created_at__",
    "prediction": "__prediction__",
    "score": "__score__",
}
"""Log columns `sample_predictions` adds beside the features, named as in ``reference.parquet``."""


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

    The rows are drawn from the window's row count alone; then only the batches that hold a drawn
    row are read. The same seed gives the same sample on SQLite and PostgreSQL.

    Returns:
        (frame, n_rows): one column per input feature plus ``__id__``, ``__created_at__``,
        ``__prediction__`` and ``__score__``; ``n_rows`` is the number of rows in the window.
    """
    query = _window_filter(
        sa.select(prediction_batches.c.id, prediction_batches.c.n_rows), start, end, model_version
    )
    with engine.connect() as connection:
        sizes = sorted(tuple(row) for row in connection.execute(query))
        counts = np.array([count for _, count in sizes], dtype=np.int64)
        n_rows = int(counts.sum())
        drawn = (
            np.arange(n_rows)
            if n_rows <= size
            else np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))
        )
        starts = np.cumsum(counts) - counts
        owners = np.searchsorted(starts, drawn, side="right") - 1
        picks: dict[str, list[int]] = {}
        for owner, row in zip(owners.tolist(), (drawn - starts[owners]).tolist()):
            picks.setdefault(sizes[owner][0], []).append(row)
        batches = _fetch_batches(connection, list(picks))
    log, features = _expand(batches, picks)
    return features.join(log[list(LOG_FIELDS)].rename(columns=LOG_FIELDS)), n_rows


def read_outcomes(
    engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None
) -> pd.DataFrame:
    """Predictions of a window that have feedback: ``prediction``, ``score``, ``actual``."""
    query = _window_filter(
        sa.select(
            feedback.c.batch_id, feedback.c.batch_row, feedback.c.prediction_id, feedback.c.actual
        ).select_from(feedback.join(prediction_batches, feedback.c.batch_id == prediction_batches.c.id)),
        start,
        end,
        model_version,
    )
    with engine.connect() as connection:
        rows = sorted(tuple(row) for row in connection.execute(query))
        picks: dict[str, list[int]] = {}
        for batch, row, _, _ in rows:
            picks.setdefault(batch, []).append(row)
        batches = _fetch_batches(connection, list(picks))
    log, _ = _expand(batches, picks, {prediction_id: actual for _, _, prediction_id, actual in rows})
    return log[["prediction", "score", "actual"]].reset_index(drop=True)


# ----------------------------------------------------------------------------- engine and tables
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


class StoreNotWritableError(PermissionError):
    """The SQLite store's folder or file cannot be written by this process; the message says what to do."""


def check_sqlite_writable(url: str) -> None:
    """Fail in one line when a SQLite store cannot be written here (say, a root-owned host folder
    mounted at /data in the container), instead of SQLAlchemy's traceback on first use; other URLs pass."""
    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        return
    path = Path(database).absolute()
    folder = next(
        p for p in path.parents if os.path.exists(p)
    )  # the file's folder, or the ancestor mkdir starts from
    blocked = (
        folder
        if not os.access(folder, os.W_OK | os.X_OK)
        else path
        if os.path.exists(path) and not os.access(path, os.W_OK)
        else None
    )
    if blocked is not None:
        try:
            owner = blocked.owner()
        except (KeyError, NotImplementedError):
            owner = f"uid {blocked.stat().st_uid}"
        uid = os.getuid() if hasattr(os, "getuid") else "<usuario>"
        raise StoreNotWritableError(
            f"No se puede escribir en {blocked} (propietario {owner}): ejecute 'chown {uid} <carpeta>' o use un volumen con nombre"
        )


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
    sa.event.listen(
        engine,
        "connect",
        lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA wal_autocheckpoint=0"),
    )
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
RUN_COLUMNS = [
    "id",
    "created_at",
    "window_start",
    "window_end",
    "model_version",
    "n_rows",
    "n_sampled",
    "status",
    "summary",
]
HISTORY_COLUMNS = [
    "run_id",
    "window_start",
    "window_end",
    "model_version",
    "feature",
    "method",
    "statistic",
    "p_value",
    "drifted",
    "status",
    "detail",
]


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
        "created_at": _utc(run.get("created_at") or datetime.now(UTC)),
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
    engine: Engine,
    model_version: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Monitoring runs, oldest window first (``RUN_COLUMNS``; ``summary`` is a dict; times in UTC).

    ``start`` / ``end`` keep the runs whose window starts in ``[start, end)``.
    """
    query = sa.select(*[monitoring_runs.c[name] for name in RUN_COLUMNS]).order_by(
        monitoring_runs.c.window_start, monitoring_runs.c.id
    )
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
    for column, value in (
        (monitoring_runs.c.model_version, model_version),
        (drift_results.c.feature, feature),
        (drift_results.c.method, method),
        (drift_results.c.run_id, run_id),
    ):
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
