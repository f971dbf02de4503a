"""CSV request bodies read so that no value changes silently.

The separator comes from the header (``;`` or ``,``); the decimal mark from the numeric cells
(``,`` only after a ``;`` separator, when more numeric cells use it than ``.``; a cell
with the other mark is then refused). There is never a
thousands separator: ``1.295`` under a decimal comma is refused, not read as 1295. Every row must
have the header's number of fields, and a NUL byte is refused. Cells are read as text by pandas'
C parser (no conversion), then numeric columns are parsed under the chosen decimal mark.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MISSING = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>")
"""Cells that mean missing in CSV and JSON alike (as pandas reads them), plus the config's tokens."""


@dataclass(frozen=True)
class CsvFormat:
    """A CSV dialect: the field separator and the decimal mark."""

    sep: str = ","
    decimal: str = "."


class CsvProblem(ValueError):
    """Cells or rows a CSV cannot be read from; ``errors`` are (row, column, message, kind)."""

    def __init__(self, errors: list[tuple[int | None, str | None, str, str]]):
        super().__init__(errors[0][2])
        self.errors = errors


def missing_set(tokens: list[str]) -> frozenset[str]:
    """The exact cells that mean missing: `DEFAULT_MISSING` and the config's ``tokens``, each also
    lower-case, upper-case, capitalised and stripped (one set for CSV and JSON)."""
    spellings = (*DEFAULT_MISSING, *tokens)
    return frozenset(v for t in spellings for v in (t, t.lower(), t.upper(), t.title(), t.strip()))


def read_cells(
    text: str, max_rows: int, check_header: Callable[[list[str]], None]
) -> tuple[pd.DataFrame, str]:
    """Up to ``max_rows + 1`` data rows as text cells (pandas' C parser, nothing converted) whose
    rows all have the header's number of fields; and the separator. ``check_header`` sees the
    header before any row is parsed (it raises to stop there).

    Raises:
        CsvProblem: a NUL byte, a malformed quote, or a row with another number of fields.
    """
    if "\x00" in text:
        row = text.count("\n", 0, text.index("\x00"))
        raise CsvProblem([(row or None, None, "the CSV contains a NUL byte", "csv_invalid")])
    first_line = text.split("\n", 1)[0]
    sep = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    row = 0
    try:
        header = [name.strip() for name in next(reader)]
        check_header(header)
        for row, fields in enumerate(itertools.islice(reader, max_rows + 1), start=1):
            if fields and len(fields) != len(header):  # blank lines are skipped, as pandas does
                raise CsvProblem([(row, None, _shape_message(len(fields), len(header)), "row_shape")])
    except csv.Error as exc:
        raise CsvProblem([(row + 1, None, f"malformed CSV: {exc}", "csv_invalid")]) from exc
    cells = pd.read_csv(
        io.StringIO(text), sep=sep, dtype=str, na_filter=False, nrows=max_rows + 1, index_col=False
    )
    cells.columns = header
    return cells, sep


def _shape_message(fields: int, expected: int) -> str:
    return f"the row has {fields} fields, the header has {expected}"


def decimal_mark(cells: pd.DataFrame, numeric: list[str], sep: str) -> str:
    """``,`` when the separator is ``;`` and the numeric cells hold more commas than dots, else
    ``.`` (the cells with the other mark are then refused by `parse_numbers`)."""
    if sep != ";" or not numeric:
        return "."
    text = "".join("".join(cells[column].to_numpy(dtype=str)) for column in numeric)
    return "," if text.count(",") > text.count(".") else "."


def read_typed(text: str, csv_format: CsvFormat, missing: frozenset[str], nrows: int) -> pd.DataFrame:
    """The cells parsed by pandas' C parser in ``csv_format`` (no thousands separator, only the
    ``missing`` spellings as NA): a column that is all numbers comes back numeric."""
    return pd.read_csv(
        io.StringIO(text),
        sep=csv_format.sep,
        decimal=csv_format.decimal,
        thousands=None,
        na_values=sorted(missing),
        keep_default_na=False,
        nrows=nrows,
        index_col=False,
    )


def parse_numbers(values: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray]:
    """A text column as floats under ``decimal``; and the positions of cells that are not numbers
    in that dialect (the other mark, a thousands separator, words, infinities)."""
    other = "." if decimal == "," else ","
    present = values.notna().to_numpy()
    wrong_mark = values.str.contains(other, regex=False, na=False).to_numpy(dtype=bool)
    text = values.str.replace(",", ".", regex=False) if decimal == "," else values
    parsed = pd.to_numeric(text, errors="coerce").astype(float)
    bad = present & (wrong_mark | ~np.isfinite(parsed.fillna(0).to_numpy()) | parsed.isna().to_numpy())
    return parsed.where(~pd.Series(bad, index=values.index)), np.flatnonzero(bad)


def categories_as_training_spelled(values: pd.Series) -> pd.Series:
    """A categorical text column whose every cell is a whole number, spelled as pandas would
    have read it at training (``2.0`` -> ``"2"``); other columns are kept as text."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any() or not (numbers % 1 == 0).all():
        return values
    return values.where(values.isna(), numbers.astype("int64").astype(str))


def integers_as_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns whose values are all whole numbers as nullable integers (so a CSV answer
    writes ``30``, not ``30.0``)."""
    out = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and values.notna().any():
            present = values.dropna()
            if (present % 1 == 0).all() and present.abs().max() < 2**53:
                out[column] = values.astype("Int64")
    return out


def _number_text(value: object, decimal: str) -> object:
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return f"{value:.0f}" if float(value).is_integer() else repr(float(value)).replace(".", decimal)
    return value


def mixed_as_text(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Object columns holding numbers among text (an explained row's ``reason_<k>_value``) with
    those numbers written as the float columns are: whole ones as integers, others with ``decimal``
    (``to_csv`` applies its decimal mark to float columns only)."""
    mixed = [
        column
        for column in frame.columns
        if frame[column].dtype == object
        and pd.api.types.infer_dtype(frame[column], skipna=True) not in ("string", "empty", "boolean")
    ]
    if not mixed:
        return frame
    return frame.assign(**{column: frame[column].map(lambda v: _number_text(v, decimal)) for column in mixed})


def render(table: pd.DataFrame, csv_format: CsvFormat) -> str:
    """``table`` as CSV text in ``csv_format``, integers as integers."""
    table = mixed_as_text(integers_as_integers(table), csv_format.decimal)
    return table.to_csv(index=False, sep=csv_format.sep, decimal=csv_format.decimal)
