"""Feature engineering: load, clean, validate, derive features, preprocess and split.

Everything serving needs (missing-token unification, type coercion, derived features,
imputation, scaling, encoding) lives in transformers that end up inside the fitted Pipeline, so
training, the API and the batch scorer can never disagree.

CLI: ``python mlops_pipeline/src/ft_engineering.py [--config PATH]`` prints a data summary and
the validation report.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils import validation as sk_validation

import expressions
from settings import ConfigError, DatasetConfig, ProjectConfig, SplitConfig, get_settings

logger = logging.getLogger(__name__)

MISSING_CATEGORY = "__missing__"
ID_LIKE_MIN_ROWS = 50
NUMERIC_TEXT_MIN_SHARE = 0.9
MOSTLY_NUMERIC_SHARE = 0.5
MAX_CLASSES_FOR_NUMERIC_TARGET = 10


# --------------------------------------------------------------------------- reading
def sniff_csv_format(sample: str) -> dict[str, str | None]:
    """`read_csv` options for ``sample``: Spanish Excel's ``;`` with decimal commas and thousands
    dots, or plain ``,`` with decimal points."""
    header = sample.lstrip("\ufeff").splitlines()[0] if sample.strip() else ""
    if header.count(";") > header.count(","):
        return {"sep": ";", "decimal": ",", "thousands": "."}
    return {"sep": ",", "decimal": ".", "thousands": None}


def read_csv(source: Path | str | IO[str], na_values: list[str] | None = None, **kwargs) -> pd.DataFrame:
    """Read a comma- or semicolon-separated CSV (with or without a BOM) into a DataFrame.

    Args:
        source: a path or an open text stream.
        na_values: extra tokens that mean missing.
        **kwargs: passed to `pandas.read_csv` (e.g. ``chunksize``).

    Raises:
        ValueError: for an empty or malformed file, with pandas' reason.
    """
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8-sig", newline="") as handle:
            sample = handle.read(64 * 1024)
        stream: Path | IO[str] = Path(source)
    else:
        sample = source.read(64 * 1024)
        stream = io.StringIO(sample + source.read()) if not source.seekable() else source
        if source.seekable():
            source.seek(0)
    if not sample.strip():
        raise ValueError("the CSV is empty")
    try:
        return pd.read_csv(
            stream,
            **sniff_csv_format(sample),
            na_values=na_values or [],
            encoding="utf-8-sig",
            skipinitialspace=True,
            **kwargs,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed CSV: {exc}") from exc


# --------------------------------------------------------------------------- cleaning
TEXT_KINDS = {"string", "mixed", "mixed-integer"}
"""`pandas.api.types.infer_dtype` kinds of columns that hold at least some text."""

FACTORIZABLE_KINDS = {"string", "boolean", "integer", "floating", "mixed-integer-float", "empty"}
"""Kinds whose equal values spell alike, so that `pandas.factorize` may merge them: unlike a column
mixing booleans and numbers, where ``True == 1`` and the two must stay ``"True"`` and ``"1"``."""


def _may_hold_text(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype)


def _text_kind(values: pd.Series) -> str | None:
    """The `infer_dtype` kind of a column that may hold text, else None (numbers, booleans...)."""
    return pd.api.types.infer_dtype(values, skipna=True) if _may_hold_text(values) else None


def _unify_text(
    values: pd.Series, lowered: set[str], known: np.ndarray | None = None
) -> tuple[np.ndarray, bool]:
    """Strip the text cells of one column and blank its tokens; missing cells become NaN and other
    cells are kept as they are. Returns the new cells and whether all present ones are text.

    The text work runs once per distinct value, not once per cell, and not at all for cells that
    hold one of the ``known`` clean spellings (one hash lookup per cell).
    """
    array = values.to_numpy()
    todo = slice(None) if known is None else np.flatnonzero(~np.asarray(values.isin(known), dtype=bool))
    codes, uniques = pd.factorize(array[todo])  # missing values (None, NaN, pd.NA) get code -1
    stripped = [value.strip() if isinstance(value, str) else None for value in uniques]
    spelled = [np.nan if text is None or text.lower() in lowered else text for text in stripped]
    lookup = np.array([*spelled, np.nan], dtype=object)  # the last one is for code -1
    cells = lookup[codes]
    others = np.array([text is None for text in stripped] + [False])  # present values that are not text
    if others.any():
        cells = np.where(others[codes], array[todo], cells)
    if known is not None:
        cells, done = array.copy(), cells
        cells[todo] = done
    return cells, not others.any()


def _data(values: pd.Series):
    """A column's numpy array, or its pandas extension array (nullable integers, categoricals...)."""
    return values.array if pd.api.types.is_extension_array_dtype(values.dtype) else values.to_numpy()


def _with_columns(df: pd.DataFrame, changed: dict, consolidate: bool = False) -> pd.DataFrame:
    """A new frame with ``df``'s columns, the ``changed`` ones (arrays) replaced or added at the end.

    Unchanged columns are copied: the result never shares memory with ``df``. With ``consolidate``
    every column is copied into one block per dtype, which costs more here but makes the
    ColumnTransformer downstream faster (it takes its columns from one float block, not 14).
    """
    data = {}
    for column in df.columns:
        if column in changed:
            data[column] = changed[column]
        else:
            data[column] = _data(df[column]) if consolidate else _data(df[column]).copy()
    return pd.DataFrame(data | changed, index=df.index, copy=consolidate)


def unify_missing(df: pd.DataFrame, tokens: list[str]) -> pd.DataFrame:
    """Strip text cells and turn every missing-value token (case-insensitive) into NaN.

    Only columns holding text are touched: a number can never be a token.
    """
    lowered = {token.strip().lower() for token in tokens} | {""}
    text = [column for column in df.columns if _text_kind(df[column]) in TEXT_KINDS]
    return _with_columns(df, {column: _unify_text(df[column], lowered)[0] for column in text})


def as_category_text(value: object) -> object:
    """One spelling per category: 1, 1.0 and "1" all become "1"; booleans become "True"/"False"."""
    if not isinstance(value, str) and pd.isna(value):
        return np.nan
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def as_category_column(values: pd.Series) -> pd.Series:
    """`as_category_text` over a column, spelled once per distinct value when that is safe."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if values.dtype == object and kind == "string":
        return values
    if values.dtype == object and kind not in FACTORIZABLE_KINDS:
        return values.map(as_category_text).astype(object)
    codes, uniques = pd.factorize(values)
    lookup = np.array([*(as_category_text(value) for value in uniques), np.nan], dtype=object)
    return pd.Series(lookup[codes], index=values.index, name=values.name)


def _float_cells(values: pd.Series) -> np.ndarray | None:
    """A column as a new float array (unparseable text becomes NaN), or None if it is one already."""
    if values.dtype == np.float64:
        return None
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":  # plain integers, booleans
        return values.to_numpy(dtype=np.float64)
    return pd.to_numeric(values, errors="coerce").astype(float).to_numpy()


def _category_cells(values: pd.Series) -> np.ndarray | None:
    """A column as one spelling per category, or None if it is spelled so already."""
    spelled = as_category_column(values)
    return None if spelled is values else spelled.to_numpy()


def coerce_types(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric columns to float (unparseable text becomes NaN), categorical ones to text."""
    coercions = {column: _float_cells for column in numeric}
    coercions |= {column: _category_cells for column in categorical}
    changed = {column: coercions[column](df[column]) for column in coercions if column in df}
    return _with_columns(df, {column: cells for column, cells in changed.items() if cells is not None})


def _clean_frame(
    df: pd.DataFrame, tokens: list[str], numeric: list[str], categorical: list[str], known: dict | None = None
) -> pd.DataFrame:
    """`unify_missing` then `coerce_types`, in one pass over the columns, building the frame once.

    ``known`` maps text columns to clean spellings seen before (`ColumnCleaner.spellings_`).
    """
    lowered = {token.strip().lower() for token in tokens} | {""}
    numbers, categories, known = set(numeric), set(categorical), known or {}
    changed = {}
    for column in df.columns:
        values, all_text = df[column], False
        # with known spellings the kind scan is not needed: the other cells are checked one by one
        holds_text = _may_hold_text(values) if column in known else _text_kind(values) in TEXT_KINDS
        if holds_text:
            changed[column], all_text = _unify_text(values, lowered, known.get(column))
            values = pd.Series(changed[column], index=df.index, name=column)
        if column in numbers:
            cells = _float_cells(values)
        elif column in categories and not all_text:  # unified text is already one spelling
            cells = _category_cells(values)
        else:
            continue
        if cells is not None:
            changed[column] = cells
    return _with_columns(df, changed)


def count_unparseable(df: pd.DataFrame, numeric: list[str]) -> dict[str, int]:
    """Per numeric column, how many present values are not numbers (stray tokens)."""
    counts = {}
    for column in numeric:
        if column in df:
            present = df[column].notna()
            parsed = pd.to_numeric(df[column], errors="coerce").notna()
            bad = int((present & ~parsed).sum())
            if bad:
                counts[column] = bad
    return counts


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
    missing = [c for c in [*(dataset.numeric or []), *(dataset.categorical or []), *dataset.ordinal] if c not in df]
    if missing:
        raise ConfigError(f"dataset: configured columns not in the data: {missing}")
    numeric = list(dataset.numeric or [])
    categorical = list(dataset.categorical or [])
    if dataset.numeric is not None and dataset.categorical is not None:
        return Roles(numeric, categorical, dict(dataset.ordinal))
    taken = {dataset.target, *dataset.drop_columns, *numeric, *categorical, *dataset.ordinal}
    dropped: dict[str, str] = {}
    for column in (c for c in df.columns if c not in taken):
        values = df[column]
        if values.nunique(dropna=True) <= 1:
            dropped[column] = "constant"
        elif (
            len(values) >= ID_LIKE_MIN_ROWS
            and values.nunique(dropna=False) == len(values)
            and not pd.api.types.is_float_dtype(values)
        ):
            dropped[column] = "id-like (unique on every row)"
        else:
            kind = "numeric" if _is_numeric_column(values) else "categorical"
            inferred = numeric if kind == "numeric" else categorical
            if getattr(dataset, kind) is None:
                inferred.append(column)
            else:
                dropped[column] = f"looks {kind} but dataset.{kind} does not list it"
    return Roles(numeric, categorical, dict(dataset.ordinal), dropped)


def infer_task(y: pd.Series) -> str:
    """Classification for text/boolean targets or few distinct integers, else regression."""
    values = y.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    integral = np.all(np.mod(values, 1) == 0)
    return "classification" if integral and values.nunique() <= MAX_CLASSES_FOR_NUMERIC_TARGET else "regression"


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
        raise ConfigError(f"dataset.positive_class '{configured}' is not a target value; found {classes}")
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
        unknown = sorted(derived_columns(expression) - available)
        if unknown:
            raise ConfigError(
                f"dataset.derived.{name}: la expresión '{expression}' usa columnas que no son variables "
                f"del modelo: {unknown}"
            )
        available.add(name)


def load_data(dataset: DatasetConfig) -> Dataset:
    """Load the configured CSV: drop configured/irrelevant columns, unify nulls, coerce types.

    Rows whose target is missing are dropped (and counted in ``notes``); no other row is dropped.
    """
    if not dataset.path.is_file():
        raise ConfigError(f"dataset.path: file not found: {dataset.path}")
    raw = unify_missing(read_csv(dataset.path), dataset.na_values)
    if dataset.target not in raw:
        raise ConfigError(f"dataset.target '{dataset.target}' is not a column; columns are {list(raw.columns)}")
    absent = [c for c in dataset.drop_columns if c not in raw]
    if absent:
        raise ConfigError(f"dataset.drop_columns: not in the data: {absent}")
    raw = raw.drop(columns=dataset.drop_columns)
    roles = infer_roles(raw, dataset)
    _check_derived_columns(dataset.derived, roles.features)
    notes = [f"column '{c}' dropped: {reason}" for c, reason in roles.dropped.items()]
    notes += [f"column '{c}': {n} non-numeric values set to missing" for c, n in count_unparseable(raw, roles.numeric).items()]
    notes += [
        f"column '{c}' is {share:.0%} numbers but is used as categorical: list its other tokens in "
        "dataset.na_values (or the column in dataset.numeric) if it is a number"
        for c in roles.categorical
        if (share := numeric_share(raw[c])) >= MOSTLY_NUMERIC_SHARE
    ]
    task = dataset.task or infer_task(raw[dataset.target])
    frame = coerce_types(raw, roles.numeric, [*roles.categorical, *roles.ordinal])
    frame[dataset.target] = _clean_target(frame[dataset.target], task)
    no_target = int(frame[dataset.target].isna().sum())
    if no_target:
        notes.append(f"{no_target} rows without a target value dropped")
        frame = frame[frame[dataset.target].notna()].reset_index(drop=True)
    frame = frame[[*roles.features, dataset.target]]
    classes = sorted(frame[dataset.target].unique().tolist()) if task == "classification" else []
    positive = _resolve_positive_class(classes, dataset.positive_class) if task == "classification" else None
    for note in notes:
        logger.info(note)
    return Dataset(frame, roles, dataset.target, task, classes, positive, notes)


# --------------------------------------------------------------------------- validation
def validate_data(frame: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """Check the validation rules; return one row per violated rule (rows are kept, not dropped).

    Columns of the report: ``check, column, violations, share, detail``.
    """
    rules = dataset.validation
    rows = []
    n = max(len(frame), 1)

    def add(check: str, column: str, count: int, detail: str) -> None:
        if count:
            rows.append({"check": check, "column": column, "violations": int(count), "share": count / n, "detail": detail})

    expected = [*(dataset.numeric or []), *(dataset.categorical or []), *dataset.ordinal, dataset.target]
    for column in expected:
        add("required_column", column, 0 if column in frame else n, "column is missing")
    for column, bounds in rules.ranges.items():
        if column in frame:
            values = pd.to_numeric(frame[column], errors="coerce")
            if bounds.min is not None:
                add("range", column, (values < bounds.min).sum(), f"below minimum {bounds.min:g}")
            if bounds.max is not None:
                add("range", column, (values > bounds.max).sum(), f"above maximum {bounds.max:g}")
    for column, allowed in rules.categories.items():
        if column in frame:
            present = frame[column].dropna().astype(str)
            unknown = present[~present.isin(allowed)]
            add("allowed_categories", column, len(unknown), f"unexpected values: {sorted(unknown.unique())[:5]}")
    for column in frame.columns:
        share = frame[column].isna().mean()
        if share > rules.max_missing_share:
            add("missing_share", column, frame[column].isna().sum(), f"{share:.0%} missing (limit {rules.max_missing_share:.0%})")
    add("duplicate_rows", "*", frame.duplicated().sum(), "identical rows")
    return pd.DataFrame(rows, columns=["check", "column", "violations", "share", "detail"])


# --------------------------------------------------------------------------- transformers
class ColumnCleaner(TransformerMixin, BaseEstimator):
    """Unify missing-value tokens and coerce column types, as `load_data` does.

    It is the first step of every fitted pipeline so that a request sending ``"ignore"`` or
    ``"12"`` is read exactly as the training data was.

    Parameters
    ----------
    na_values : list of str, default=None
        Tokens that mean missing.
    numeric : list of str, default=None
        Columns coerced to float.
    categorical : list of str, default=None
        Columns coerced to text.

    Attributes
    ----------
    spellings_ : dict of str to ndarray
        The clean values of each categorical text column at fit. A cell holding one of them is
        kept as it is; only the other cells are stripped and checked against the tokens.
    """

    def __init__(self, na_values=None, numeric=None, categorical=None):
        self.na_values = na_values
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, X, y=None):
        frame = _validated_frame(self, X, reset=True)
        cleaned = _clean_frame(frame, self.na_values or [], self.numeric or [], self.categorical or [])
        text = [c for c in self.categorical or [] if c in cleaned and _text_kind(cleaned[c]) == "string"]
        self.spellings_ = {column: cleaned[column].dropna().unique() for column in text}
        return self

    def transform(self, X):
        sk_validation.check_is_fitted(self)
        frame = _validated_frame(self, X, reset=False)
        tokens, numeric, categorical = self.na_values or [], self.numeric or [], self.categorical or []
        return _like_input(X, _clean_frame(frame, tokens, numeric, categorical, self.spellings_))

    def get_feature_names_out(self, input_features=None):
        sk_validation.check_is_fitted(self)
        return self.feature_names_in_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Add columns computed from arithmetic expressions over raw columns (see `expressions`).

    Each expression is parsed once, at fit, and evaluated with numpy on whole columns. An
    expression may read the features defined before it. Division by zero gives infinity, which
    becomes NaN for the imputer downstream.

    Parameters
    ----------
    expressions : dict of str to str, default=None
        New column name -> expression, e.g. ``{"loan_to_price": "Amount / Price"}``.

    Attributes
    ----------
    parsed_ : dict of str to expressions.Expression
        The parsed expressions, in order.
    """

    def __init__(self, expressions=None):
        self.expressions = expressions

    def fit(self, X, y=None):
        frame = _validated_frame(self, X, reset=True)
        available = set(frame.columns)
        self.parsed_ = {}
        for name, text in (self.expressions or {}).items():
            try:
                parsed = expressions.parse(text)
            except ValueError as exc:
                raise ValueError(f"derived feature '{name}' = '{text}' is not valid: {exc}") from None
            unknown = sorted(parsed.columns - available)
            if unknown:
                raise ValueError(f"derived feature '{name}' = '{text}' reads unknown columns: {unknown}")
            self.parsed_[name] = parsed
            available.add(name)
        self.transform(frame)  # a non-numeric column fails here, not at the first prediction
        return self

    def transform(self, X):
        sk_validation.check_is_fitted(self)
        frame = _validated_frame(self, X, reset=False)
        if not self.parsed_:
            return _like_input(X, frame)
        columns: dict = {}  # name -> float array, each converted once
        derived = {}
        with np.errstate(all="ignore"):
            for name, parsed in self.parsed_.items():
                for column in parsed.columns - columns.keys():
                    columns[column] = _float_column(frame[column], name, parsed.text, column)
                values = np.broadcast_to(parsed.evaluate(columns), (len(frame),))
                derived[name] = columns[name] = np.where(np.isinf(values), np.nan, values)
        return _like_input(X, _with_columns(frame, derived, consolidate=True))

    def get_feature_names_out(self, input_features=None):
        sk_validation.check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, *(self.expressions or {})], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def _float_column(values: pd.Series, name: str, text: str, column: object) -> np.ndarray:
    """One column as floats for the derived feature ``name`` (missing values become NaN)."""
    try:
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        message = f"derived feature '{name}' = '{text}': column '{column}' is not numeric ({exc})"
        raise ValueError(message) from None


def _like_input(X, frame: pd.DataFrame):
    """DataFrames in, DataFrames out; arrays in, arrays out (as scikit-learn transformers do)."""
    return frame if isinstance(X, pd.DataFrame) else frame.to_numpy()


def _validated_frame(estimator: BaseEstimator, X, *, reset: bool) -> pd.DataFrame:
    """Check ``X`` the scikit-learn way (feature count and names) and return it as a DataFrame."""
    if isinstance(X, pd.DataFrame):
        sk_validation.validate_data(estimator, X, reset=reset, skip_check_array=True)
        return X
    return pd.DataFrame(sk_validation.validate_data(estimator, X, reset=reset, dtype=None, ensure_all_finite=False))


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
    numeric = [*roles.numeric, *(derived or {})]
    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())])
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=rare_category_share or None,
                    max_categories=max_categories,
                    sparse_output=False,
                ),
            ),
        ]
    )
    transformers = [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, roles.categorical)]
    if roles.ordinal:
        ordinal_steps = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                (
                    "encode",
                    OrdinalEncoder(
                        categories=list(roles.ordinal.values()), handle_unknown="use_encoded_value", unknown_value=-1
                    ),
                ),
            ]
        )
        transformers.append(("ordinal", ordinal_steps, list(roles.ordinal)))
    return Pipeline(
        [
            ("clean", ColumnCleaner(na_values, roles.numeric, [*roles.categorical, *roles.ordinal])),
            ("derive", DerivedFeatures(derived or None)),
            ("columns", ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)),
        ]
    )


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
        data.X, data.y, test_size=split.test_size, random_state=split.seed, stratify=stratify
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
            entry |= {"kind": kind, "dtype": "string", "categories": levels, "example": mode.iloc[0] if len(mode) else None}
        schema.append(entry)
    return schema


def load_project_data(config: ProjectConfig) -> tuple[Dataset, pd.DataFrame]:
    """Load the configured dataset and check its validation rules, logging a summary."""
    data = load_data(config.dataset)
    report = validate_data(data.frame, config.dataset)
    logger.info("loaded %d rows, %d features, task=%s", len(data.frame), len(data.roles.features), data.task)
    if not report.empty:
        logger.warning("validation found %d rule violations (rows kept)", int(report["violations"].sum()))
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
    parser = argparse.ArgumentParser(description="Data summary and validation report for the configured dataset.")
    parser.add_argument("--config", type=Path, help="config file (default: MLOPS_CONFIG or mlops_pipeline/config.yaml)")
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
        print(f"Tarea: {data.task}; objetivo: {data.target}; clases: {data.classes or '-'}; positiva: {data.positive_class}")
        for note in data.notes:
            print(f"Nota: {note}")
        print("\nResumen de columnas:\n", summarize_data(data).to_string(), sep="")
        print("\nReporte de validación:")
        print(report.to_string(index=False) if not report.empty else "  sin violaciones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
