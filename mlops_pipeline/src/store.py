"""The prediction store: the prediction log, feedback and the drift history (SQLAlchemy Core).

A SQLite file under the artifacts folder by default (WAL mode, ``synchronous=NORMAL``: several
uvicorn workers write while the dashboard reads), PostgreSQL when ``DATABASE_URL`` says so; the
same tables and queries serve both. `open_store` gives an engine on a store whose tables are ready.

The log is one table, one row per prediction (``SELECT * FROM predictions``): time, model
version, request, the outputs as columns, the raw input record as JSON. `log_predictions` writes
many rows in one transaction (``executemany`` on SQLite, ``COPY`` on PostgreSQL); the readers
give one row per prediction with the input features as columns. The drift history's tables are
here too (so `init_db` makes every table); `monitoring_history` writes and reads them. So are the
shadow comparisons and the promotion audit, which `shadow` writes and reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import settings
from db_engine import DEFAULT_TIMEOUT_SECONDS, create_db_engine, is_missing_table

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Primary keys named after their table: PostgreSQL's default name (``<table>_pkey``) is still taken
# by the renamed table of an earlier layout when `init_db` creates the new one.
metadata = sa.MetaData(naming_convention={"ix": "ix_%(column_0_label)s", "pk": "pk_%(table_name)s"})

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(120), nullable=False),
    sa.Column("request_id", sa.String(48), nullable=True),
    sa.Column("prediction", sa.String(200), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("lower", sa.Float, nullable=True),
    sa.Column("upper", sa.Float, nullable=True),
    sa.Column("probabilities", sa.JSON, nullable=True),
    sa.Column("features", sa.JSON, nullable=False),
    # Every read is a time window, of one version or of all: one index serves them, and each index
    # more would slow down the insert every /predict waits for.
    sa.Index("ix_predictions_model_version_created_at", "model_version", "created_at"),
)
"""The prediction log: one row per prediction, as the API returned it (`scoring.predict_frame`
describes the outputs; ``probabilities`` only where the score does not give them, see
`class_probabilities`), and ``features``, the raw input record."""

feedback = sa.Table(
    "prediction_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(48), sa.ForeignKey("predictions.id"), primary_key=True),
    sa.Column("actual", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
"""The true outcome of a prediction, once known (one per prediction; a later one replaces it).
``created_at`` is when it arrived: the monitoring job counts an outcome in the window it arrives in."""

STATUS_LENGTH = 32  # "insufficient_data"; stores made with 16 are widened by `init_db`

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
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
)
"""One row per monitoring window: overall status (green/yellow/red/insufficient_data/no_data) and a
JSON summary (alerts, recommendations, performance metrics where feedback exists)."""

drift_results = sa.Table(
    "drift_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("feature", sa.String(200), nullable=False),
    sa.Column("method", sa.String(40), nullable=False),
    sa.Column("statistic", sa.Float, nullable=True),
    sa.Column("p_value", sa.Float, nullable=True),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)
"""One row per feature and statistic of a monitoring run (the tidy output of ``compute_drift``)."""

comparisons = sa.Table(
    "model_comparisons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("champion_version", sa.String(120), nullable=False),
    sa.Column("challenger_version", sa.String(120), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("primary_metric", sa.String(40), nullable=False),
    sa.Column("primary_verdict", sa.String(16), nullable=False),
    sa.Column("worse", sa.Boolean, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("resamples", sa.Integer, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("level", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Index("ix_model_comparisons_versions", "champion_version", "challenger_version"),
)
"""One shadow comparison of a challenger with the champion on the logged inputs with feedback since
``since`` (`shadow.write_comparison`): the primary metric's verdict, whether it is worse (the
promotion guard), and ``metrics``, the per-metric table as a list of rows; ``source`` is ``cli``,
``api`` or ``retrain``."""

promotions = sa.Table(
    "model_promotions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.String(120), nullable=False),
    sa.Column("previous_version", sa.String(120), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=True),
    sa.Column("client", sa.String(200), nullable=True),
    sa.Column("comparison_id", sa.ForeignKey("model_comparisons.id"), nullable=True),
    sa.Column("evidence", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)
"""The audit of ``PUT /models/default``: one row per promotion or refusal (``outcome``), who asked
(the body's ``by`` and the client address), whether ``force`` overrode the guard, and the
comparison it relied on or, in ``evidence``, why there was none (`shadow.record_promotion`)."""


# ----------------------------------------------------------------------------- writing the log
LOG_COLUMNS = ["id", "request_id", "created_at", "model_version"]
"""Columns of `read_predictions` before the outputs, ``actual`` and the features."""

OUTPUT_COLUMNS = ["prediction", "score", "threshold", "lower", "upper"]
"""The outputs the log keeps as columns of their own."""

PROBABILITY_PREFIX = "probability_"
"""Prefix of the per-class probability columns of a flat prediction table."""

Times = datetime | Sequence[datetime] | None  # one for every row, one per row, or None (now)
RequestIds = str | Sequence[str] | None  # one for every row, one per row, or None (no request)

_ID_CHUNK = 1000


def _id_chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in slices of `_ID_CHUNK`, each small enough for one ``IN (...)`` clause."""
    return [ids[start : start + _ID_CHUNK] for start in range(0, len(ids), _ID_CHUNK)]


class UnknownPredictionError(LookupError):
    """Feedback names prediction ids that are not in the log; ``ids`` lists them."""

    def __init__(self, ids: list[str]):
        super().__init__(f"unknown prediction ids: {ids[:20]}{' ...' if len(ids) > 20 else ''}")
        self.ids = ids


def as_utc(when: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def json_lines(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row, serialised by pandas in C (NaN becomes null; floats keep 15 digits)."""
    if frame.shape[1] == 0:
        return ["{}"] * len(frame)
    return frame.to_json(orient="records", lines=True, double_precision=15).split("\n")[: len(frame)]


def class_probabilities(outputs: pd.DataFrame) -> pd.DataFrame | None:
    """The ``probability_<class>`` columns, named by class, when the outputs have no threshold.

    A thresholded binary prediction's ``score`` already is the positive-class probability, so
    neither its log row nor its JSON answer repeats the probabilities; a multiclass one (or a
    binary one without a positive class) carries them all. None when there are none to carry.
    """
    columns = [c for c in outputs.columns if str(c).startswith(PROBABILITY_PREFIX)]
    if not columns or ("threshold" in outputs and outputs["threshold"].notna().all()):
        return None
    return outputs[columns].rename(columns=lambda c: c[len(PROBABILITY_PREFIX) :])


def _floats_or_none(values: pd.Series) -> list[float | None]:
    """A numeric column as floats, None where it is missing."""
    values = pd.to_numeric(values).astype(float)
    return values.astype(object).where(values.notna(), None).tolist()


def _times(created_at: Times, n: int) -> list[datetime]:
    """One UTC time per row: now, one given time, or the given time of each row."""
    if created_at is None or isinstance(created_at, datetime):
        return [as_utc(created_at or datetime.now(UTC))] * n
    times = [as_utc(pd.Timestamp(when).to_pydatetime()) for when in created_at]
    if len(times) != n:
        raise ValueError(f"{n} rows but {len(times)} created_at values")
    return times


def _log_rows(
    features: pd.DataFrame, outputs: pd.DataFrame, version: str, request_id: RequestIds, created_at: Times
) -> dict[str, list]:
    """The values of new ``predictions`` rows, column by column, ready for the driver.

    Columns without a value in any row are left out (NULL): every value bound costs insert time.
    """
    n = len(outputs)
    rows = {
        "id": outputs["id"].astype(str).tolist(),
        "created_at": _times(created_at, n),
        "model_version": [version] * n,
        "prediction": outputs["prediction"].astype(str).tolist(),
        "features": json_lines(features),
    }
    if request_id is not None:
        rows["request_id"] = [request_id] * n if isinstance(request_id, str) else list(request_id)
    for name in OUTPUT_COLUMNS[1:]:
        if name in outputs and outputs[name].notna().any():
            rows[name] = _floats_or_none(outputs[name])
    probabilities = class_probabilities(outputs)
    if probabilities is not None:
        rows["probabilities"] = json_lines(probabilities)
    return rows


def _insert(connection: sa.Connection, columns: dict[str, list]) -> None:
    """Append rows to ``predictions``: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

    The values go to the driver as they are, without SQLAlchemy's per-row processing: the JSON
    columns as text, and on SQLite the times as the text SQLAlchemy's ``DateTime`` reads back.
    """
    dialect, names = connection.dialect, ", ".join(columns)
    if dialect.name == "postgresql":
        statement = f"COPY predictions ({names}) FROM STDIN"
        try:  # through psycopg's own cursor, in this transaction
            with connection.connection.driver_connection.cursor().copy(statement) as copy:
                for row in zip(*columns.values()):
                    copy.write_row(row)
        except dialect.loaded_dbapi.Error as exc:  # raised as SQLAlchemy raises its statements' errors
            raise sa.exc.DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc
        return
    as_text = predictions.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamps = {when: as_text(when) for when in set(columns["created_at"])}
    columns = {**columns, "created_at": [stamps[when] for when in columns["created_at"]]}
    insert = f"INSERT INTO predictions ({names}) VALUES ({', '.join('?' * len(columns))})"
    connection.exec_driver_sql(insert, list(zip(*columns.values())))


def log_predictions(
    engine: Engine,
    features: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    model_version: str,
    request_id: RequestIds = None,
    created_at: Times = None,
) -> list[str]:
    """Append predictions to the log in one transaction (all rows or none).

    Args:
        engine: the store.
        features: the raw input records, one row per prediction.
        outputs: `scoring.batch_outputs`: the prediction ``id`` then the flat outputs
            (``prediction``, ``score``, optional ``threshold``, ``probability_<class>``,
            ``lower`` / ``upper``); a ``model_version`` column is ignored (the argument says it).
        model_version: the version that produced the outputs.
        request_id: one for every row, one per row (requests scored together), or None (no request).
        created_at: one time for all rows or one per row (default: now, UTC; the simulator backdates).

    Returns:
        The prediction ids, in row order.
    """
    if len(outputs) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(outputs)} outputs")
    if "probabilities" in outputs:
        raise ValueError("log flat outputs: the probability_<class> columns of predict_frame(..., flat=True)")
    if "id" not in outputs:
        raise ValueError("outputs need their prediction ids (scoring.batch_outputs makes them)")
    if outputs.empty:
        return []
    rows = _log_rows(features.reset_index(drop=True), outputs, model_version, request_id, created_at)
    with engine.begin() as connection:
        _insert(connection, rows)
    return rows["id"]


def prediction_versions(connection: sa.Connection, ids: Sequence[str]) -> dict[str, str]:
    """The model version of each logged prediction among ``ids`` (unknown ids are left out)."""
    versions: dict[str, str] = {}
    for chunk in _id_chunks(list(ids)):
        query = sa.select(predictions.c.id, predictions.c.model_version).where(predictions.c.id.in_(chunk))
        versions.update(tuple(row) for row in connection.execute(query))
    return versions


def _upsert(dialect_name: str):
    """``INSERT ... ON CONFLICT (prediction_id) DO UPDATE`` for the feedback table."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(feedback)
    update = {"actual": insert.excluded.actual, "created_at": insert.excluded.created_at}
    return insert.on_conflict_do_update(index_elements=[feedback.c.prediction_id], set_=update)


def record_feedback(
    engine: Engine,
    items: Sequence[Mapping[str, object]],
    check: Callable[[dict[str, str], dict[str, str]], None] | None = None,
    received_at: Times = None,
) -> int:
    """Store true outcomes (``prediction_id``, ``actual``); a later outcome replaces an earlier one
    (an upsert, so concurrent feedback for the same ids never collides).

    Args:
        engine: the store.
        items: the outcomes; the last one of a repeated id wins.
        check: called with ``{id: actual}`` and ``{id: model_version}`` before writing; it raises
            to refuse the batch (e.g. a label the model version does not know).
        received_at: when the outcomes arrived: one time for all, one per item, or None (now);
            the simulator backdates them, the API never does.

    Raises:
        UnknownPredictionError: when any id is not in the log; then nothing is written.

    Returns:
        The number of predictions whose outcome was stored.
    """
    times = _times(received_at, len(items))
    arrivals = {str(item["prediction_id"]): when for item, when in zip(items, times)}
    latest = {str(item["prediction_id"]): str(item["actual"]) for item in items}
    with engine.begin() as connection:
        versions = prediction_versions(connection, list(latest))
        unknown = [i for i in latest if i not in versions]
        if unknown:
            raise UnknownPredictionError(unknown)
        if check is not None:
            check(latest, versions)
        if latest:
            rows = [{"prediction_id": i, "actual": a, "created_at": arrivals[i]} for i, a in latest.items()]
            connection.execute(_upsert(connection.dialect.name), rows)
    return len(latest)


# ----------------------------------------------------------------------------- reading the log
def in_range(query: sa.Select, column: sa.Column, start: datetime | None, end: datetime | None) -> sa.Select:
    """Restrict ``query`` to ``start <= column < end``; either bound may be open."""
    if start is not None:
        query = query.where(column >= as_utc(start))
    if end is not None:
        query = query.where(column < as_utc(end))
    return query


def _window_filter(
    query: sa.Select, start: datetime | None, end: datetime | None, model_version: str | None
) -> sa.Select:
    """Restrict a query on the log to ``start <= created_at < end`` and one model version."""
    query = in_range(query, predictions.c.created_at, start, end)
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    return query


def _log_query() -> sa.Select:
    """Log rows with their feedback; the JSON columns as text (`_log_frame` parses them)."""
    return sa.select(
        *[predictions.c[name] for name in [*LOG_COLUMNS, *OUTPUT_COLUMNS]],
        sa.cast(predictions.c.probabilities, sa.Text).label("probabilities"),
        feedback.c.actual,
        sa.cast(predictions.c.features, sa.Text).label("features"),
    ).select_from(predictions.outerjoin(feedback, feedback.c.prediction_id == predictions.c.id))


def _parsed(texts: pd.Series) -> pd.DataFrame:
    """JSON objects (one per row, None skipped) as a frame of their keys, on the same index."""
    texts = texts.dropna()
    return pd.DataFrame([json.loads(text) for text in texts], index=texts.index)


def _log_frame(rows: Sequence[sa.Row]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of `_log_query` as (log, features) on one index.

    The log has `LOG_COLUMNS`, ``prediction``, ``score``, ``threshold``, ``probability_<class>``
    (where some row has probabilities), ``lower`` / ``upper`` (where some row has them) and
    ``actual``; the features are one column per input feature.
    """
    table = pd.DataFrame(rows, columns=[*LOG_COLUMNS, *OUTPUT_COLUMNS, "probabilities", "actual", "features"])
    table["created_at"] = pd.to_datetime(table["created_at"], utc=True)
    table[OUTPUT_COLUMNS[1:]] = table[OUTPUT_COLUMNS[1:]].astype(float)
    interval = [name for name in ("lower", "upper") if table[name].notna().any()]
    per_class = _parsed(table["probabilities"]).add_prefix(PROBABILITY_PREFIX)
    log = (
        table[[*LOG_COLUMNS, "prediction", "score", "threshold"]]
        .join(per_class)
        .join(table[[*interval, "actual"]])
    )
    return log, _parsed(table["features"]).reindex(table.index)


def _with_features(log: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The log with the features as columns after it (one named like a log column gets ``feature_``)."""
    return log.join(features.rename(columns=lambda c: f"feature_{c}" if c in log.columns else c))


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
    query = _window_filter(_log_query(), start, end, model_version)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(predictions.c.created_at, predictions.c.id)).all()
    return _with_features(*_log_frame(rows))


def recent_predictions(engine: Engine, model_version: str, limit: int) -> pd.DataFrame:
    """The latest ``limit`` predictions of a version, newest first, shaped like `read_predictions`."""
    query = (
        _window_filter(_log_query(), None, None, model_version)
        .order_by(predictions.c.created_at.desc(), predictions.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return _with_features(*_log_frame(rows))


def prediction_time_range(
    engine: Engine, model_version: str | None = None
) -> tuple[datetime | None, datetime | None]:
    """The first and last ``created_at`` in the log (UTC), or (None, None) when it is empty."""
    created = predictions.c.created_at
    query = _window_filter(sa.select(sa.func.min(created), sa.func.max(created)), None, None, model_version)
    with engine.connect() as connection:
        first, last = connection.execute(query).one()
    return (as_utc(first) if first else None, as_utc(last) if last else None)


def count_predictions(
    engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None
) -> int:
    """How many predictions were logged in ``[start, end)`` (of one version, when given)."""
    query = _window_filter(sa.select(sa.func.count()).select_from(predictions), start, end, model_version)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


LOG_FIELDS = {name: f"__{name}__" for name in ("id", "created_at", "prediction", "score")}
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

    Drawn from the window's ids sorted here (a database may sort text by locale), so a seed gives
    the same sample on SQLite and PostgreSQL; then only the drawn rows are read.

    Returns:
        (frame, n_rows): one column per input feature plus ``__id__``, ``__created_at__``,
        ``__prediction__`` and ``__score__``, in id order; ``n_rows`` is the window's row count.
    """
    window = _window_filter(sa.select(predictions.c.id), start, end, model_version)
    with engine.connect() as connection:
        ids = sorted(connection.execute(window).scalars())
        n_rows = len(ids)
        if n_rows > size:
            drawn = np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))
            ids = [ids[position] for position in drawn.tolist()]
        rows: list[sa.Row] = []
        for chunk in _id_chunks(ids):
            rows += connection.execute(_log_query().where(predictions.c.id.in_(chunk))).all()
    log, features = _log_frame(sorted(rows, key=lambda row: row.id))
    return features.join(log[list(LOG_FIELDS)].rename(columns=LOG_FIELDS)), n_rows


def read_outcomes(
    engine: Engine, start: datetime | None, end: datetime | None, model_version: str | None = None
) -> pd.DataFrame:
    """The outcomes that arrived in ``[start, end)``, whenever their predictions were made, in arrival
    order: ``prediction``, ``score``, ``actual``.

    By arrival, not by prediction time: a label known a month after the loan counts in the window
    it arrives in (so a window is judged on what was known by its end, and a backfill sees what a
    live run would have seen).
    """
    query = sa.select(predictions.c.prediction, predictions.c.score, feedback.c.actual).select_from(
        feedback.join(predictions, feedback.c.prediction_id == predictions.c.id)
    )
    query = in_range(query, feedback.c.created_at, start, end)
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    query = query.order_by(feedback.c.created_at, predictions.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    outcomes = pd.DataFrame(rows, columns=["prediction", "score", "actual"])
    outcomes["score"] = outcomes["score"].astype(float)
    return outcomes


def read_labelled_inputs(engine: Engine, since: datetime | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The raw inputs of every logged prediction with a true outcome, logged at or after ``since``
    (any model version), oldest first, and their outcomes, aligned (what a shadow comparison scores)."""
    query = sa.select(sa.cast(predictions.c.features, sa.Text).label("features"), feedback.c.actual)
    query = query.select_from(feedback.join(predictions, feedback.c.prediction_id == predictions.c.id))
    query = in_range(query, predictions.c.created_at, since, None)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(predictions.c.created_at, predictions.c.id)).all()
    labelled = pd.DataFrame(rows, columns=["features", "actual"])
    return _parsed(labelled["features"]), labelled["actual"].astype(object)


# ----------------------------------------------------------------------------- engine and tables
def open_store(
    url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, statement_timeout: float | None = None
) -> Engine:
    """An engine on the prediction store at ``url``, its tables created (or migrated) if needed
    (timeouts: `db_engine.create_db_engine`)."""
    settings.check_sqlite_writable(url)
    engine = create_db_engine(url, timeout, statement_timeout)
    init_db(engine)
    return engine


def recreating_tables(engine: Engine, work: Callable[[], T]) -> T:
    """``work()``, run once more after `init_db` when it fails because the tables are gone (the
    database was dropped and recreated while the service ran)."""
    try:
        return work()
    except sa.exc.DBAPIError as exc:
        if not is_missing_table(exc):
            raise
        logger.warning("the store's tables are missing; creating them again")
        init_db(engine)
        return work()


SCHEMA_LOCK_KEY = 1_404_202_614
"""Key of the PostgreSQL advisory lock `init_db` holds (any constant number)."""

# The template's earlier log layouts, in copy order: predictions + feedback (one row per prediction,
# no lower/upper), then prediction_batches + prediction_feedback (one row per batch, JSON payload).
LEGACY_TABLES = ("predictions", "feedback", "prediction_batches", "prediction_feedback")


def init_db(engine: Engine) -> None:
    """Create the tables that do not exist yet, first moving a store of an earlier layout into them.

    Runs in one transaction, one process at a time (SQLite's write lock, a PostgreSQL advisory
    lock), so uvicorn workers starting together on one store neither race to create the tables
    nor migrate twice. Old rows keep their ids; the old tables are renamed ``<name>_legacy``, not
    dropped (drop them once the new ones look right).
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: take the write lock before looking
        legacy = _rename_legacy_tables(connection)
        metadata.create_all(connection)
        _upgrade_history(connection)
        for name in legacy:
            copied = _LEGACY_COPIES[name](connection)
            logger.warning("moved %d rows of %s into the new log; kept as %s_legacy", copied, name, name)
        connection.commit()


def _upgrade_history(connection: sa.Connection) -> None:
    """Widen the status columns of a store made when they held 16 characters (PostgreSQL enforces
    it), and respell the old ``insufficient`` status ``insufficient_data``."""
    if connection.dialect.name == "postgresql":
        for table in (monitoring_runs, drift_results):
            [status] = [c for c in sa.inspect(connection).get_columns(table.name) if c["name"] == "status"]
            if (status["type"].length or STATUS_LENGTH) < STATUS_LENGTH:
                connection.execute(
                    sa.text(f"ALTER TABLE {table.name} ALTER COLUMN status TYPE VARCHAR({STATUS_LENGTH})")
                )
    old = monitoring_runs.c.status == "insufficient"
    connection.execute(monitoring_runs.update().where(old).values(status="insufficient_data"))


def _rename_legacy_tables(connection: sa.Connection) -> list[str]:
    """Rename each `LEGACY_TABLES` table without our columns to ``<name>_legacy``; their names."""
    inspector = sa.inspect(connection)
    ours = {table.name: set(table.columns.keys()) for table in metadata.tables.values()}
    legacy = [
        name
        for name in LEGACY_TABLES
        if inspector.has_table(name) and {c["name"] for c in inspector.get_columns(name)} != ours.get(name)
    ]
    for name in legacy:
        connection.exec_driver_sql(f"ALTER TABLE {name} RENAME TO {name}_legacy")
    return legacy


def _copy_feedback(connection: sa.Connection, name: str) -> int:
    """Copy the outcomes of a legacy feedback table (both layouts had these three columns)."""
    columns = ["prediction_id", "actual", "created_at"]
    old = sa.table(f"{name}_legacy", *map(sa.column, columns))
    return connection.execute(feedback.insert().from_select(columns, sa.select(*old.c))).rowcount


def _copy_first_layout(connection: sa.Connection) -> int:
    """Copy ``predictions_legacy``, one row per prediction already, in one INSERT ... SELECT."""
    columns = [*LOG_COLUMNS, "prediction", "score", "threshold", "probabilities", "features"]
    old = sa.table("predictions_legacy", *map(sa.column, columns))
    values = [old.c[name] for name in columns]
    values[-2] = sa.case((old.c.threshold.is_(None), old.c.probabilities))  # as `class_probabilities`
    return connection.execute(predictions.insert().from_select(columns, sa.select(*values))).rowcount


def _copy_batches(connection: sa.Connection) -> int:
    """Expand each ``prediction_batches_legacy`` row (``payload``: request-id runs, features and
    outputs as ``{"columns", "data"}`` tables) into ``predictions`` rows ``<batch id>-<row>``."""
    columns = [
        sa.column("created_at", sa.DateTime(timezone=True)),
        *map(sa.column, ["id", "model_version", "payload"]),
    ]
    batches = sa.table("prediction_batches_legacy", *columns)
    copied = 0
    for batch_id in connection.execute(sa.select(batches.c.id).order_by(batches.c.id)).scalars().all():
        query = sa.select(batches.c.created_at, batches.c.model_version, batches.c.payload)
        created_at, version, payload = connection.execute(query.where(batches.c.id == batch_id)).one()
        document = json.loads(payload)
        features = pd.DataFrame(document["features"]["data"], columns=document["features"]["columns"])
        outputs = pd.DataFrame(document["outputs"]["data"], columns=document["outputs"]["columns"])
        outputs.insert(0, "id", [f"{batch_id}-{row}" for row in range(len(outputs))])
        requests = [request for request, count in document["requests"] for _ in range(count)]
        _insert(connection, _log_rows(features, outputs, version, requests, created_at))
        copied += len(outputs)
    return copied


_LEGACY_COPIES = {  # how `init_db` copies each renamed `LEGACY_TABLES` table into the new ones
    "predictions": _copy_first_layout,
    "feedback": lambda connection: _copy_feedback(connection, "feedback"),
    "prediction_batches": _copy_batches,
    "prediction_feedback": lambda connection: _copy_feedback(connection, "prediction_feedback"),
}
