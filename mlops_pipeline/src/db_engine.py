"""Engines on the prediction store's database, with timeouts, and the errors they raise.

SQLite waits for a lock at most ``timeout`` seconds (``busy_timeout``); PostgreSQL gets a connect
timeout and, for serving, a statement and lock timeout, so a stalled database becomes an error
(answered 503 by the API) instead of a request that hangs.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DEFAULT_TIMEOUT_SECONDS = 30.0
PG_UNDEFINED_TABLE = "42P01"


def _sqlite_pragmas(busy_timeout_ms: int):
    """A connect hook: WAL mode, ``synchronous=NORMAL``, the busy timeout, foreign keys."""

    def on_connect(dbapi_connection, _record, attempts: int = 50) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def create_db_engine(
    url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, statement_timeout: float | None = None
) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and WAL mode.

    Args:
        url: a SQLAlchemy URL (SQLite or PostgreSQL).
        timeout: seconds to wait for a connection (PostgreSQL) or a lock (SQLite).
        statement_timeout: PostgreSQL only: seconds a statement (or a lock wait) may take.
    """
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": timeout})
        sa.event.listen(engine, "connect", _sqlite_pragmas(int(timeout * 1000)))
        return engine
    connect_args: dict[str, object] = {"connect_timeout": max(1, round(timeout))}
    if statement_timeout:  # added to the URL's own ``options`` (e.g. a search_path), not replacing them
        ms = int(statement_timeout * 1000)
        given = sa.engine.make_url(url).query.get("options", "")
        given = " ".join(given) if isinstance(given, tuple) else given
        connect_args["options"] = f"{given} -c statement_timeout={ms} -c lock_timeout={ms}".strip()
    return sa.create_engine(url, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect_args)


def is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    """Whether a database error says a table does not exist (the database was recreated)."""
    original = exc.orig
    if getattr(original, "sqlstate", None) == PG_UNDEFINED_TABLE:
        return True
    return isinstance(original, sqlite3.OperationalError) and "no such table" in str(original)


def ping(engine: Engine) -> None:
    """Run ``SELECT 1``; raises the driver's error when the database does not answer."""
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
