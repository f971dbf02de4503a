"""Serving: a FastAPI app over the trained models, and a batch scorer for files too big for HTTP.

``POST /predict`` in four steps: read the body, validate it against the model's saved feature
schema (`api_input`; ``/docs`` shows the real fields), score the rows and commit every
prediction to the log (`score_and_log`: `scoring.batch_outputs`, then `store.log_predictions`),
and answer in JSON or CSV (`api_output`, with the reasons ``?explain=K`` asks for, not logged).
The commit comes before the answer: a 2xx means stored.

CLI::

    python mlops_pipeline/src/model_deploy.py serve [--host 0.0.0.0] [--port 8000] [--workers 2]
    python mlops_pipeline/src/model_deploy.py score --input in.csv --output out.csv [--log]

or, with uvicorn directly: ``uvicorn model_deploy:app --app-dir mlops_pipeline/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator
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
from pydantic import ValidationError

import api_guard
import api_input
import api_models
import api_output
import db_engine
import explain
import registry
import scoring
import shadow
import store
from settings import ConfigError, ServingConfig, Settings, StoreNotWritableError, get_settings

logger = logging.getLogger(__name__)

SRC_DIR = Path(__file__).resolve().parent
NO_MODEL_MESSAGE = (
    "No hay modelo entrenado en {models_dir}: ejecute primero el entrenamiento "
    "(python mlops_pipeline/src/model_training_evaluation.py)."
)
CHAMPION_CHECK_SECONDS = 0.5
READY_TIMEOUT_SECONDS = 2.0
SMALL_BODY_BYTES = 16 * 1024  # about 50 records: validated on the event loop, scored by the MicroBatcher


# ----------------------------------------------------------------------------- state and dependencies
@dataclass
class ServingState:
    """What the app loads once: settings, the store engine, the model versions and their schemas."""

    settings: Settings
    engine: sa.Engine
    models: dict[str, registry.LoadedModel] = field(default_factory=dict)
    schemas: dict[str, api_input.InputSchema] = field(default_factory=dict)
    models_dir: Path = field(init=False)
    serving: ServingConfig = field(init=False)
    api_key: str | None = field(init=False)
    batcher: MicroBatcher = field(init=False)
    _champion: tuple[int, str] | None = field(default=None, init=False, repr=False)
    _checked_at: float = field(default=-math.inf, init=False, repr=False)

    def __post_init__(self) -> None:
        # resolved once: paths and the config are read per request otherwise
        self.models_dir = self.settings.models_dir
        self.serving = self.settings.config.serving
        self.api_key = self.settings.effective_api_key
        self.batcher = MicroBatcher(self)

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

    def schema(self, model: registry.LoadedModel) -> api_input.InputSchema:
        if model.version not in self.schemas:
            self.schemas[model.version] = api_input.InputSchema(model.metadata)
        return self.schemas[model.version]


async def get_state(request: Request) -> ServingState:
    """The app's loaded state (trivial dependencies are async: no thread hop per request)."""
    return request.app.state.serving


State = Annotated[ServingState, Depends(get_state)]


ModelParameter = Annotated[
    str | None, Query(description="Model version to use (see GET /models); default: the default model.")
]


async def get_model(
    state: State,
    model: ModelParameter = None,
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
    except registry.ModelIntegrityError as exc:  # a file on the server changed: refused, never loaded
        raise HTTPException(503, detail=str(exc)) from exc


Model = Annotated[registry.LoadedModel, Depends(get_model)]
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when API_KEY is set.")


admin_key_header = APIKeyHeader(
    name="X-Admin-Key",
    auto_error=False,
    description="ADMIN_API_KEY; admin endpoints are refused without one.",
)


async def require_api_key(state: State, key: Annotated[str | None, Security(api_key_header)]) -> None:
    """Check ``X-API-Key`` when an API key is configured (headers only: before the body is read)."""
    api_guard.check_key(key, state.api_key)


async def require_admin_key(state: State, key: Annotated[str | None, Security(admin_key_header)]) -> None:
    """Check ``X-Admin-Key`` against ``ADMIN_API_KEY``; admin endpoints are refused when none is set."""
    api_guard.check_admin_key(key, state.settings.admin_api_key)


Protected = [Depends(require_api_key)]


# ----------------------------------------------------------------------------- routers
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable request body"},
    401: {"description": "Missing or wrong X-API-Key (only when API_KEY is set)"},
    404: {"description": "Unknown model version or prediction id"},
    503: {"description": "The prediction store is unavailable; retry after `Retry-After` seconds"},
}
health_router = APIRouter(tags=["health"])
models_router = APIRouter(tags=["models"], dependencies=Protected, responses=ERROR_RESPONSES)
feedback_router = APIRouter(tags=["feedback"], dependencies=Protected, responses=ERROR_RESPONSES)
admin_router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin_key)], responses=ERROR_RESPONSES)


@health_router.get("/health")
async def health(state: State) -> dict:
    """Liveness: the process answers (on the event loop, touching neither the store nor the disk
    beyond the registry file's time stamp)."""
    version = state.default_version()
    return {"status": "ok", "model_loaded": version in state.models, "model_version": version}


@health_router.get("/ready", responses={503: {"description": "The store does not answer"}})
async def ready(state: State) -> Response:
    """Readiness: the default model is loaded and the prediction store answers within its timeout."""
    try:
        await asyncio.wait_for(run_in_threadpool(db_engine.ping, state.engine), READY_TIMEOUT_SECONDS)
    except (TimeoutError, *api_guard.STORE_ERRORS) as exc:
        return api_guard.store_unavailable(None, exc)
    return Response(json.dumps({"status": "ready", "store": "ok"}), media_type="application/json")


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


async def get_metadata(
    state: State,
    model: ModelParameter = None,
) -> registry.ModelMetadata:
    """A version's metadata, read from its JSON file (never by unpickling the model); 404 if unknown."""
    try:
        version = model or state.default_version()
        if version in state.models:
            return state.models[version].metadata
        return await run_in_threadpool(registry.load_metadata, state.models_dir, version)
    except registry.ModelNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


def explainer_info(state: ServingState, metadata: registry.ModelMetadata) -> dict:
    """How ``?explain=`` computes a version's reasons. /model/info never unpickles a model, so the
    kind comes from the loaded model when this worker has it, else from the version's candidate
    name (`explain.candidate_explainer_kind`: the same rule on an unfitted estimator of that
    family); a hand-saved version not loaded yet has ``kind: null``."""
    loaded = state.models.get(metadata.version)
    if loaded is not None:
        kind = explain.explainer_kind(loaded)
    else:
        kind = explain.candidate_explainer_kind(metadata.task, metadata.model_name)
    description = explain.EXPLAINERS[kind] if kind else "unknown until this version serves a prediction"
    return {"kind": kind, "description": description}


@models_router.get("/model/info")
def model_info(state: State, metadata: Annotated[registry.ModelMetadata, Depends(get_metadata)]) -> dict:
    """Version, metrics, feature schema, threshold, training date and explainer (how ``?explain=``
    computes reasons) of a model (default: the default one)."""
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
        "dropped_columns",
    )
    return {
        **metadata.model_dump(mode="json", include=set(keys)),
        "explainer": explainer_info(state, metadata),
    }


@models_router.get("/models")
def list_models(state: State) -> list[dict]:
    """Every saved version with its metrics, marking the champion and the default."""
    champion, default = registry.champion_version(state.models_dir), state.default_version()
    return [
        model_summary(registry.load_metadata(state.models_dir, v), champion, default)
        for v in registry.list_versions(state.models_dir)
    ]


ADMIN_DISABLED: dict[int | str, dict[str, Any]] = {
    403: {"description": "No ADMIN_API_KEY is set: admin endpoints are disabled"}
}


@admin_router.put(
    "/models/default",
    responses={
        **ADMIN_DISABLED,
        409: {"description": 'MODEL_VERSION pins the default, or the shadow comparison refuses it ("force")'},
    },
)
def set_default_model(state: State, body: api_models.DefaultModel, request: Request) -> dict:
    """Make a saved version the default for every worker (it becomes the champion); needs
    ``X-Admin-Key``.

    Refused (409) when the latest shadow comparison of the champion and this version shows it worse
    on the primary metric, unless the body says ``"force": true``; with none stored and feedback in
    the log, the comparison is run and stored first (`shadow.promote`). Every promotion and
    refusal is recorded with ``by`` and the client address (``GET /models/promotions``).
    """
    if state.settings.model_version:
        raise HTTPException(
            409, detail="MODEL_VERSION pins the default model; unset it to change the default at run time"
        )
    monitoring, client = state.settings.config.monitoring, request.client.host if request.client else None
    try:
        registry.resolve_version(state.models_dir, body.version)
        check = shadow.promote(
            state.engine,
            state.models_dir,
            state.model,
            body.version,
            force=body.force,
            requested_by=body.by,
            client=client,
            n_boot=monitoring.bootstrap_draws,
            seed=monitoring.seed,
        )
    except registry.ModelNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except registry.ModelIntegrityError as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    if not check.allowed:
        raise HTTPException(409, detail=check.refusal())
    state.forget_default()
    return {"default": state.model().version}


@admin_router.get("/models/promotions", responses=ADMIN_DISABLED)
def list_promotions(
    state: State, limit: Annotated[int, Query(ge=1, le=10_000, description="Newest rows to return.")] = 100
) -> list[dict]:
    """The promotion audit, newest first: who promoted or tried to promote which version, when, over
    which champion, with which evidence; needs ``X-Admin-Key``."""
    rows = shadow.read_promotions(state.engine, limit)
    return json.loads(rows.to_json(orient="records", date_format="iso"))


# ----------------------------------------------------------------------------- predict
def score_and_log(
    state: ServingState, model: registry.LoadedModel, frame: pd.DataFrame, request_id: str | list[str]
) -> pd.DataFrame:
    """Score validated rows and commit them to the log in one transaction; the outputs with their ids.

    A frame the model refuses (e.g. an infinity the imputer rejects) is a 422, not a 500.
    """
    try:
        outputs = scoring.batch_outputs(model, frame)
    except (ValueError, TypeError, FloatingPointError) as exc:
        message = f"the model could not score the input: {exc}"
        raise api_input.reject(422, [api_input.error(None, None, message, "model_input")]) from exc
    if state.serving.log_predictions:
        store.recreating_tables(
            state.engine,
            lambda: store.log_predictions(
                state.engine, frame, outputs, model_version=model.version, request_id=request_id
            ),
        )
    return outputs


def answer(
    state: ServingState, model: registry.LoadedModel, body: api_input.Body, as_csv: bool, top_k: int
) -> Response:
    """What ``POST /predict`` does with a big body once it is read: validate, score and log, explain
    (``top_k`` reasons), render."""
    frame = api_input.parse_body(body, state.schema(model), state.serving.max_rows)
    request_id = uuid.uuid4().hex
    outputs = score_and_log(state, model, frame, request_id)
    return api_output.respond(outputs, frame, request_id, model, as_csv, top_k)


def stack(frames: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Several requests' rows as one frame, each column's type inferred over all of them (a column
    one request leaves empty must not decide it, which ``pd.concat`` is deprecating)."""
    if len(frames) == 1:
        return frames[0]
    rows = np.concatenate([frame.reindex(columns=names).to_numpy(dtype=object) for frame in frames])
    return pd.DataFrame(rows, columns=names).infer_objects()


Pending = tuple[registry.LoadedModel, pd.DataFrame, str, asyncio.Future]
"""A small request waiting in the `MicroBatcher`: its model, validated rows, request id, answer."""


class MicroBatcher:
    """Scores small requests that arrive together as one batch: one pipeline call, one transaction.

    A pipeline call costs about 10 ms whatever its size, so 8 clients sending one record each
    would queue 8 calls; batched, they share one. The first request is scored at once and those
    arriving meanwhile form the next batch, so an idle service adds no delay.
    """

    def __init__(self, state: ServingState):
        self.state = state
        self.waiting: list[Pending] = []
        self.worker: asyncio.Task | None = None

    async def score(self, model: registry.LoadedModel, frame: pd.DataFrame, request_id: str) -> pd.DataFrame:
        """The outputs of one request's rows, scored and logged with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((model, frame, request_id, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            for version in {model.version for model, *_ in batch}:
                group = [pending for pending in batch if pending[0].version == version]
                results = await run_in_threadpool(self._score_together, group)
                for (*_, future), result in zip(group, results):
                    if future.done():  # the client went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)

    def _score_together(self, group: list[Pending]) -> list[pd.DataFrame | Exception]:
        """Each request's outputs; when the batch fails, each request is tried alone, so that only
        the one the model refuses fails."""
        model, frames = group[0][0], [frame for _, frame, _, _ in group]
        request_ids = [request_id for _, frame, request_id, _ in group for _ in range(len(frame))]
        try:
            outputs = score_and_log(self.state, model, stack(frames, model.feature_names), request_ids)
        except Exception as exc:
            if len(group) == 1 or isinstance(exc, api_guard.STORE_ERRORS):  # a store error fails them all
                return [exc] * len(group)
            return [self._score_together([pending])[0] for pending in group]
        bounds = np.cumsum([0, *map(len, frames)]).tolist()
        return [outputs.iloc[start:end].reset_index(drop=True) for start, end in zip(bounds, bounds[1:])]


ExplainParam = Annotated[
    int,
    Query(
        alias="explain",
        ge=0,
        le=explain.MAX_REASONS,
        description=(
            f"Reasons per prediction, 0 to {explain.MAX_REASONS} (0: none): the inputs that push its "
            "score the most, with their value and signed contribution (method in GET /model/info)."
        ),
    ),
]


def add_predict_route(router: APIRouter, schema: api_input.InputSchema, max_rows: int) -> None:
    """Register POST /predict with a request body documented from the default model's schema."""

    @router.post(
        "/predict",
        response_model=api_models.PredictResponse,
        openapi_extra=api_input.predict_openapi(schema, max_rows),
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            413: {"description": "Body or row count over the limit"},
            415: {"description": "Unsupported content type"},
            422: {"description": "Invalid input; the body names the row and the column"},
        },
    )
    async def predict(request: Request, state: State, model: Model, top_k: ExplainParam = 0) -> Response:
        """Predict one record, a list of records or a CSV; every prediction is logged before the answer.
        With ``?explain=K``, each prediction also gets its K strongest reasons (not logged)."""
        body = await api_input.read_body(request)
        as_csv = "text/csv" in request.headers.get("accept", "")
        if len(body.data) > SMALL_BODY_BYTES:  # a big batch is scored alone, in the thread pool
            return await run_in_threadpool(answer, state, model, body, as_csv, top_k)
        frame = api_input.parse_body(body, state.schema(model), state.serving.max_rows)
        request_id = uuid.uuid4().hex
        outputs = await state.batcher.score(model, frame, request_id)
        if top_k:  # the reasons of this request's rows, after the batch is logged
            return await run_in_threadpool(
                api_output.respond, outputs, frame, request_id, model, as_csv, top_k
            )
        return api_output.render(outputs, frame, request_id, model, as_csv)


def store_feedback(state: ServingState, items: list[api_models.FeedbackItem]) -> int:
    """Check each outcome against its prediction's model version, then upsert them all (or none)."""

    def check(actuals: dict[str, str], versions: dict[str, str]) -> None:
        errors = []
        for version in sorted(set(versions.values())):
            metadata = registry.load_metadata(state.models_dir, version)
            errors += api_models.label_errors(
                metadata, {i: a for i, a in actuals.items() if versions[i] == version}
            )
        if errors:
            detail = {"msg": "outcomes the model cannot have; nothing was stored", "errors": errors[:100]}
            raise HTTPException(422, detail={**detail, "error_count": len(errors)})

    payload = [item.model_dump() for item in items]
    return store.recreating_tables(state.engine, lambda: store.record_feedback(state.engine, payload, check))


@feedback_router.post(
    "/feedback",
    openapi_extra={"requestBody": api_models.FEEDBACK_BODY},
    responses={422: {"description": "Invalid items or labels the model cannot have; nothing stored"}},
)
async def feedback(request: Request, state: State) -> dict:
    """Store the true outcome of logged predictions (labels checked against each prediction's model
    version); unknown ids reject the whole batch (404). The key is checked before the body is read."""
    body = await request.body()
    try:
        items = await run_in_threadpool(api_models.FeedbackList.validate_json, body)
    except ValidationError as exc:
        raise api_input.reject(422, api_input.validation_errors(exc), exc.error_count()) from exc
    try:
        stored = await run_in_threadpool(store_feedback, state, items)
    except store.UnknownPredictionError as exc:
        raise HTTPException(
            404, detail={"msg": "unknown prediction ids; nothing was stored", "unknown_ids": exc.ids[:100]}
        ) from exc
    return {"stored": stored}


# ----------------------------------------------------------------------------- app factory
def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    Raises:
        registry.ModelNotFoundError: when there is no trained model (or the pinned one is missing).
    """
    settings = settings or get_settings()
    default_metadata = registry.load_metadata(settings.models_dir, settings.model_version)
    serving = settings.config.serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = store.open_store(settings.db_url, settings.db_connect_timeout, settings.db_statement_timeout)
        state = ServingState(settings, engine)
        state.model()
        app.state.serving = state
        logger.info("serving model %s, logging to %s", state.default_version(), engine.url.render_as_string())
        yield
        engine.dispose()

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
    add_predict_route(predict, api_input.InputSchema(default_metadata), serving.max_rows)
    for router in (health_router, models_router, admin_router, predict, feedback_router):
        app.include_router(router)
    for error in api_guard.STORE_ERRORS:
        app.add_exception_handler(error, api_guard.store_unavailable)
    app.add_middleware(api_guard.BodySizeLimit, max_bytes=int(serving.max_body_mb * 1024 * 1024))
    if serving.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=serving.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app


WORKER_START_TIMEOUT_SECONDS = 120
"""How long `serve` lets a uvicorn worker import and load the model before it is deemed dead
(uvicorn's default, 5 s, is less than the imports take on a busy machine)."""


@cache
def default_app() -> FastAPI:
    """The app for the environment's settings, built once per process (the factory `serve` runs in
    each worker); exits with a message when there is no model or the config is wrong."""
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
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- CLI
def _serve(settings: Settings, host: str, port: int | None, workers: int) -> int:
    import uvicorn

    store.open_store(settings.db_url).dispose()  # tables made (or migrated) once, before the workers start

    uvicorn.run(
        "model_deploy:default_app",
        factory=True,
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_SECONDS,
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
    engine = store.open_store(settings.db_url) if args.log else None
    try:
        rows = scoring.score_file(
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
        help="con --engine dask: dirección de un clúster (tcp://host:8786); por defecto un LocalCluster",
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
    except StoreNotWritableError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
