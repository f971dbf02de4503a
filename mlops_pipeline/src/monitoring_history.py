"""The monitoring history in the store: one row per monitored window, one per feature and test.

The tables are defined with the others in `store` (so `store.init_db` makes them all); this module
writes and reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import registry
from store import as_utc, drift_results, in_range, monitoring_runs

# ----------------------------------------------------------------------------- monitoring history
RUN_COLUMNS = "id created_at window_start window_end model_version n_rows n_sampled status summary".split()


HISTORY_COLUMNS = ["run_id", "window_start", "window_end", "model_version"]
HISTORY_COLUMNS += "feature method statistic p_value drifted status detail".split()  # drift_results'


_DRIFT_TYPES = dict(feature=str, method=str, statistic=float, p_value=float, drifted=bool, status=str)


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
        "created_at": as_utc(run.get("created_at") or datetime.now(UTC)),
        "window_start": as_utc(run["window_start"]),
        "window_end": as_utc(run["window_end"]),
        "model_version": str(run["model_version"]),
        "n_rows": int(run["n_rows"]),
        "n_sampled": int(run["n_sampled"]),
        "status": str(run["status"]),
        "summary": registry.json_safe(run["summary"]),
    }
    same_window = sa.and_(
        monitoring_runs.c.model_version == record["model_version"],
        monitoring_runs.c.window_start == record["window_start"],
        monitoring_runs.c.window_end == record["window_end"],
    )
    drift = results.reindex(columns=HISTORY_COLUMNS[4:]).astype(_DRIFT_TYPES).replace({"detail": {"": None}})
    drift = drift.astype(object).where(drift.notna(), None)  # NaN as NULL
    with engine.begin() as connection:
        old = connection.execute(sa.select(monitoring_runs.c.id).where(same_window)).scalars().all()
        if old:
            connection.execute(drift_results.delete().where(drift_results.c.run_id.in_(old)))
            connection.execute(monitoring_runs.delete().where(monitoring_runs.c.id.in_(old)))
        run_id = connection.execute(monitoring_runs.insert().values(**record)).inserted_primary_key[0]
        if len(drift):
            connection.execute(drift_results.insert(), drift.assign(run_id=run_id).to_dict("records"))
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
    query = in_range(query, monitoring_runs.c.window_start, start, end)
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
            *[monitoring_runs.c[name] for name in HISTORY_COLUMNS[1:4]],
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
    query = in_range(query, monitoring_runs.c.window_start, start, end)
    with engine.connect() as connection:
        history = pd.DataFrame(connection.execute(query).all(), columns=HISTORY_COLUMNS)
    for column in ("window_start", "window_end"):
        history[column] = pd.to_datetime(history[column], utc=True)
    history[["statistic", "p_value"]] = history[["statistic", "p_value"]].astype(float)
    return history
