"""Feature engineering: load, clean, validate, derive features, preprocess and split.

Everything serving needs (missing-token unification, type coercion, derived features,
imputation, scaling, encoding) lives in transformers that end up inside the fitted Pipeline, so
training, the API and the batch scorer can never disagree. Reading and cleaning (and the two
cleaning transformers) are in `cleaning.py`.

CLI: ``python mlops_pipeline/src/ft_engineering.py [--config PATH]`` prints a data summary and
the validation report.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import expressions
import registry
from cleaning import (
    ColumnCleaner,
    DerivedFeatures,
    as_category_column,
    as_category_text,
    coerce_types,
    count_unparseable,
    read_csv,
    sniff_csv_format,
    unify_missing,
)
from settings import (
    ConfigError,
    DatasetConfig,
    ProjectConfig,
    SplitConfig,
    get_settings,
    unknown,
)

__all__ = [  # the cleaning functions are defined in cleaning.py; callers reach them here too
    "ColumnCleaner", "DerivedFeatures", "as_category_column", "as_category_text", "coerce_types",
    "count_unparseable", "read_csv", "sniff_csv_format", "unify_missing",
    "Roles", "Dataset", "Split", "infer_roles", "infer_task", "derived_columns", "load_data",
    "validate_data", "model_metadata", "build_preprocessor", "preprocessor_from_config", "split_data",
    "feature_schema",
    "load_project_data", "summarize_data", "main",
]  # fmt: skip

logger = logging.getLogger(__name__)

MISSING_CATEGORY = "__missing__"
ID_LIKE_MIN_ROWS = 50
NUMERIC_TEXT_MIN_SHARE = 0.9
MOSTLY_NUMERIC_SHARE = 0.5
MAX_CLASSES_FOR_NUMERIC_TARGET = 10


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- cleaning


# --------------------------------------------------------------------------- roles
@dataclass(frozen=True)
class Roles:
    """Which raw columns are features of which kind, and why others were left out."""

    numeric: list[str]
    categorical: list[str]
    ordinal: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.ordinal]


def numeric_share(values: pd.Series) -> float:
    """Share of the present values of a text column that read as numbers (decimal comma accepted)."""
    present = values.dropna()
    if present.empty or values.dtype != object:
        return 0.0
    parsed = pd.to_numeric(present.astype(str).str.replace(",", ".", regex=False), errors="coerce")
    return float(parsed.notna().mean())


def _looks_numeric_text(values: pd.Series) -> bool:
    return numeric_share(values) >= NUMERIC_TEXT_MIN_SHARE


def _is_numeric_column(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    return pd.api.types.is_numeric_dtype(values) or _looks_numeric_text(values)


def infer_roles(df: pd.DataFrame, dataset: DatasetConfig) -> Roles:
    """Column roles from config, inferring what it leaves out.

    Configured lists are taken as they are. Unlisted columns are inferred: numbers (or text that
    is at least 90% numbers) are numeric, the rest categorical; constant columns and ID-like
    columns (a distinct non-float value on every row) are dropped with a reason.
    """
    for key in ("numeric", "categorical", "ordinal"):
        absent = [column for column in getattr(dataset, key) or [] if column not in df]
        if absent:
            raise ConfigError(f"dataset.{key}: {unknown(absent[0], df.columns)}")
    numeric = list(dataset.numeric or [])
    categorical = list(dataset.categorical or [])
    if dataset.numeric is not None and dataset.categorical is not None:
        return Roles(numeric, categorical, dict(dataset.ordinal))
    taken = {
        dataset.target,
        *dataset.drop_columns,
        *numeric,
        *categorical,
        *dataset.ordinal,
    }
    dropped: dict[str, str] = {}
    for column in (c for c in df.columns if c not in taken):
        values = df[column]
        if values.nunique(dropna=True) <= 1:
            dropped[column] = "constante"
        elif (
            len(values) >= ID_LIKE_MIN_ROWS
            and values.nunique(dropna=False) == len(values)
            and not pd.api.types.is_float_dtype(values)
        ):
            dropped[column] = "parece un identificador (un valor distinto en cada fila)"
        else:
            kind = "numeric" if _is_numeric_column(values) else "categorical"
            inferred = numeric if kind == "numeric" else categorical
            if getattr(dataset, kind) is None:
                inferred.append(column)
            else:
                word = "numérica" if kind == "numeric" else "categórica"
                dropped[column] = f"parece {word} pero dataset.{kind} no la lista"
    return Roles(numeric, categorical, dict(dataset.ordinal), dropped)


def infer_task(y: pd.Series) -> str:
    """Classification for text/boolean targets or few distinct integers, else regression."""
    values = y.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    integral = np.all(np.mod(values, 1) == 0)
    return (
        "classification" if integral and values.nunique() <= MAX_CLASSES_FOR_NUMERIC_TARGET else "regression"
    )


# --------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class Dataset:
    """A loaded, cleaned table with its feature roles and target description."""

    frame: pd.DataFrame
    roles: Roles
    target: str
    task: str
    classes: list[str]
    positive_class: str | None
    notes: list[str]

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[self.roles.features]

    @property
    def y(self) -> pd.Series:
        return self.frame[self.target]


def _clean_target(y: pd.Series, task: str) -> pd.Series:
    if task == "regression":
        return pd.to_numeric(y, errors="coerce").astype(float)
    return as_category_column(y)


def _resolve_positive_class(classes: list[str], configured: str | None) -> str | None:
    if len(classes) != 2:
        return None
    if configured is None:
        return classes[1]
    if configured not in classes:
        raise ConfigError(f"dataset.positive_class: {unknown(configured, classes, 'una clase del objetivo')}")
    return configured


def derived_columns(expression: str) -> set[str]:
    """The raw column names a derived-feature expression reads.

    Raises:
        ValueError: for a syntax error or a construct the expressions do not support.
    """
    return set(expressions.parse(expression).columns)


def _check_derived_columns(derived: dict[str, str], features: list[str]) -> None:
    """Each derived expression reads only features, or derived features defined before it."""
    available = set(features)
    for name, expression in derived.items():
        absent = sorted(derived_columns(expression) - available)
        if absent:
            raise ConfigError(
                f"dataset.derived.{name}: en la expresión '{expression}', "
                f"{unknown(absent[0], sorted(available), 'una variable del modelo')}"
            )
        available.add(name)


def _check_rules(dataset: DatasetConfig, roles: Roles, task: str) -> None:
    """Each validation rule names a feature (or the target) of the right kind: ranges for numbers,
    allowed categories for categories."""
    numbers = [*roles.numeric, *([dataset.target] if task == "regression" else [])]
    categories = [*roles.categorical, *roles.ordinal, *([dataset.target] if task != "regression" else [])]
    rules = dataset.validation
    for key, named, fitting, other in (
        ("ranges", rules.ranges, numbers, "categories"),
        ("categories", rules.categories, categories, "ranges"),
    ):
        for column in named:
            if column in fitting:
                continue
            if column in [*numbers, *categories]:
                kind = "numérica" if column in numbers else "categórica"
                raise ConfigError(
                    f"dataset.validation.{key}.{column}: '{column}' es {kind}; su regla va en "
                    f"dataset.validation.{other}"
                )
            raise ConfigError(
                f"dataset.validation.{key}.{column}: {unknown(column, [*numbers, *categories])}"
            )


def _read_dataset(path: Path) -> pd.DataFrame:
    """The configured CSV, or a Spanish `ConfigError` naming ``dataset.path``."""
    if not path.is_file():
        raise ConfigError(
            f"dataset.path: no existe el archivo {path}; escriba la ruta del CSV (relativa al config)"
        )
    try:
        return read_csv(path)
    except ValueError as exc:  # empty, malformed or not text
        logger.info("cannot read %s: %s", path, exc)
        raise ConfigError(f"dataset.path: {path} no se puede leer como CSV (vacío o mal formado)") from exc


def _load_notes(raw: pd.DataFrame, roles: Roles) -> list[str]:
    """What loading did to the columns, for the user (Spanish): dropped columns, stray text, and
    categorical columns that are mostly numbers."""
    notes = [f"columna '{c}' descartada: {reason}" for c, reason in roles.dropped.items()]
    notes += [
        f"columna '{c}': {n} valores no numéricos pasan a faltantes"
        for c, n in count_unparseable(raw, roles.numeric).items()
    ]
    notes += [
        f"la columna '{c}' tiene {share:.0%} de números pero se usa como categórica: si es un número, "
        "liste sus otros tokens en dataset.na_values (o la columna en dataset.numeric)"
        for c in roles.categorical
        if (share := numeric_share(raw[c])) >= MOSTLY_NUMERIC_SHARE
    ]
    return notes


def load_data(dataset: DatasetConfig) -> Dataset:
    """Load the configured CSV: drop configured/irrelevant columns, unify nulls, coerce types.

    Rows whose target is missing are dropped (and counted in ``notes``); no other row is dropped.
    """
    raw = unify_missing(_read_dataset(dataset.path), dataset.na_values)
    if dataset.target not in raw:
        raise ConfigError(f"dataset.target: {unknown(dataset.target, raw.columns)}")
    absent = [c for c in dataset.drop_columns if c not in raw]
    if absent:
        raise ConfigError(f"dataset.drop_columns: {unknown(absent[0], raw.columns)}")
    raw = raw.drop(columns=dataset.drop_columns)
    roles = infer_roles(raw, dataset)
    if not roles.features:
        raise ConfigError(
            "dataset: ninguna columna quedó como variable (descartadas: "
            f"{', '.join(f'{c} por {why}' for c, why in roles.dropped.items()) or 'ninguna'}); "
            "liste las variables en dataset.numeric y dataset.categorical"
        )
    _check_derived_columns(dataset.derived, roles.features)
    task = dataset.task or infer_task(raw[dataset.target])
    _check_rules(dataset, roles, task)
    notes = _load_notes(raw, roles)
    frame = coerce_types(raw, roles.numeric, [*roles.categorical, *roles.ordinal])
    frame[dataset.target] = _clean_target(frame[dataset.target], task)
    no_target = int(frame[dataset.target].isna().sum())
    if no_target:
        notes.append(f"se descartaron {no_target} filas sin valor en la variable objetivo")
        frame = frame[frame[dataset.target].notna()].reset_index(drop=True)
    frame = frame[[*roles.features, dataset.target]]
    classes = sorted(frame[dataset.target].unique().tolist()) if task == "classification" else []
    positive = _resolve_positive_class(classes, dataset.positive_class) if task == "classification" else None
    for note in notes:
        logger.info(note)
    return Dataset(frame, roles, dataset.target, task, classes, positive, notes)


# --------------------------------------------------------------------------- validation
REPORT_COLUMNS = ["check", "column", "violations", "share", "detail"]


def _range_violations(frame: pd.DataFrame, dataset: DatasetConfig) -> list[tuple[str, str, int, str]]:
    """(check, column, count, detail) for values outside the configured ranges and categories."""
    found = []
    for column, bounds in dataset.validation.ranges.items():
        if column in frame:
            values = pd.to_numeric(frame[column], errors="coerce")
            if bounds.min is not None:
                found.append(
                    ("range", column, (values < bounds.min).sum(), f"por debajo del mínimo {bounds.min:g}")
                )
            if bounds.max is not None:
                found.append(
                    ("range", column, (values > bounds.max).sum(), f"por encima del máximo {bounds.max:g}")
                )
    for column, allowed in dataset.validation.categories.items():
        if column in frame:
            present = frame[column].dropna().astype(str)
            unknown = present[~present.isin(allowed)]
            detail = f"valores no permitidos: {sorted(unknown.unique())[:5]}"
            found.append(("allowed_categories", column, len(unknown), detail))
    return found


def validate_data(frame: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """Check the validation rules; return one row per violated rule (rows are kept, not dropped).

    Columns of the report: ``check, column, violations, share, detail`` (``check`` is a code,
    ``detail`` Spanish text for the user).
    """
    n = max(len(frame), 1)
    limit = dataset.validation.max_missing_share
    expected = [*(dataset.numeric or []), *(dataset.categorical or []), *dataset.ordinal, dataset.target]
    found = [("required_column", c, 0 if c in frame else n, "falta la columna") for c in expected]
    found += _range_violations(frame, dataset)
    missing = frame.isna().mean()
    found += [
        ("missing_share", c, frame[c].isna().sum(), f"{share:.0%} de faltantes (límite {limit:.0%})")
        for c, share in missing.items()
        if share > limit
    ]
    found.append(("duplicate_rows", "*", frame.duplicated().sum(), "filas idénticas"))
    rows = [(check, column, int(count), count / n, detail) for check, column, count, detail in found if count]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


# --------------------------------------------------------------------------- transformers


def build_preprocessor(
    roles: Roles,
    na_values: list[str] | None = None,
    derived: dict[str, str] | None = None,
    rare_category_share: float = 0.01,
    max_categories: int = 30,
) -> Pipeline:
    """The unfitted preprocessing pipeline: clean -> derive -> ColumnTransformer.

    Numeric (raw and derived): median imputation with missing indicators, then scaling.
    Categorical: a constant "missing" level, then one-hot; rare levels (below
    ``rare_category_share``, or beyond ``max_categories``) are grouped as infrequent, and
    categories never seen in training go to that group (or to all zeros).
    Ordinal: most-frequent imputation, then the configured order (unknown levels become -1).
    """
    numeric_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
    )
    onehot = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=rare_category_share or None,
        max_categories=max_categories,
        sparse_output=False,
    )
    categorical_steps = Pipeline(
        [("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)), ("onehot", onehot)]
    )
    transformers = [
        ("numeric", numeric_steps, [*roles.numeric, *(derived or {})]),
        ("categorical", categorical_steps, roles.categorical),
    ]
    if roles.ordinal:
        levels = list(roles.ordinal.values())
        encode = OrdinalEncoder(categories=levels, handle_unknown="use_encoded_value", unknown_value=-1)
        ordinal_steps = Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", encode)])
        transformers.append(("ordinal", ordinal_steps, list(roles.ordinal)))
    columns = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    cleaner = ColumnCleaner(na_values, roles.numeric, [*roles.categorical, *roles.ordinal])
    return Pipeline([("clean", cleaner), ("derive", DerivedFeatures(derived or None)), ("columns", columns)])


def preprocessor_from_config(roles: Roles, dataset: DatasetConfig) -> Pipeline:
    """`build_preprocessor` with the options the config gives."""
    return build_preprocessor(
        roles,
        na_values=dataset.na_values,
        derived=dataset.derived,
        rare_category_share=dataset.rare_category_share,
        max_categories=dataset.max_categories,
    )


# --------------------------------------------------------------------------- split and schema
@dataclass(frozen=True)
class Split:
    """Train and test partitions of features and target."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split_data(data: Dataset, split: SplitConfig) -> Split:
    """Seeded train/test split, stratified on the target for classification when configured."""
    stratify = data.y if (split.stratify and data.task == "classification") else None
    X_train, X_test, y_train, y_test = train_test_split(
        data.X,
        data.y,
        test_size=split.test_size,
        random_state=split.seed,
        stratify=stratify,
    )
    return Split(X_train, X_test, y_train, y_test)


def feature_schema(X: pd.DataFrame, roles: Roles) -> list[dict]:
    """Describe each raw feature for serving and monitoring: name, kind, type, categories, range."""
    schema = []
    for column in roles.features:
        values = X[column]
        entry: dict = {"name": column, "missing_share": float(values.isna().mean())}
        if column in roles.numeric:
            present = values.dropna()
            integral = bool(len(present)) and bool(np.all(np.mod(present, 1) == 0))
            entry |= {
                "kind": "numeric",
                "dtype": "integer" if integral else "number",
                "min": float(present.min()) if len(present) else None,
                "max": float(present.max()) if len(present) else None,
                "example": float(present.median()) if len(present) else None,
            }
        else:
            levels = roles.ordinal.get(column) or sorted(values.dropna().astype(str).unique().tolist())
            kind = "ordinal" if column in roles.ordinal else "categorical"
            mode = values.mode(dropna=True)
            entry |= {
                "kind": kind,
                "dtype": "string",
                "categories": levels,
                "example": mode.iloc[0] if len(mode) else None,
            }
        schema.append(entry)
    return schema


def model_metadata(data: Dataset, X: pd.DataFrame, **fields) -> registry.ModelMetadata:
    """The metadata contract of a model fitted on ``X`` of ``data`` (what a hand-built version needs:
    task, classes, roles, feature schema, and a 0.5 threshold for binary tasks); ``fields`` add to it."""
    roles = {
        "numeric": data.roles.numeric,
        "categorical": data.roles.categorical,
        "ordinal": data.roles.ordinal,
    }
    contract = {
        "task": data.task,
        "target": data.target,
        "classes": data.classes,
        "positive_class": data.positive_class,
        "threshold": 0.5 if data.positive_class else None,
        "features": feature_schema(X, data.roles),
        "roles": roles,
    }
    return registry.ModelMetadata.model_validate(contract | fields)


def load_project_data(config: ProjectConfig) -> tuple[Dataset, pd.DataFrame]:
    """Load the configured dataset and check its validation rules, logging a summary."""
    data = load_data(config.dataset)
    report = validate_data(data.frame, config.dataset)
    logger.info(
        "loaded %d rows, %d features, task=%s",
        len(data.frame),
        len(data.roles.features),
        data.task,
    )
    if not report.empty:
        logger.warning(
            "validation found %d rule violations (rows kept)",
            int(report["violations"].sum()),
        )
    return data, report


def summarize_data(data: Dataset) -> pd.DataFrame:
    """One row per column: role, type, missing share, distinct values, and min/max for numbers."""
    kinds = {c: "numeric" for c in data.roles.numeric} | {c: "categorical" for c in data.roles.categorical}
    kinds |= {c: "ordinal" for c in data.roles.ordinal} | {data.target: "target"}
    frame = data.frame
    return pd.DataFrame(
        {
            "role": [kinds[c] for c in frame.columns],
            "dtype": frame.dtypes.astype(str).values,
            "missing_share": frame.isna().mean().round(4).values,
            "distinct": frame.nunique().values,
            "min": [frame[c].min() if c in data.roles.numeric else None for c in frame.columns],
            "max": [frame[c].max() if c in data.roles.numeric else None for c in frame.columns],
        },
        index=frame.columns,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: print a data summary and the validation report."""
    parser = argparse.ArgumentParser(description="Resumen de los datos configurados y reporte de validación.")
    parser.add_argument(
        "--config",
        type=Path,
        help="archivo de configuración (por defecto MLOPS_CONFIG o mlops_pipeline/config.yaml)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = get_settings(mlops_config=args.config).config
        data, report = load_project_data(config)
    except ConfigError as exc:
        print(f"Error de configuración: {exc}")
        return 2
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(f"\nDataset: {config.dataset.path}  ({len(data.frame)} filas)")
        classes = data.classes or "-"
        print(
            f"Tarea: {data.task}; objetivo: {data.target}; clases: {classes}; positiva: {data.positive_class}"
        )
        for note in data.notes:
            print(f"Nota: {note}")
        print("\nResumen de columnas:\n", summarize_data(data).to_string(), sep="")
        print("\nReporte de validación:")
        print(report.to_string(index=False) if not report.empty else "  sin violaciones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
