"""Input of the prediction API: a request body (JSON, CSV or a multipart file) to a validated frame.

The request schema comes from a model version's saved feature schema (`record_model`), so
``/docs`` shows the real fields. Bad input is a 4xx whose body names the row and the column:
JSON records are checked by the generated pydantic model, CSV tables column by column with
pandas (so 10,000 rows do not go one by one through pydantic).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import HTTPException, Request
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

import api_csv
import ft_engineering
import registry
import scoring

CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
MAX_REPORTED_ERRORS = 20


# ----------------------------------------------------------------------------- errors
def error(row: int | None, column: str | None, message: str, kind: str) -> dict:
    """One entry of a 4xx ``errors`` list (``row`` is 1-based: the record's position)."""
    return {"row": row, "column": column, "msg": message, "type": kind}


def reject(status: int, errors: list[dict] | str, total: int | None = None) -> HTTPException:
    """An HTTP error whose body lists the first `MAX_REPORTED_ERRORS` errors and their count."""
    if isinstance(errors, str):
        return HTTPException(status, detail=errors)
    detail: dict[str, Any] = {"errors": errors[:MAX_REPORTED_ERRORS], "error_count": total or len(errors)}
    return HTTPException(status, detail=detail)


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error must not echo a huge input)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"


def validation_errors(exc: ValidationError) -> list[dict]:
    errors = []
    for item in exc.errors(include_url=False):
        loc = list(item["loc"])
        row = loc.pop(0) + 1 if loc and isinstance(loc[0], int) else None
        column = str(loc[0]) if loc else None
        value = item.get("input")
        shown = "" if isinstance(value, (dict, list)) else f" (got {_short(value)})"
        errors.append(error(row, column, f"{item['msg']}{shown}", item["type"]))
    return errors


# ----------------------------------------------------------------------------- the request schema
def _missing_to_none(tokens: frozenset[str]):
    """Map missing-value tokens (and NaN) to None before numeric validation."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value in tokens:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    return convert


def category_text(value: Any) -> Any:
    """JSON numbers and booleans spelled as training spelled categories (1.0 -> "1", true -> "True")."""
    if isinstance(value, (bool, int, float)):
        text = ft_engineering.as_category_text(value)
        return text if isinstance(text, str) else None
    return value


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


def _feature_field(feature: registry.FeatureSpec, tokens: frozenset[str]) -> tuple[Any, Any]:
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
    annotation = Annotated[
        str | None,
        BeforeValidator(category_text),
        BeforeValidator(_missing_to_none(tokens)),
        AfterValidator(_no_nul),
    ]
    return annotation, Field(alias=feature.name, description=description, examples=[example])


def record_model(metadata: registry.ModelMetadata) -> type[BaseModel]:
    """A pydantic model of one input record, built from ``metadata.features``.

    Every feature is required (so a misspelt column is caught) and nullable (missing values are
    imputed by the pipeline); unknown fields are rejected.
    """
    tokens = api_csv.missing_set(scoring.missing_tokens(metadata))
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
    missing: frozenset[str] = field(init=False)
    ignored: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.record = record_model(self.metadata)
        self.records = TypeAdapter(list[self.record])
        self.names = self.metadata.feature_names
        self.numeric = self.metadata.numeric_features
        self.na_values = scoring.missing_tokens(self.metadata)
        self.missing = api_csv.missing_set(self.na_values)
        self.ignored = frozenset(self.metadata.dropped_columns)

    def example_csv(self) -> str:
        example = pd.DataFrame([self.record.model_json_schema()["examples"][0]])
        return example.to_csv(index=False)


def predict_openapi(schema: InputSchema, max_rows: int) -> dict:
    """The ``/predict`` request body for ``/docs``: a record, a list of them, a CSV body or file."""
    record = schema.record.model_json_schema()
    records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows}
    upload = {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}},
        "required": ["file"],
    }
    description = (
        f"One record, a list of up to {max_rows} records, a CSV body or a CSV file in the multipart "
        "field 'file'. CSVs may be comma or semicolon separated (with a semicolon, the decimal mark "
        "is a comma if no number uses a dot; never a thousands separator), with or without a BOM; every "
        f"row has the header's fields. Missing: empty, null or one of {sorted(api_csv.DEFAULT_MISSING[1:])}"
        f" and the training tokens {schema.na_values}, in CSV and JSON alike."
    )
    if schema.ignored:
        description += f" Columns dropped at training are accepted and ignored: {sorted(schema.ignored)}."
    content = {
        "application/json": {"schema": {"anyOf": [record, records]}, "example": record["examples"][0]},
        "text/csv": {"schema": {"type": "string"}, "example": schema.example_csv()},
        "multipart/form-data": {"schema": upload},
    }
    return {"requestBody": {"required": True, "description": description, "content": content}}


# ----------------------------------------------------------------------------- JSON and CSV bodies
JSON_CHUNK = 1000
"""Records validated per pydantic call: validation stops at the first chunk with an error, so a
large list of bad records costs one chunk, not the whole list."""


def _json_records(body: bytes, max_rows: int) -> list:
    """The records of a JSON body (a record or a list), size-checked; raise a 4xx otherwise."""
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise reject(422, [error(None, None, f"malformed JSON: {exc}", "json_invalid")]) from exc
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        message = "the JSON body must be a record (object) or a list of records"
        raise reject(422, [error(None, None, message, "json_type")])
    if not payload:
        raise reject(422, [error(None, None, "the list of records is empty", "empty")])
    if len(payload) > max_rows:
        raise reject(
            413, f"{len(payload)} records exceed the limit of {max_rows} per request; use the score CLI"
        )
    return payload


def _without_ignored(records: list, schema: InputSchema) -> list:
    """The records without the columns dropped at training; the first unknown one is a 422."""
    allowed = set(schema.names)
    out = []
    for row, record in enumerate(records, start=1):
        if isinstance(record, dict) and not record.keys() <= allowed:
            record = {k: v for k, v in record.items() if k not in schema.ignored}
            unknown = [k for k in record if k not in allowed]
            if unknown:
                errors = [error(row, str(k), _unknown_message(schema), "extra_forbidden") for k in unknown]
                raise reject(422, errors)
        out.append(record)
    return out


def frame_from_json(body: bytes, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """Validate a JSON record or list of records; raise a 4xx naming row and column (the first
    chunk of `JSON_CHUNK` records with an error is reported, so the cost is bounded)."""
    records = _without_ignored(_json_records(body, max_rows), schema)
    validated = []
    for start in range(0, len(records), JSON_CHUNK):
        try:
            validated += schema.records.validate_python(records[start : start + JSON_CHUNK])
        except ValidationError as exc:
            errors = validation_errors(exc)
            for item in errors:
                item["row"] = item["row"] + start if item["row"] is not None else None
            raise reject(422, errors, exc.error_count()) from exc
    return pd.DataFrame(schema.records.dump_python(validated), columns=schema.names)


def _unknown_message(schema: InputSchema) -> str:
    return f"unknown column; expected {schema.names}" + (
        f" (ignored: {sorted(schema.ignored)})" if schema.ignored else ""
    )


def check_columns(columns: list[str], schema: InputSchema) -> None:
    """Reject unknown (up to `MAX_REPORTED_ERRORS`), repeated and missing columns by name."""
    unknown = [c for c in columns if c not in schema.names and c not in schema.ignored]
    repeated = (
        sorted({c for c in columns if columns.count(c) > 1}) if len(set(columns)) < len(columns) else []
    )
    missing = [c for c in schema.names if c not in columns]
    errors = [
        error(None, c, _unknown_message(schema), "unknown_column") for c in unknown[:MAX_REPORTED_ERRORS]
    ]
    errors += [error(None, c, "the column appears more than once", "repeated_column") for c in repeated]
    errors += [
        error(None, c, "missing required column (send it empty for missing values)", "missing_column")
        for c in missing
    ]
    if errors:
        raise reject(422, errors, len(unknown) + len(repeated) + len(missing))


def typed_columns(
    cells: pd.DataFrame, typed: pd.DataFrame, schema: InputSchema, decimal: str
) -> pd.DataFrame:
    """Numeric columns as floats (a cell that is not a number under ``decimal`` is a 422 naming
    row and column); categorical ones spelled as at training. ``typed`` is pandas' parse, used
    where it read the whole column as numbers; ``cells`` (text) explains the others."""
    out = typed[[c for c in cells.columns]].copy()
    errors = []
    for column in schema.numeric:
        if pd.api.types.is_numeric_dtype(typed[column]):
            values, bad = typed[column].astype(float), np.flatnonzero(np.isinf(typed[column].astype(float)))
        else:
            values, bad = api_csv.parse_numbers(cells[column], decimal)
        out[column] = values
        for position in bad[:MAX_REPORTED_ERRORS]:
            message = (
                f"not a finite number with decimal mark '{decimal}' and no thousands separator "
                f"(got {_short(cells[column].iloc[position])})"
            )
            errors.append(error(int(position) + 1, column, message, "float_parsing"))
    for column in (c for c in schema.names if c not in schema.numeric):
        numbers = typed[column]
        spelled = numbers if not pd.api.types.is_numeric_dtype(numbers) else numbers.map(category_text)
        out[column] = spelled.astype(object).where(spelled.notna(), None)
    if errors:
        errors.sort(key=lambda e: (e["row"], schema.names.index(e["column"])))
        raise reject(422, errors)
    return out


def frame_from_csv(body: bytes, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """Validate a CSV upload; raise a 4xx naming row and column. The frame's ``attrs["csv_format"]``
    is the dialect it was read in (a CSV answer uses it)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reject(422, [error(None, None, f"the CSV must be UTF-8 text: {exc}", "encoding")]) from exc
    if not text.strip():
        raise reject(422, [error(None, None, "the CSV is empty", "empty")])
    try:
        # the columns are checked before any row is read: a huge header costs no more than its names
        cells, sep = api_csv.read_cells(text, max_rows, lambda names: check_columns(names, schema))
    except api_csv.CsvProblem as exc:
        raise reject(422, [error(*problem) for problem in exc.errors]) from exc
    if len(cells) > max_rows:
        raise reject(413, f"the CSV has more than {max_rows} rows, the limit per request; use the score CLI")
    if cells.empty:
        raise reject(422, [error(None, None, "the CSV has a header but no rows", "empty")])
    cells = cells[[c for c in cells.columns if c not in schema.ignored]]  # the request's column order
    cells = cells.where(~cells.isin(schema.missing))
    csv_format = api_csv.CsvFormat(sep, api_csv.decimal_mark(cells, schema.numeric, sep))
    typed = api_csv.read_typed(text, csv_format, schema.missing, len(cells))
    typed.columns = [str(c).strip() for c in typed.columns]
    frame = typed_columns(cells, typed, schema, csv_format.decimal)
    frame.attrs["csv_format"] = csv_format
    return frame


@dataclass(frozen=True)
class Body:
    """A request's payload: its bytes and whether they are a CSV table (else JSON)."""

    data: bytes
    is_csv: bool


async def read_body(request: Request) -> Body:
    """The request's payload, from the body or the multipart field ``file``; 415 for other types."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            message = "the form needs a CSV file in the field 'file'"
            raise reject(422, [error(None, "file", message, "missing_file")])
        return Body(await upload.read(), is_csv=True)
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if content_type not in CSV_TYPES and not is_json:
        message = (
            f"unsupported content type '{content_type}': send application/json, text/csv or a multipart file"
        )
        raise HTTPException(415, detail=message)
    data = await request.body()
    if not data.strip():
        raise reject(422, [error(None, None, "the request body is empty", "empty")])
    return Body(data, is_csv=not is_json)


def parse_body(body: Body, schema: InputSchema, max_rows: int) -> pd.DataFrame:
    """The validated records of a request body, one row per record."""
    return (frame_from_csv if body.is_csv else frame_from_json)(body.data, schema, max_rows)
