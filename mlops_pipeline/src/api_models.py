"""The shapes of the prediction API: response models (for ``/docs``) and request bodies whose
fields are checked before anything is stored (feedback labels, the default-model switch and who
asks for it)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

import api_input
import registry
import store


# ----------------------------------------------------------------------------- response models (docs)
class Reason(BaseModel):
    """One input that pushes a prediction's explained score (`explain.row_reasons`)."""

    feature: str = Field(description="A raw input, or a derived feature under its config name.")
    value: str | float | None = Field(
        description="Its value on the row as the model read it (null: missing)."
    )
    contribution: float = Field(
        description=(
            "Signed change of the explained score against the typical row: the positive class's "
            "log-odds (binary), the predicted class's score (multiclass) or the value (regression)."
        )
    )


class PredictionOut(BaseModel):
    """One prediction as returned (and logged: `store.predictions`)."""

    id: str = Field(description="Prediction id; send it back to POST /feedback with the true outcome.")
    model_version: str
    prediction: str | float = Field(
        description="Predicted class label (classification) or value (regression)."
    )
    score: float = Field(
        description=(
            "Binary: probability of the positive class; multiclass: of the predicted class; "
            "regression: the value."
        )
    )
    probabilities: dict[str, float] | None = Field(
        description=(
            "Multiclass: probability of every class (binary: `score` is the probability of `positive_class`)."
        )
    )
    threshold: float | None = Field(
        description="Binary: positive-class probability at or above which it is predicted."
    )
    lower: float | None = Field(
        default=None,
        description="Regression: lower end of the prediction interval (level in GET /model/info).",
    )
    upper: float | None = Field(default=None, description="Regression: upper end of the prediction interval.")
    base_value: float | None = Field(
        default=None,
        description=(
            "Only with ?explain=K: the explained score of the typical row (every input at its training "
            "median or mode), which the contributions start from (method in GET /model/info)."
        ),
    )
    reasons: list[Reason] | None = Field(
        default=None,
        description=(
            "Only with ?explain=K: up to K inputs that push the score the most, largest |contribution| "
            "first (fewer when fewer inputs move it; null when `explain_error` says why none)."
        ),
    )


class PredictResponse(BaseModel):
    request_id: str
    model_version: str
    count: int
    positive_class: str | None = Field(description="Binary: the class whose probability each `score` is.")
    explain_error: str | None = Field(
        default=None,
        description="Only when ?explain=K could not compute the reasons: why (the predictions are stored).",
    )
    predictions: list[PredictionOut]


def _printable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


def _label_text(value: Any) -> str:
    """A feedback label as the log keeps it: text of at most 200 characters, no NUL."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the outcome must be a class label or a finite number")
    text = api_input.category_text(value)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the outcome must be a class label or a finite number, not empty")
    if len(text) > store.feedback.c.actual.type.length:
        raise ValueError(f"at most {store.feedback.c.actual.type.length} characters")
    return _printable(text)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: Annotated[str, AfterValidator(_printable)] = Field(
        min_length=1, max_length=store.predictions.c.id.type.length
    )
    actual: Annotated[str | float | int | bool, AfterValidator(_label_text)] = Field(
        description=(
            "The true outcome: one of the model version's classes (GET /model/info), or a number for "
            'regression; numbers and booleans are read as training spelled labels (1.0 -> "1").'
        ),
    )


FeedbackList = TypeAdapter(Annotated[list[FeedbackItem], Field(min_length=1, max_length=100_000)])


class DefaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=120)
    force: bool = Field(
        default=False,
        description=(
            "Promote even when the shadow comparison shows the version worse than the champion on the "
            "primary metric (the audit records it as forced)."
        ),
    )
    by: (
        Annotated[
            str,
            Field(min_length=1, max_length=store.promotions.c.requested_by.type.length),
            AfterValidator(_printable),
        ]
        | None
    ) = Field(default=None, description="Who promotes, for the audit (GET /models/promotions).")


def label_errors(metadata: registry.ModelMetadata, actuals: dict[str, str]) -> list[dict]:
    """The outcomes a model version cannot have: not one of its classes, or not a number (regression)."""
    errors = []
    for prediction_id, actual in actuals.items():
        if metadata.task == "classification" and actual not in metadata.classes:
            message = (
                f"unknown class {actual!r} for model {metadata.version}; expected one of {metadata.classes}"
            )
        elif metadata.task == "regression" and not _is_finite_number(actual):
            message = f"the outcome of a regression model must be a finite number (got {actual!r})"
        else:
            continue
        errors.append({"prediction_id": prediction_id, "actual": actual, "msg": message})
    return errors


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


FEEDBACK_SCHEMA = {"type": "array", "minItems": 1, "items": FeedbackItem.model_json_schema()}
FEEDBACK_BODY = {"required": True, "content": {"application/json": {"schema": FEEDBACK_SCHEMA}}}
