"""Reading and cleaning raw tables, the same way at training and at serving time.

`read_csv` reads comma or semicolon CSVs; `unify_missing` turns the configured missing tokens into
NaN; `coerce_types` makes numeric columns float and categorical ones text with one spelling per
category. `ColumnCleaner` and `DerivedFeatures` do that work inside every fitted pipeline, so a
request is read exactly as the training data was. `ft_engineering` builds on this module.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import validation as sk_validation

import expressions


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
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        csv.Error,
        UnicodeDecodeError,
    ) as exc:
        raise ValueError(f"malformed CSV: {exc}") from exc


TEXT_KINDS = {"string", "mixed", "mixed-integer"}
"""`pandas.api.types.infer_dtype` kinds of columns that hold at least some text."""


FACTORIZABLE_KINDS = {
    "string",
    "boolean",
    "integer",
    "floating",
    "mixed-integer-float",
    "empty",
}
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
    df: pd.DataFrame,
    tokens: list[str],
    numeric: list[str],
    categorical: list[str],
    known: dict | None = None,
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
        tokens, numeric, categorical = (
            self.na_values or [],
            self.numeric or [],
            self.categorical or [],
        )
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
    return pd.DataFrame(
        sk_validation.validate_data(estimator, X, reset=reset, dtype=None, ensure_all_finite=False)
    )
