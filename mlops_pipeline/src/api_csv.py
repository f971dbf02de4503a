"""CSV request bodies read so that no value changes silently.

The separator comes from the header (``;`` or ``,``); the decimal mark from the numeric cells
(``,`` only after a ``;`` separator, when more numeric cells use it than ``.``; a cell
with the other mark is then refused). There is never a
thousands separator: ``1.295`` under a decimal comma is refused, not read as 1295. Every row must
have the header's number of fields, and a NUL byte is refused. Cells are read as text by the
`csv` module (C code, cost linear in the body), then numeric columns are parsed by pandas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MISSING = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>")
"""Cells that mean missing in CSV and JSON alike (as pandas reads them), plus the config's tokens."""
NUMBER = re.compile(r"\s*[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?\s*")


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
    """The lower-cased, stripped spellings of missing: `DEFAULT_MISSING` and the config's tokens."""
    return frozenset(t.strip().lower() for t in (*DEFAULT_MISSING, *tokens))


def read_rows(
    text: str, max_rows: int, check_header: Callable[[list[str]], None]
) -> tuple[list[str], list[list[str]], str]:
    """Header and up to ``max_rows + 1`` data rows of strictly ``len(header)`` fields; the separator.
    ``check_header`` sees the header before any row is read (it raises to stop there).

    Raises:
        CsvProblem: a NUL byte, an empty header, or a row with another number of fields.
    """
    if "\x00" in text:
        row = text.count("\n", 0, text.index("\x00"))
        raise CsvProblem([(row or None, None, "the CSV contains a NUL byte", "csv_invalid")])
    first_line = text.split("\n", 1)[0]
    sep = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    rows: list[list[str]] = []
    try:
        header = [name.strip() for name in next(reader)]
        check_header(header)
        for row in reader:
            if row:  # blank lines are skipped
                if len(row) != len(header):
                    message = f"the row has {len(row)} fields, the header has {len(header)}"
                    raise CsvProblem([(len(rows) + 1, None, message, "row_shape")])
                rows.append(row)
                if len(rows) > max_rows:
                    break
    except csv.Error as exc:
        raise CsvProblem([(len(rows) + 1, None, f"malformed CSV: {exc}", "csv_invalid")]) from exc
    return header, rows, sep


def decimal_mark(frame: pd.DataFrame, numeric: list[str], sep: str) -> str:
    """``,`` when the separator is ``;`` and more numeric cells hold a comma than a dot, else ``.``
    (the cells with the other mark are then refused by `parse_numbers`)."""
    if sep != ";" or not numeric:
        return "."
    cells = frame[numeric].to_numpy(dtype=object).ravel()
    text = pd.Series(cells[pd.notna(cells)], dtype=object).astype(str)
    commas, dots = text.str.contains(",", regex=False).sum(), text.str.contains(".", regex=False).sum()
    return "," if commas > dots else "."


def parse_numbers(values: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray]:
    """A text column as floats under ``decimal``; and the positions of cells that are not numbers
    in that dialect (the other mark, a thousands separator, words, infinities)."""
    text = values.astype("string")
    well_formed = text.str.fullmatch(NUMBER.pattern).fillna(False).to_numpy(dtype=bool)
    if decimal == ",":
        well_formed &= ~text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
        text = text.str.replace(",", ".", regex=False)
    else:
        well_formed &= ~text.str.contains(",", regex=False).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_numeric(text.where(pd.Series(well_formed, index=values.index)), errors="coerce")
    parsed = parsed.astype(float)
    bad = values.notna().to_numpy() & (~well_formed | ~np.isfinite(parsed.fillna(0).to_numpy()))
    return parsed, np.flatnonzero(bad)


def categories_as_training_spelled(values: pd.Series) -> pd.Series:
    """A categorical text column whose every cell is a number, spelled as pandas would have read
    it at training (``2.0`` -> ``"2"``); other columns are kept as text."""
    present = values.dropna()
    if present.empty or not present.str.fullmatch(NUMBER.pattern).all():
        return values
    numbers = pd.to_numeric(present.str.strip(), errors="coerce")
    if numbers.isna().any() or not (numbers % 1 == 0).all():
        return values
    return values.where(values.isna(), pd.Series(numbers.astype("int64").astype(str), index=present.index))


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


def render(table: pd.DataFrame, csv_format: CsvFormat) -> str:
    """``table`` as CSV text in ``csv_format``, integers as integers."""
    return integers_as_integers(table).to_csv(index=False, sep=csv_format.sep, decimal=csv_format.decimal)
