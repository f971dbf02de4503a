"""Project settings: the validated `config.yaml` plus deploy-time environment variables.

`config.yaml` is the one file a user edits for a new dataset. Environment variables override
where things live and deploy-time secrets:

- ``MLOPS_CONFIG``: path to another config file (default ``mlops_pipeline/config.yaml``);
- ``MLOPS_ARTIFACTS_DIR``: where every output goes (default ``mlops_pipeline/artifacts``);
- ``DATABASE_URL``, ``API_KEY``, ``MODEL_VERSION``, ``PORT``: serving.

Nothing here touches the disk at import time; folders are created by the code that writes them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

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
    """A config file that cannot be used; the message names the offending key."""


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(StrictModel):
    """Inclusive bounds for a numeric column; either side may be open."""

    min: float | None = None
    max: float | None = None


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
        raise ValueError(f"la expresión '{expression}' no es válida ({exc})") from None
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
                raise ValueError("give a non-empty 'choices' list, or 'low' and 'high', not both")
            return self
        if self.low is None or self.high is None or self.low >= self.high:
            raise ValueError("give 'low' < 'high' (or a 'choices' list)")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs 'low' > 0")
        return self


class TrainingConfig(StrictModel):
    """Which models to try and how to compare them."""

    models: dict[str, dict | None] = Field(default_factory=dict)
    search_spaces: dict[str, dict[str, SearchParam]] = Field(default_factory=dict)
    cv_folds: int = Field(default=5, ge=2)
    primary_metric: str | None = None
    selection_tolerance: float = Field(default=1.0, ge=0)
    threshold_rule: Literal["f1", "youden", "fixed"] = "f1"
    fixed_threshold: float = Field(default=0.5, gt=0, lt=1)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    tracking: bool = True
    reference_sample_size: int = Field(default=5000, ge=10)
    n_jobs: int = Field(default=2, ge=1)


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
    p_value: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["none", "bonferroni", "fdr_bh"] = "bonferroni"
    bins: int = Field(default=10, ge=2, le=100)
    seed: int = 0
    trend_windows: int = Field(default=5, ge=3)
    min_feedback: int = Field(default=30, ge=1)
    performance_drop: float = Field(default=0.05, ge=0)
    retrain_red_features: int = Field(default=2, ge=1)
    thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "psi": (0.1, 0.25),
            "jensen_shannon": (0.1, 0.2),
            "missing_share": (0.05, 0.1),
            "unseen_share": (0.01, 0.05),
            "out_of_range_share": (0.05, 0.1),
        }
    )

    @field_validator("thresholds")
    @classmethod
    def _ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (warn, alert) in value.items():
            if warn > alert:
                raise ValueError(f"{name}: the yellow threshold {warn} exceeds the red one {alert}")
        return value


class ProjectConfig(StrictModel):
    """The whole `config.yaml`."""

    dataset: DatasetConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @model_validator(mode="after")
    def _columns_consistent(self) -> ProjectConfig:
        data = self.dataset
        roles = [*(data.numeric or []), *(data.categorical or []), *data.ordinal]
        if data.target in roles:
            raise ValueError(f"dataset.target '{data.target}' is also listed as a feature")
        repeated = sorted({c for c in roles if roles.count(c) > 1})
        if repeated:
            raise ValueError(f"columns listed under more than one role: {repeated}")
        if data.task == "regression" and data.positive_class is not None:
            raise ValueError("dataset.positive_class only applies to classification")
        return self


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: Path | str) -> ProjectConfig:
    """Read and validate a config file; relative data paths resolve from the file's folder.

    Raises:
        ConfigError: naming the missing file, the YAML error or each invalid key.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must contain a mapping with a 'dataset' section")
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}:\n{_format_errors(exc)}") from exc
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
    """Settings from the environment, with explicit overrides (used by CLIs and tests)."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


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
