"""What protects the prediction API: keys, the body-size limit and store failures as 503.

Two keys, each compared in constant time: ``API_KEY`` for predictions, feedback and model
metadata (optional: none set, those are open) and ``ADMIN_API_KEY`` for admin actions (required:
none set, admin endpoints are refused). Both are checked from the headers alone, before any
body is read. A database that is down, locked or slow answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import secrets

import sqlalchemy as sa
from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
STORE_UNAVAILABLE = (
    "the prediction store is unavailable (down, locked or slow); nothing was stored, retry later"
)


def check_key(given: str | None, expected: str | None) -> None:
    """401 unless ``given`` is ``expected`` (nothing to check when no key is expected)."""
    if expected and not (given and secrets.compare_digest(given.encode(), expected.encode())):
        raise HTTPException(401, detail="missing or wrong X-API-Key header")


def check_admin_key(given: str | None, expected: str | None) -> None:
    """403 when no admin key is configured, 401 for a missing or wrong one."""
    if not expected:
        raise HTTPException(403, detail="admin endpoints are disabled: set ADMIN_API_KEY to enable them")
    check_key(given, expected)


def store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The answer to a database error: 503 with a clear body and ``Retry-After``."""
    logger.warning("prediction store error: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return JSONResponse(
        {"detail": STORE_UNAVAILABLE},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


STORE_ERRORS = (sa.exc.DBAPIError, sa.exc.TimeoutError)
"""Exceptions answered by `store_unavailable` (driver errors, an exhausted connection pool)."""


class BodySizeLimit:
    """Reject request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over the limit of {self.max_bytes} bytes; use the score CLI for big files"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = Response(
                json.dumps({"detail": message}), status_code=413, media_type="application/json"
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            incoming = await receive()
            received += len(incoming.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, detail=message)
            return incoming

        await self.app(scope, limited_receive, send)
