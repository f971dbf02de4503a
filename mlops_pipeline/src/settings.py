"""Project settings: the validated `config.yaml` plus deploy-time environment variables.

`config.yaml` is the one file a user edits for a new dataset. Environment variables override
where things live and deploy-time secrets:

- ``MLOPS_CONFIG``: path to another config file (default ``mlops_pipeline/config.yaml``);
- ``MLOPS_ARTIFACTS_DIR``: where every output goes (default ``mlops_pipeline/artifacts``);
- ``DATABASE_URL``, ``API_KEY``, ``MODEL_VERSION``, ``PORT``: serving.

A config mistake is a `ConfigError` whose message has one Spanish line per mistake, naming the
key and what to write (`explain` turns pydantic's errors into those lines; `unknown` words a
name that is not among the allowed ones). The CLIs print it without a traceback. Nothing here
touches the disk at import time; folders are created by the code that writes them.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

import expressions

PIPELINE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PIPELINE_DIR / "config.yaml"
DEFAULT_ARTIFACTS = PIPELINE_DIR / "artifacts"

Task = Literal["classification", "regression"]


class ConfigError(ValueError):
    """A config that cannot be used: one Spanish line per mistake, naming the key and what to write."""


def choices(options: Iterable[str], limit: int = 15) -> str:
    """``a, b, c`` (at most ``limit`` names, then how many more)."""
    names = [str(option) for option in options]
    shown = ", ".join(names[:limit])
    return shown + (f" y {len(names) - limit} más" if len(names) > limit else "")


def unknown(name: str, options: Iterable[str], what: str = "una columna de los datos") -> str:
    """``'x' no es <what>; escriba una de: a, b (¿quiso decir 'b'?)``: what to write instead of ``name``."""
    options = [str(option) for option in options]
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    hint = f" (¿quiso decir '{close[0]}'?)" if close else ""
    return f"'{name}' no es {what}; escriba una de: {choices(options)}{hint}"


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def checked(cls, values: Any, key: str = "") -> Self:
        """``model_validate``, with every mistake a Spanish `ConfigError` line (`explain`); ``key`` is
        where this section sits in the config (``training`` for a `TrainingConfig`)."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(explain(exc, cls, key)) from exc


class Range(StrictModel):
    """Inclusive bounds for a numeric column; either side may be open."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} es mayor que max {self.max:g}; escriba min <= max")
        return self


class ValidationRules(StrictModel):
    """Rules checked on load; violations are reported, never silently dropped."""

    ranges: dict[str, Range] = Field(default_factory=dict)
    categories: dict[str, list[str]] = Field(default_factory=dict)
    max_missing_share: float = Field(default=0.5, ge=0, le=1)


def _parseable(expression: str) -> str:
    """A derived-feature expression that `expressions.parse` accepts (its columns are checked on load)."""
    try:
        expressions.parse(expression)
    except ValueError as exc:
        raise ValueError(f"la expresión '{expression}' no es válida: {exc}") from None
    return expression


DerivedExpression = Annotated[str, AfterValidator(_parseable)]


class DatasetConfig(StrictModel):
    """Where the data is and what each column means."""

    path: Path
    target: str
    positive_class: str | None = None
    task: Task | None = None
    drop_columns: list[str] = Field(default_factory=list)
    na_values: list[str] = Field(default_factory=list)
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    ordinal: dict[str, list[str]] = Field(default_factory=dict)
    derived: dict[str, DerivedExpression] = Field(default_factory=dict)
    validation: ValidationRules = Field(default_factory=ValidationRules)
    rare_category_share: float = Field(default=0.01, ge=0, lt=1)
    max_categories: int = Field(default=30, ge=2)

    @model_validator(mode="after")
    def _roles_consistent(self) -> DatasetConfig:
        """Each column in one role at most, neither the target nor dropped; new derived names; ordinal
        levels given; some feature left; a positive class only for classification."""
        seen: dict[str, str] = {}
        roles = {
            "numeric": self.numeric or [],
            "categorical": self.categorical or [],
            "ordinal": self.ordinal,
        }
        for key, columns in roles.items():
            for column in columns:
                if column == self.target:
                    raise ValueError(f"dataset.{key}: '{column}' es dataset.target; quítela de la lista")
                if column in seen:
                    raise ValueError(
                        f"dataset.{key}: '{column}' ya está en dataset.{seen[column]}; déjela en una"
                    )
                if column in self.drop_columns:
                    raise ValueError(
                        f"dataset.drop_columns: '{column}' está en dataset.{key}; quítela de una"
                    )
                seen[column] = key
        if self.target in self.drop_columns:
            raise ValueError(f"dataset.drop_columns: '{self.target}' es dataset.target; quítela de la lista")
        for name in self.derived:
            if name in seen or name == self.target:
                raise ValueError(f"dataset.derived.{name}: ya es una columna; elija otro nombre")
        for column, levels in self.ordinal.items():
            if not levels or len(set(levels)) < len(levels):
                raise ValueError(
                    f"dataset.ordinal.{column}: escriba sus niveles, sin repetir, de menor a mayor"
                )
        if self.numeric == [] and self.categorical == [] and not self.ordinal:
            raise ValueError(
                "dataset.numeric, dataset.categorical: las dos listas están vacías, así que el modelo no "
                "tendría variables; liste las columnas o borre las dos claves para que se infieran"
            )
        if self.task == "regression" and self.positive_class is not None:
            raise ValueError(
                "dataset.positive_class: solo se usa en clasificación; bórrela o use task: classification"
            )
        return self


class SplitConfig(StrictModel):
    """Train/test split."""

    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    stratify: bool = True


class TuningConfig(StrictModel):
    """Optuna search over the leading candidates, bounded by trials and time."""

    enabled: bool = True
    top_k: int = Field(default=2, ge=1)
    trials: int = Field(default=20, ge=1)
    timeout_seconds: float = Field(default=60, gt=0)


class SearchParam(StrictModel):
    """One hyperparameter's Optuna range: ``low``..``high`` (integers when both are; ``log`` scale
    optional) or a list of ``choices``."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[str | int | float | bool | None] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchParam:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("escriba una lista 'choices' no vacía, o 'low' y 'high', no ambas")
            return self
        if self.low is None or self.high is None or self.low >= self.high:
            raise ValueError("escriba 'low' menor que 'high' (o una lista 'choices')")
        if self.log and self.low <= 0:
            raise ValueError("un rango en escala logarítmica (log: true) necesita 'low' > 0")
        return self


class Costs(StrictModel):
    """What each wrong decision of a binary classifier costs, in any one unit (money, points).

    A false negative is a positive-class row predicted negative (in credit: approving a loan that
    is not repaid); a false positive is a negative row predicted positive (rejecting a good
    applicant). Right decisions cost nothing.
    """

    false_negative: float = Field(gt=0)
    false_positive: float = Field(gt=0)


class RetrainConfig(StrictModel):
    """``--retrain``: the original data plus the prediction log's rows whose outcome is known."""

    holdout_share: float = Field(default=0.3, gt=0, lt=1)
    min_holdout_rows: int = Field(default=50, ge=10)


class TrainingConfig(StrictModel):
    """Which models to try and how to compare them."""

    models: dict[str, dict | None] = Field(default_factory=dict)
    search_spaces: dict[str, dict[str, SearchParam]] = Field(default_factory=dict)
    cv_folds: int = Field(default=5, ge=2)
    primary_metric: str | None = None
    selection_tolerance: float = Field(default=1.0, ge=0)
    threshold_rule: Literal["f1", "youden", "fixed", "cost"] = "f1"
    fixed_threshold: float = Field(default=0.5, gt=0, lt=1)
    costs: Costs | None = None
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    tracking: bool = True
    reference_sample_size: int = Field(default=5000, ge=10)
    n_jobs: int = Field(default=2, ge=1)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)

    @model_validator(mode="after")
    def _costs_for_the_cost_rule(self) -> TrainingConfig:
        if self.threshold_rule == "cost" and self.costs is None:
            raise ValueError(
                "training.costs: la regla threshold_rule: cost necesita los costos; escriba, por ejemplo, "
                "costs: {false_negative: 5, false_positive: 1}"
            )
        return self


class ServingConfig(StrictModel):
    """The prediction service."""

    max_rows: int = Field(default=100_000, ge=1)
    max_body_mb: float = Field(default=50, gt=0)
    database_url: str | None = None
    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    log_predictions: bool = True


class MonitoringConfig(StrictModel):
    """Drift monitoring over the prediction log."""

    window: str = "1D"
    sample_size: int = Field(default=5000, ge=10)
    p_value: float = Field(default=0.001, gt=0, lt=1)
    correction: Literal["none", "bonferroni", "fdr_bh"] = "bonferroni"
    bins: int = Field(default=10, ge=2, le=100)
    seed: int = 0
    trend_windows: int = Field(default=5, ge=3)
    min_feedback: int = Field(default=30, ge=1)
    performance_drop: float = Field(default=0.05, ge=0)
    retrain_red_features: int = Field(default=2, ge=1)
    min_rows: int = Field(default=100, ge=1)
    calibration_draws: int = Field(default=5000, ge=100)
    calibrated_tail: tuple[float, float] = (1e-4, 1e-6)
    change_p_value: float = Field(default=0.002, gt=0, lt=1)
    performance_ci: float = Field(default=0.95, gt=0, lt=1)
    bootstrap_draws: int = Field(default=1000, ge=100)
    thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "psi": (0.1, 0.25),
            "jensen_shannon": (0.1, 0.2),
            "missing_share": (0.05, 0.1),
            "unseen_share": (0.01, 0.05),
            "out_of_range_share": (0.05, 0.1),
        }
    )

    @field_validator("calibrated_tail")
    @classmethod
    def _tails(cls, value: tuple[float, float]) -> tuple[float, float]:
        yellow, red = value
        if not 0 < red <= yellow < 0.01:
            raise ValueError(f"give 0 < red <= yellow < 0.01, got yellow {yellow} and red {red}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (warn, alert) in value.items():
            if warn > alert:
                raise ValueError(
                    f"{name}: el umbral amarillo {warn:g} supera al rojo {alert:g}; escriba [amarillo, rojo]"
                )
        return value


class ProjectConfig(StrictModel):
    """The whole `config.yaml`."""

    dataset: DatasetConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)


# ----------------------------------------------------------------------------- pydantic errors in Spanish
MESSAGES = {
    "missing": "falta esta clave",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "float_type": "debe ser un número",
    "bool_parsing": "debe ser true o false",
    "bool_type": "debe ser true o false",
    "string_type": "debe ser un texto",
    "list_type": "debe ser una lista, por ejemplo [a, b]",
    "tuple_type": "debe ser una lista, por ejemplo [0.1, 0.2]",
    "too_short": "debe tener {min_length} elemento(s)",
    "too_long": "debe tener {max_length} elemento(s)",
    "dict_type": "debe ser una sección de claves (clave: valor)",
    "model_type": "debe ser una sección de claves (clave: valor)",
    "literal_error": "debe ser una de: {expected}",
    "path_type": "debe ser una ruta de archivo",
}
"""Spanish text per pydantic error type (``ctx`` fills the braces); others keep pydantic's words."""


def _section(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """The config section (model) that holds the key at ``loc``, walking dict keys; None if unknown."""
    model, parts = root, list(loc[:-1])
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        annotation = field.annotation
        if get_origin(annotation) is dict:
            annotation, parts = get_args(annotation)[1], parts[1:]  # skip the dict key
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next((a for a in get_args(annotation) if a is not type(None)), None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _text(item: Any) -> str:
    """The Spanish words of one pydantic error, without its key (a ``value_error`` is one of ours)."""
    kind, value = item["type"], item.get("input")
    ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (item.get("ctx") or {}).items()}
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "missing" and isinstance(item["loc"][-1], int):  # a list too short, e.g. [0.1] for [a, b]
        return f"a la lista le falta el elemento {item['loc'][-1] + 1}"
    if "expected" in ctx:
        ctx["expected"] = str(ctx["expected"]).replace(" or ", " o ")
    text = MESSAGES.get(kind, item["msg"]).format(**ctx)
    shown = kind != "missing" and isinstance(value, (str, int, float))
    return text + (f" (se escribió {value!r})" if shown else "")


def _line(item: Any, root: type[BaseModel], prefix: str) -> str:
    """One pydantic error as ``<key>: <Spanish message>``; our model-level checks name their own key."""
    loc = tuple(part for part in item["loc"] if not isinstance(part, int))  # no list positions
    key = ".".join([*([prefix] if prefix else []), *(str(part) for part in loc)])
    text = _text(item)
    if item["type"] == "value_error" and text.split(".", 1)[0] in ProjectConfig.model_fields:
        return text  # e.g. "dataset.numeric: ..." from DatasetConfig's own check
    if item["type"] == "extra_forbidden":
        section = _section(loc, root)
        valid = list(section.model_fields) if section else []
        text = unknown(loc[-1], valid, "una clave de esta sección") if valid else "clave desconocida"
    return f"{key}: {text}"


def explain(error: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """pydantic's errors as Spanish lines, one per mistake: ``<key>: <what is wrong; what to write>``.

    Args:
        error: the validation error.
        root: the model validated (for the valid keys of a section).
        prefix: the key of that model inside the config (``training`` for a `TrainingConfig`).
    """
    return "\n".join(dict.fromkeys(_line(item, root, prefix) for item in error.errors()))


def load_config(path: Path | str) -> ProjectConfig:
    """Read and validate a config file; relative data paths resolve from the file's folder.

    Raises:
        ConfigError: naming the missing file, the YAML error or each invalid key.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"no existe el archivo de configuración {path}; indique otro con --config o MLOPS_CONFIG"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (línea {mark.line + 1}, columna {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{path} no es YAML válido{where}: revise la sangría, los ':' y los corchetes"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} debe ser un mapeo de secciones (dataset:, training:, ...), con 'dataset'")
    config = ProjectConfig.checked(raw)
    data_path = config.dataset.path
    if not data_path.is_absolute():
        data_path = (path.parent / data_path).resolve()
    dataset = config.dataset.model_copy(update={"path": data_path})
    return config.model_copy(update={"dataset": dataset})


def normalize_database_url(url: str) -> str:
    """Point bare PostgreSQL URLs at the psycopg 3 driver that requirements.txt installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Environment-driven settings; `config` is the validated YAML they point at."""

    model_config = SettingsConfigDict(extra="ignore")

    mlops_config: Path = DEFAULT_CONFIG
    mlops_artifacts_dir: Path = DEFAULT_ARTIFACTS
    database_url: str | None = None
    api_key: str | None = None
    admin_api_key: str | None = None
    """`ADMIN_API_KEY`: the key of the admin endpoints (PUT /models/default); none set, they are refused."""
    db_connect_timeout: float = Field(default=5, gt=0)
    """`DB_CONNECT_TIMEOUT`: seconds to wait for a database connection (PostgreSQL) or lock (SQLite)."""
    db_statement_timeout: float = Field(default=10, gt=0)
    """`DB_STATEMENT_TIMEOUT`: seconds a PostgreSQL statement may run before the request is a 503."""
    model_version: str | None = None
    port: int = Field(default=8000, ge=1, le=65535)

    @property
    def config(self) -> ProjectConfig:
        """The validated config file (re-read only when the file changes)."""
        path = self.mlops_config.expanduser().resolve()
        return _cached_config(path, path.stat().st_mtime_ns if path.exists() else 0)

    @property
    def artifacts_dir(self) -> Path:
        return self.mlops_artifacts_dir.expanduser().resolve()

    @property
    def models_dir(self) -> Path:
        return self.artifacts_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.artifacts_dir / "reports"

    @property
    def db_url(self) -> str:
        """Prediction-store URL: `DATABASE_URL`, then the config, then a SQLite file."""
        url = self.database_url or self.config.serving.database_url
        if not url:
            url = f"sqlite:///{self.artifacts_dir / 'predictions.db'}"
        return normalize_database_url(url)

    @property
    def effective_api_key(self) -> str | None:
        """`API_KEY` from the environment wins over the config's; empty means no key."""
        return self.api_key or self.config.serving.api_key or None


@lru_cache(maxsize=8)
def _cached_config(path: Path, mtime_ns: int) -> ProjectConfig:
    return load_config(path)


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (used by CLIs and tests).

    Raises:
        ConfigError: in Spanish, naming the environment variable (``PORT``...) that is wrong.
    """
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        lines = (f"variable de entorno {str(item['loc'][0]).upper()}: {_text(item)}" for item in exc.errors())
        raise ConfigError("\n".join(lines)) from exc


class StoreNotWritableError(PermissionError):
    """The SQLite store's folder or file cannot be written by this process; the message says what to do."""


def check_sqlite_writable(url: str) -> None:
    """Fail in one line when a SQLite store cannot be written here (say, a root-owned host folder
    mounted at /data in the container), instead of SQLAlchemy's traceback on first use."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        return
    path = Path(database).absolute()
    folder = next(p for p in path.parents if p.exists())  # the folder mkdir would start from
    if os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK)):
        return
    blocked = path if os.access(folder, os.W_OK | os.X_OK) else folder
    uid = os.getuid() if hasattr(os, "getuid") else "<usuario>"
    raise StoreNotWritableError(
        f"No se puede escribir en {blocked} (propietario uid {blocked.stat().st_uid}): "
        f"ejecute 'chown {uid} <carpeta>' o use un volumen con nombre"
    )
