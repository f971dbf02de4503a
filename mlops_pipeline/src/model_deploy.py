"""Serving: a FastAPI app over the trained models, and a batch scorer for files too big for HTTP.

The request schema is built from the model's saved feature schema, so ``/docs`` shows the real
fields. Every prediction is committed to the prediction log (`store`) before the response goes
out: a 2xx means it is stored.

CLI::

    python mlops_pipeline/src/model_deploy.py serve [--host 0.0.0.0] [--port 8000] [--workers 2]
    python mlops_pipeline/src/model_deploy.py score --input in.csv --output out.csv [--log]

or, with uvicorn directly: ``uvicorn model_deploy:app --app-dir mlops_pipeline/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import math
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)

import ft_engineering
import registry
import scoring
import store
from settings import ConfigError, ServingConfig, Settings, get_settings

logger = logging.getLogger(__name__)

SRC_DIR = Path(__file__).resolve().parent
NO_MODEL_MESSAGE = (
    "No hay modelo entrenado en {models_dir}: ejecute primero el entrenamiento "
    "(python mlops_pipeline/src/model_training_evaluation.py)."
)
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
MAX_REPORTED_ERRORS = 20
INLINE_BYTES = 16 * 1024
INLINE_ROWS = 50
CHAMPION_CHECK_SECONDS = 0.5
BATCH_WINDOW_SECONDS = 0.002
CHECKPOINT_ROWS = 20_000  # about 3 MB of WAL in big batches; SQLite's own checkpoint waits for 4 MB
CHECKPOINT_SECONDS = 1.0  # many small commits write whole pages each: bound the WAL by time too


# ----------------------------------------------------------------------------- scoring


# ----------------------------------------------------------------------------- input validation
def _error(row: int | None, column: str | None, message: str, kind: str) -> dict:
    return {"row": row, "column": column, "msg": message, "type": kind}


def reject(status: int, errors: list[dict] | str, total: int | None = None) -> HTTPException:
    """An HTTP error whose body names rows and columns (``row`` is 1-based: the record's position)."""
    if isinstance(errors, str):
        return HTTPException(status, detail=errors)
    detail: dict[str, Any] = {"errors": errors[:MAX_REPORTED_ERRORS], "error_count": total or len(errors)}
    return HTTPException(status, detail=detail)


def _missing_to_none(tokens: frozenset[str]):
    """Map missing-value tokens (and NaN) to None before numeric validation."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in tokens:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    return convert


def _category_text(value: Any) -> Any:
    """JSON numbers and booleans spelled as training spelled categories (1.0 -> "1", true -> "True")."""
    if isinstance(value, (bool, int, float)):
        text = ft_engineering.as_category_text(value)
        return text if isinstance(text, str) else None
    return value


def _feature_field(feature: dict, tokens: frozenset[str]) -> tuple[Any, Any]:
    """The pydantic type and Field of one feature, documented from its saved schema."""
    example = feature.example
    if feature.kind == "numeric":
        bounds = f" Training range: {feature.min} to {feature.max}." if feature.min is not None else ""
        annotation = Annotated[float | None, BeforeValidator(_missing_to_none(tokens))]
        description = f"Numeric ({feature.dtype}); null means missing.{bounds}"
        return annotation, Field(
            alias=feature.name, description=description, examples=[example], allow_inf_nan=False
        )
    categories = feature.categories or []
    kind = "Ordinal (lowest to highest)" if feature.kind == "ordinal" else "Categorical"
    description = (
        f"{kind}; seen in training: {categories}. Other values are accepted and treated as unseen; "
        "null means missing."
    )
    annotation = Annotated[str | None, BeforeValidator(_category_text)]
    return annotation, Field(alias=feature.name, description=description, examples=[example])


def record_model(metadata: registry.ModelMetadata) -> type[BaseModel]:
    """A pydantic model of one input record, built from ``metadata.features``.

    Every feature is required (so a misspelt column is caught) and nullable (missing values are
    imputed by the pipeline); unknown fields are rejected.
    """
    tokens = frozenset(t.strip().lower() for t in scoring.missing_tokens(metadata)) | {""}
    fields = {f"f{i}": _feature_field(feature, tokens) for i, feature in enumerate(metadata.features)}
    example = {feature.name: feature.example for feature in metadata.features}
    config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        title="Record",
        json_schema_extra={"examples": [example]},
    )
    return create_model("Record", __config__=config, **fields)


@dataclass
class InputSchema:
    """Validators for one model version's input (single records, lists, CSV tables), built once
    per version (every request reads them)."""

    metadata: registry.ModelMetadata
    record: type[BaseModel] = field(init=False)
    records: TypeAdapter = field(init=False)
    names: list[str] = field(init=False)
    numeric: list[str] = field(init=False)
    na_values: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.record = record_model(self.metadata)
        self.records = TypeAdapter(list[self.record])
        self.names = [feature.name for feature in self.metadata.features]
        self.numeric = [f.name for f in self.metadata.features if f.kind == "numeric"]
        self.na_values = scoring.missing_tokens(self.metadata)

    def example_csv(self) -> str:
        example = pd.DataFrame([self.record.model_json_schema()["examples"][0]])
        return example.to_csv(index=False)


def _pydantic_errors(error: ValidationError) -> list[dict]:
    errors = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        row = loc.pop(0) + 1 if loc and isinstance(loc[0], int) else None
        column = str(loc[0]) if loc else None
        value = item.get("input")
        shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
        errors.append(_error(row, column, f"{item['msg']}{shown}", item["type"]))
    return errors


def frame_from_json(body: bytes, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """Validate a JSON record or list of records; raise a 4xx naming row and column."""
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise reject(422, [_error(None, None, f"malformed JSON: {exc}", "json_invalid")]) from exc
    single = isinstance(payload, dict)
    if not single and not isinstance(payload, list):
        raise reject(
            422,
            [_error(None, None, "the JSON body must be a record (object) or a list of records", "json_type")],
        )
    if not single and not payload:
        raise reject(422, [_error(None, None, "the list of records is empty", "empty")])
    if not single and len(payload) > max_rows:
        raise reject(
            413, f"{len(payload)} records exceed the limit of {max_rows} per request; use the score CLI"
        )
    try:
        records = schema.records.validate_python([payload] if single else payload)
    except ValidationError as exc:
        raise reject(422, _pydantic_errors(exc), exc.error_count()) from exc
    return pd.DataFrame(schema.records.dump_python(records), columns=schema.names)


def check_columns(columns: list[str], schema: InputSchema) -> None:
    """Reject unknown and missing columns by name."""
    unknown = [c for c in columns if c not in schema.names]
    missing = [c for c in schema.names if c not in columns]
    errors = [_error(None, c, f"unknown column; expected {schema.names}", "unknown_column") for c in unknown]
    errors += [
        _error(None, c, "missing required column (send it empty for missing values)", "missing_column")
        for c in missing
    ]
    if errors:
        raise reject(422, errors)


def check_numeric(frame: pd.DataFrame, schema: InputSchema) -> pd.DataFrame:
    """Vectorised type check: numeric columns must hold numbers (or missing); returns them as floats."""
    out = frame.copy()
    errors = []
    for column in schema.numeric:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):  # the parser read numbers: only infinities are wrong
            parsed = values.astype(float)
            bad = np.isinf(parsed)
        else:
            parsed = pd.to_numeric(values, errors="coerce").astype(float)
            bad = (values.notna() & parsed.isna()) | np.isinf(parsed)
        for position in np.flatnonzero(bad.to_numpy()):
            errors.append(
                _error(
                    int(position) + 1,
                    column,
                    f"not a finite number (got {values.iloc[position]!r})",
                    "float_parsing",
                )
            )
        out[column] = parsed
    if errors:
        errors.sort(key=lambda e: (e["row"], schema.names.index(e["column"])))
        raise reject(422, errors)
    return out


def read_table(text: str, na_values: list[str], max_rows: int | None = None, **kwargs) -> pd.DataFrame:
    """Parse CSV text (comma or semicolon, BOM or not) through `ft_engineering.read_csv`."""
    frame = ft_engineering.read_csv(io.StringIO(text), na_values=na_values, nrows=max_rows, **kwargs)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def frame_from_csv(body: bytes, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """Validate a CSV upload; raise a 4xx naming row and column."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reject(422, [_error(None, None, f"the CSV must be UTF-8 text: {exc}", "encoding")]) from exc
    if not text.strip():
        raise reject(422, [_error(None, None, "the CSV is empty", "empty")])
    try:
        frame = read_table(text, schema.na_values, max_rows + 1)
    except ValueError as exc:
        raise reject(422, [_error(None, None, str(exc), "csv_invalid")]) from exc
    if len(frame) > max_rows:
        raise reject(413, f"the CSV has more than {max_rows} rows, the limit per request; use the score CLI")
    if frame.empty:
        raise reject(422, [_error(None, None, "the CSV has a header but no rows", "empty")])
    check_columns(list(frame.columns), schema)
    return check_numeric(frame, schema)


# ----------------------------------------------------------------------------- state and dependencies
@dataclass
class ServingState:
    """What the app loads once: settings, the store engine, the model versions and their schemas."""

    settings: Settings
    engine: sa.Engine
    models: dict[str, registry.LoadedModel] = field(default_factory=dict)
    schemas: dict[str, InputSchema] = field(default_factory=dict)
    batcher: MicroBatcher = field(init=False)
    models_dir: Path = field(init=False)
    serving: ServingConfig = field(init=False)
    api_key: str | None = field(init=False)
    _champion: tuple[int, str] | None = field(default=None, init=False, repr=False)
    _checked_at: float = field(default=-math.inf, init=False, repr=False)
    _request_ids: Iterator[str] = field(init=False, repr=False)
    _checkpointer: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _checkpoint: Future | None = field(default=None, init=False, repr=False)
    _unchecked_rows: int = field(default=0, init=False, repr=False)
    _checkpointed_at: float = field(default_factory=time.monotonic, init=False, repr=False)
    _checkpoint_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        # resolved once: paths and the config are read per request otherwise
        self.models_dir = self.settings.models_dir
        self.serving = self.settings.config.serving
        self.api_key = self.settings.effective_api_key
        prefix = secrets.token_hex(10)  # per process; a counter after it keeps ids unique without a syscall
        self._request_ids = (f"{prefix}{n:012x}" for n in itertools.count())
        # SQLite: copying the WAL into the database file (a few ms per 10,000 logged rows) is done by
        # a background thread after the commit, instead of inside the commit a request waits for
        if store.defer_wal_checkpoints(self.engine):
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")

    def checkpoint_soon(self, rows: int) -> None:
        """Count ``rows`` just committed and queue a WAL checkpoint (SQLite only; at most one queued)
        after `CHECKPOINT_ROWS` rows or `CHECKPOINT_SECONDS`. Called from the event loop and from
        worker threads, hence the lock."""
        if self._checkpointer is None:
            return
        with self._checkpoint_lock:
            self._unchecked_rows += rows
            due = (
                self._unchecked_rows >= CHECKPOINT_ROWS
                or time.monotonic() - self._checkpointed_at >= CHECKPOINT_SECONDS
            )
            if due and (self._checkpoint is None or self._checkpoint.done()):
                self._unchecked_rows, self._checkpointed_at = 0, time.monotonic()
                self._checkpoint = self._checkpointer.submit(self._checkpoint_wal)

    def _checkpoint_wal(self) -> None:
        try:
            store.checkpoint_wal(self.engine)
        except sa.exc.DBAPIError:
            logger.warning("WAL checkpoint failed; the next commit retries it", exc_info=True)

    def close(self) -> None:
        """Finish the queued checkpoint and close the store's connections."""
        if self._checkpointer is not None:
            self._checkpointer.shutdown()
        self.engine.dispose()

    def new_request_id(self) -> str:
        return next(self._request_ids)

    def default_version(self) -> str:
        """The pinned `MODEL_VERSION`, else the champion, re-read when ``registry.json`` changes
        (so a new default set by any worker reaches every worker)."""
        if self.settings.model_version:
            return self.settings.model_version
        now = time.monotonic()
        if self._champion is not None and now - self._checked_at < CHAMPION_CHECK_SECONDS:
            return self._champion[1]
        self._checked_at = now
        try:
            stamp = (self.models_dir / registry.REGISTRY_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if self._champion is None or self._champion[0] != stamp:
            self._champion = (stamp, registry.resolve_version(self.models_dir))
        return self._champion[1]

    def forget_default(self) -> None:
        """Re-read the champion on the next request (after this worker changed it)."""
        self._champion = None

    def model(self, version: str | None = None) -> registry.LoadedModel:
        """A loaded version (default: the default one); checked against the registry and loaded
        once, then kept."""
        version = version or self.default_version()
        if version not in self.models:
            self.models[version] = registry.load_model(self.models_dir, version)  # raises for an unknown one
        return self.models[version]

    def schema(self, model: registry.LoadedModel) -> InputSchema:
        if model.version not in self.schemas:
            self.schemas[model.version] = InputSchema(model.metadata)
        return self.schemas[model.version]


async def get_state(request: Request) -> ServingState:
    """The app's loaded state (trivial dependencies are async: no thread hop per request)."""
    return request.app.state.serving


State = Annotated[ServingState, Depends(get_state)]


async def get_model(
    state: State,
    model: Annotated[
        str | None, Query(description="Model version to use (see GET /models); default: the default model.")
    ] = None,
) -> registry.LoadedModel:
    """The requested version, by name only (never a path); 404 for an unknown one. A version used
    for the first time is loaded in the thread pool."""
    try:
        version = model or state.default_version()
        if version in state.models:
            return state.models[version]
        return await run_in_threadpool(state.model, version)
    except registry.ModelNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


Model = Annotated[registry.LoadedModel, Depends(get_model)]
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when API_KEY is set.")


async def require_api_key(state: State, key: Annotated[str | None, Security(api_key_header)]) -> None:
    """Check ``X-API-Key`` when an API key is configured."""
    expected = state.api_key
    if expected and not (key and secrets.compare_digest(key.encode(), expected.encode())):
        raise HTTPException(401, detail="missing or wrong X-API-Key header")


Protected = [Depends(require_api_key)]


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


# ----------------------------------------------------------------------------- response models (docs)
class PredictionOut(BaseModel):
    """One prediction as returned (and logged)."""

    id: str = Field(description="Prediction id; send it back to POST /feedback with the true outcome.")
    model_version: str
    prediction: str | float = Field(
        description="Predicted class label (classification) or value (regression)."
    )
    score: float = Field(
        description="Binary: probability of the positive class; multiclass: of the predicted class; regression: the value."
    )
    probabilities: dict[str, float] | None = Field(
        description="Multiclass: probability of every class (binary: `score` is the probability of `positive_class`)."
    )
    threshold: float | None = Field(
        description="Binary: positive-class probability at or above which it is predicted."
    )
    lower: float | None = Field(
        default=None,
        description="Regression: lower end of the prediction interval (level in GET /model/info).",
    )
    upper: float | None = Field(default=None, description="Regression: upper end of the prediction interval.")


class PredictResponse(BaseModel):
    request_id: str
    model_version: str
    count: int
    positive_class: str | None = Field(description="Binary: the class whose probability each `score` is.")
    predictions: list[PredictionOut]


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1, max_length=36)
    actual: Annotated[str | float | int | bool, AfterValidator(_category_text)] = Field(
        description='The true outcome (class label or value); numbers and booleans are stored as training spelled labels (1.0 -> "1").'
    )


class DefaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=120)


# ----------------------------------------------------------------------------- routers
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable request body"},
    401: {"description": "Missing or wrong X-API-Key (only when API_KEY is set)"},
    404: {"description": "Unknown model version or prediction id"},
}
health_router = APIRouter(tags=["health"])
models_router = APIRouter(tags=["models"], dependencies=Protected, responses=ERROR_RESPONSES)
feedback_router = APIRouter(tags=["feedback"], dependencies=Protected, responses=ERROR_RESPONSES)


@health_router.get("/health")
def health(state: State) -> dict:
    """Liveness and readiness: the default model is loaded."""
    model = state.model()
    return {"status": "ok", "model_loaded": True, "model_version": model.version}


def model_summary(metadata: registry.ModelMetadata, champion: str | None, default: str) -> dict:
    return {
        "version": metadata.version,
        "model_name": metadata.model_name,
        "created_at": metadata.created_at,
        "task": metadata.task,
        "metrics": metadata.metrics,
        "champion": metadata.version == champion,
        "default": metadata.version == default,
    }


@models_router.get("/model/info")
def model_info(model: Model) -> dict:
    """Version, metrics, feature schema, threshold and training date of a model (default: the default one)."""
    keys = (
        "version",
        "model_name",
        "created_at",
        "task",
        "target",
        "classes",
        "positive_class",
        "threshold",
        "interval",
        "metrics",
        "features",
        "selection",
    )
    return model.metadata.model_dump(mode="json", include=set(keys))


@models_router.get("/models")
def list_models(state: State) -> list[dict]:
    """Every saved version with its metrics, marking the champion and the default."""
    champion, default = registry.champion_version(state.models_dir), state.default_version()
    return [
        model_summary(registry.load_metadata(state.models_dir, v), champion, default)
        for v in registry.list_versions(state.models_dir)
    ]


@models_router.put("/models/default", responses={409: {"description": "MODEL_VERSION pins the default"}})
def set_default_model(state: State, body: DefaultModel) -> dict:
    """Make a saved version the default for every worker (it becomes the champion)."""
    if state.settings.model_version:
        raise HTTPException(
            409, detail="MODEL_VERSION pins the default model; unset it to change the default at run time"
        )
    try:
        registry.set_champion(state.models_dir, body.version)
    except registry.ModelNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    state.forget_default()
    return {"default": state.model().version}


async def run_off_loop(big: bool, function, *args):
    """Big work in the thread pool, off the event loop; small work inline (a thread hop costs more)."""
    return await run_in_threadpool(function, *args) if big else function(*args)


async def read_input(request: Request, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """The request's records as a validated frame, whatever the content type."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise reject(
                422, [_error(None, "file", "the form needs a CSV file in the field 'file'", "missing_file")]
            )
        return await run_in_threadpool(frame_from_csv, await upload.read(), schema, max_rows)
    body = await request.body()
    if not body.strip():
        raise reject(422, [_error(None, None, "the request body is empty", "empty")])
    small = len(body) <= INLINE_BYTES
    if content_type in CSV_TYPES:
        return await run_off_loop(not small, frame_from_csv, body, schema, max_rows)
    if content_type == "application/json" or content_type.endswith("+json"):
        return await run_off_loop(not small, frame_from_json, body, schema, max_rows)
    raise HTTPException(
        415,
        detail=f"unsupported content type '{content_type}': send application/json, text/csv or a multipart file",
    )


def stack_records(frames: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Several small requests' rows as one frame, types inferred over all of them (a column that
    is empty in one request does not decide its type)."""
    values = np.concatenate([frame.reindex(columns=names).to_numpy(dtype=object) for frame in frames])
    return pd.DataFrame(values, columns=names).infer_objects()


def score_and_log(
    state: ServingState, model: registry.LoadedModel, frames: list[pd.DataFrame], request_ids: list[str]
) -> list[pd.DataFrame]:
    """Predict the rows of one or more requests in one call and commit them to the log in one
    transaction; returns each request's outputs (with prediction ids)."""
    lengths = [len(frame) for frame in frames]
    frame = frames[0] if len(frames) == 1 else stack_records(frames, model.feature_names)
    try:
        outputs = scoring.batch_outputs(model, frame).reset_index(drop=True)
    except (ValueError, TypeError, FloatingPointError) as exc:
        raise reject(
            422, [_error(None, None, f"the model could not score the input: {exc}", "model_input")]
        ) from exc
    if state.serving.log_predictions:
        store.log_predictions(
            state.engine,
            frame,
            outputs,
            model_version=model.version,
            request_id=np.repeat(request_ids, lengths).tolist(),
        )
        state.checkpoint_soon(len(frame))
    bounds = np.cumsum([0, *lengths])
    return [outputs.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class _Pending:
    model: registry.LoadedModel
    frame: pd.DataFrame
    request_id: str
    future: asyncio.Future


class MicroBatcher:
    """Score concurrent small requests together: one predict call and one log transaction per batch.

    The first request is scored at once; requests that arrive meanwhile form the next batch. So an
    idle service adds no delay, and under load the pipeline's per-call overhead is paid per batch,
    not per request (what keeps single-record latency low with many clients).
    """

    def __init__(self, state: ServingState, max_rows: int = 1000):
        self.state = state
        self.max_rows = max_rows
        self.pending: list[_Pending] = []
        self.worker: asyncio.Task | None = None

    async def score(self, model: registry.LoadedModel, frame: pd.DataFrame, request_id: str) -> pd.DataFrame:
        """The outputs for one request's rows (batched with others when they are small)."""
        if len(frame) >= self.max_rows:
            return (await run_in_threadpool(score_and_log, self.state, model, [frame], [request_id]))[0]
        future = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(model, frame, request_id, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.pending:
            await asyncio.sleep(BATCH_WINDOW_SECONDS)  # let requests arriving right now join this batch
            batch, rows = [], 0
            while self.pending and rows < self.max_rows:
                batch.append(self.pending.pop(0))
                rows += len(batch[-1].frame)
            by_version: dict[str, list[_Pending]] = {}
            for item in batch:
                by_version.setdefault(item.model.version, []).append(item)
            for group in by_version.values():
                # a small batch costs a few ms of CPU: scored on the event loop, it avoids handing
                # the GIL back and forth with a worker thread, which is what made latency spiky
                big = sum(len(item.frame) for item in group) > INLINE_ROWS
                results = await run_off_loop(big, self._score_group, group)
                for item, result in zip(group, results):
                    if item.future.done():
                        continue
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result)

    def _score_group(self, group: list[_Pending]) -> list[pd.DataFrame | BaseException]:
        """Score a group together; if that fails, each request alone, so one bad request fails alone."""
        try:
            return score_and_log(
                self.state, group[0].model, [p.frame for p in group], [p.request_id for p in group]
            )
        except Exception as exc:
            if len(group) == 1:
                return [exc]
        results: list[pd.DataFrame | BaseException] = []
        for item in group:
            try:
                results.append(score_and_log(self.state, item.model, [item.frame], [item.request_id])[0])
            except Exception as exc:
                results.append(exc)
        return results


def render(
    outputs: pd.DataFrame, frame: pd.DataFrame, request_id: str, model: registry.LoadedModel, as_csv: bool
) -> Response:
    """JSON by default (serialised by pandas), or the input columns plus prediction columns as CSV.

    In JSON, a thresholded binary prediction carries no per-class ``probabilities``: its ``score``
    is the probability of ``positive_class`` (given once, at the top), and building a dict per row
    cost as much as running the model.
    """
    headers = {"X-Request-ID": request_id}
    if as_csv:
        table = frame.reset_index(drop=True).join(outputs)
        return Response(table.to_csv(index=False), media_type="text/csv", headers=headers)
    thresholded = bool(outputs["threshold"].notna().all())
    head = {"request_id": request_id, "model_version": model.version, "count": len(outputs)}
    head["positive_class"] = model.metadata.positive_class if thresholded else None
    probability_columns = [c for c in outputs.columns if c.startswith(scoring.PROBABILITY_PREFIX)]
    predictions = outputs.drop(columns=probability_columns)
    classes = [c[len(scoring.PROBABILITY_PREFIX) :] for c in probability_columns]
    per_class = classes and not thresholded
    predictions["probabilities"] = (
        [dict(zip(classes, row)) for row in outputs[probability_columns].to_numpy().tolist()]
        if per_class
        else None
    )
    body = f'{json.dumps(head)[:-1]}, "predictions": {predictions.to_json(orient="records")}}}'  # one C pass over every row
    return Response(body, media_type="application/json", headers=headers)


def _predict_openapi(schema: InputSchema, max_rows: int) -> dict:
    record = schema.record.model_json_schema()
    example = record["examples"][0]
    return {
        "requestBody": {
            "required": True,
            "description": (
                f"One record, a list of up to {max_rows} records, a CSV body or a CSV file in the multipart "
                "field 'file'. CSVs may be comma or semicolon separated (decimal comma), with or without a BOM."
            ),
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            record,
                            {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows},
                        ]
                    },
                    "example": example,
                },
                "text/csv": {"schema": {"type": "string"}, "example": schema.example_csv()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    }


def add_predict_route(router: APIRouter, schema: InputSchema, max_rows: int) -> None:
    """Register POST /predict with a request body documented from the default model's schema."""

    @router.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra=_predict_openapi(schema, max_rows),
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            413: {"description": "Body or row count over the limit"},
            415: {"description": "Unsupported content type"},
            422: {"description": "Invalid input; the body names the row and the column"},
        },
    )
    async def predict(request: Request, state: State, model: Model) -> Response:
        """Predict one record, a list of records or a CSV; every prediction is logged before the answer."""
        frame = await read_input(request, state.schema(model), state.serving.max_rows)
        request_id = state.new_request_id()
        outputs = await state.batcher.score(model, frame, request_id)
        as_csv = "text/csv" in request.headers.get("accept", "")
        return await run_off_loop(
            len(outputs) > INLINE_ROWS, render, outputs, frame, request_id, model, as_csv
        )


@feedback_router.post("/feedback")
def feedback(
    state: State, items: Annotated[list[FeedbackItem], Field(min_length=1, max_length=100_000)]
) -> dict:
    """Store the true outcome of logged predictions; unknown ids reject the whole batch (404)."""
    try:
        stored = store.record_feedback(state.engine, [item.model_dump() for item in items])
    except store.UnknownPredictionError as exc:
        raise HTTPException(
            404, detail={"msg": "unknown prediction ids; nothing was stored", "unknown_ids": exc.ids[:100]}
        ) from exc
    return {"stored": stored}


# ----------------------------------------------------------------------------- app factory
def open_store(url: str) -> sa.Engine:
    """An engine on the prediction store with its tables created (`store.init_db` tolerates
    several workers creating them at once)."""
    store.check_sqlite_writable(url)
    engine = store.create_db_engine(url)
    store.init_db(engine)
    return engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    Raises:
        registry.ModelNotFoundError: when there is no trained model (or the pinned one is missing).
    """
    settings = settings or get_settings()
    default_metadata = registry.load_metadata(settings.models_dir, settings.model_version)
    serving = settings.config.serving
    schema = InputSchema(default_metadata)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = open_store(settings.db_url)
        state = ServingState(settings, engine)
        state.batcher = MicroBatcher(state)
        state.model()
        app.state.serving = state
        logger.info("serving model %s, logging to %s", state.default_version(), engine.url.render_as_string())
        yield
        state.close()

    app = FastAPI(
        title="MLOps prediction service",
        description=(
            f"Predicts `{default_metadata.target}` ({default_metadata.task}). Default model: "
            f"`{default_metadata.version}`. Send one record, a list, or a CSV to `POST /predict`."
        ),
        version=default_metadata.version,
        lifespan=lifespan,
    )
    predict = APIRouter(tags=["predict"], dependencies=Protected, responses=ERROR_RESPONSES)
    add_predict_route(predict, schema, serving.max_rows)
    for router in (health_router, models_router, predict, feedback_router):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=int(serving.max_body_mb * 1024 * 1024))
    if serving.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=serving.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app


@cache
def _default_app() -> FastAPI:
    try:
        return create_app()
    except registry.ModelNotFoundError:
        print(NO_MODEL_MESSAGE.format(models_dir=get_settings().models_dir), file=sys.stderr)
    except ConfigError as exc:
        print(f"Error de configuración: {exc}", file=sys.stderr)
    raise SystemExit(1)


def __getattr__(name: str) -> Any:
    """``model_deploy:app`` for uvicorn, built on first access (never at import)."""
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- batch scoring


def score_file(
    model: registry.LoadedModel,
    input_path: Path,
    output_path: Path,
    *,
    chunk_size: int = 50_000,
    engine: sa.Engine | None = None,
    progress: bool = True,
) -> int:
    """Score a CSV of any size in chunks (bounded memory), writing input columns plus predictions.

    The output keeps the input's separator and decimal mark. With ``engine`` every chunk is also
    committed to the prediction log.

    Returns:
        The number of rows scored.
    """
    from tqdm import tqdm

    names = model.feature_names
    with open(input_path, encoding="utf-8-sig", newline="") as handle:
        csv_format = ft_engineering.sniff_csv_format(handle.read(64 * 1024))
    reader = ft_engineering.read_csv(
        input_path, na_values=scoring.missing_tokens(model.metadata), chunksize=chunk_size
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scored = 0
    with tqdm(
        total=scoring.count_rows(input_path), unit=" filas", disable=not progress, desc="Puntuando"
    ) as bar:
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            missing = [c for c in names if c not in chunk.columns]
            if missing:
                raise ValueError(f"the input lacks the model's columns {missing}")
            features = chunk[names]
            outputs = scoring.batch_outputs(model, features)
            if engine is not None:
                store.log_predictions(engine, features, outputs, model_version=model.version)
            chunk.join(outputs).to_csv(
                output_path,
                mode="w" if scored == 0 else "a",
                header=scored == 0,
                index=False,
                sep=csv_format["sep"],
                decimal=csv_format["decimal"],
            )
            scored += len(chunk)
            bar.update(len(chunk))
    return scored


# ----------------------------------------------------------------------------- CLI
def _serve(settings: Settings, host: str, port: int | None, workers: int) -> int:
    import uvicorn

    open_store(settings.db_url).dispose()  # tables created once, before the workers start

    uvicorn.run(
        "model_deploy:app",
        host=host,
        port=port or settings.port,
        workers=workers,
        app_dir=str(SRC_DIR),
        proxy_headers=True,
    )
    return 0


def _score(settings: Settings, args: argparse.Namespace) -> int:
    if args.engine == "dask":
        import dask_engine

        return dask_engine.score_command(settings, args)
    if not args.input.is_file():
        print(f"No existe el archivo de entrada: {args.input}", file=sys.stderr)
        return 2
    model = registry.load_model(settings.models_dir, args.model or settings.model_version)
    engine = None
    if args.log:
        engine = open_store(settings.db_url)
    try:
        rows = score_file(
            model, args.input, args.output, chunk_size=args.chunk_size, engine=engine, progress=not args.quiet
        )
    except ValueError as exc:
        print(f"No se pudo puntuar {args.input}: {exc}", file=sys.stderr)
        return 2
    print(f"{rows} filas puntuadas con el modelo {model.version} -> {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI: ``serve`` the API or ``score`` a CSV file."""
    parser = argparse.ArgumentParser(description="Servicio de predicción y puntuación por lotes.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="inicia la API (uvicorn)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="interfaz (0.0.0.0 para aceptar conexiones externas)"
    )
    serve.add_argument("--port", type=int, default=None, help="puerto (por defecto PORT o 8000)")
    serve.add_argument("--workers", type=int, default=1, help="procesos de uvicorn")
    score = commands.add_parser("score", help="puntúa un CSV grande por bloques")
    score.add_argument("--input", type=Path, required=True, help="CSV de entrada (coma o punto y coma)")
    score.add_argument(
        "--output", type=Path, required=True, help="CSV de salida: columnas de entrada + predicciones"
    )
    score.add_argument("--model", default=None, help="versión del modelo (por defecto el campeón)")
    score.add_argument("--chunk-size", type=int, default=50_000, help="filas por bloque")
    score.add_argument("--log", action="store_true", help="guardar también las predicciones en el registro")
    score.add_argument("--quiet", action="store_true", help="sin barra de progreso")
    score.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="dask: en un clúster; --input admite un glob de CSV/Parquet y --output es una carpeta",
    )
    score.add_argument(
        "--scheduler",
        help="con --engine dask: dirección de un clúster existente (tcp://host:8786); por defecto un LocalCluster",
    )
    score.add_argument(
        "--output-format",
        choices=["parquet", "csv"],
        default="parquet",
        help="con --engine dask: formato de las partes de salida",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
        registry.resolve_version(settings.models_dir, settings.model_version)
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers)
        return _score(settings, args)
    except registry.ModelNotFoundError as exc:
        if settings.model_version or getattr(args, "model", None):
            print(f"Modelo no encontrado: {exc}", file=sys.stderr)
        else:
            print(NO_MODEL_MESSAGE.format(models_dir=settings.models_dir), file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"Error de configuración: {exc}", file=sys.stderr)
        return 2
    except store.StoreNotWritableError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
