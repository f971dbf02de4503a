"""The answer of ``POST /predict``: the predictions (and, with ``?explain=K``, their reasons) as
JSON or as CSV in the request's dialect."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pandas as pd
from fastapi import Response

import api_csv
import explain
import registry
import scoring
import store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reasons:
    """A request's reasons: the `explain.explain` table of its rows, or (``error`` set) why none."""

    table: pd.DataFrame
    error: str | None = None


def reasons_for(model: registry.LoadedModel, frame: pd.DataFrame, top_k: int) -> Reasons | None:
    """The ``top_k`` reasons of the rows as scored; None for ``top_k`` 0.

    They are computed after the predictions are committed, so a model whose reasons fail (a
    hand-built pipeline `explain` cannot read) must not turn the answer into an error: the client
    would lose the ids of stored predictions. It gets its 200 with empty reasons and the error.
    """
    if not top_k:
        return None
    try:
        return Reasons(explain.explain(model, frame, top_k))
    except Exception as exc:  # noqa: BLE001 - any failure: the stored predictions are still answered
        logger.exception("reasons failed for model %s", model.version)
        empty = pd.DataFrame(index=frame.index, columns=explain.reason_columns(top_k))
        return Reasons(empty, f"the reasons could not be computed for model {model.version}: {exc}")


def render(
    outputs: pd.DataFrame,
    frame: pd.DataFrame,
    request_id: str,
    model: registry.LoadedModel,
    as_csv: bool,
    reasons: Reasons | None = None,
) -> Response:
    """The answer: JSON (`api_models.PredictResponse`), or the input columns plus the output columns
    (and `explain.reason_columns` when explained) as CSV.

    In JSON, a prediction carries its per-class ``probabilities`` only where its ``score`` does
    not give them (`store.class_probabilities`), as the log keeps it; when explained, its
    ``base_value`` and ``reasons`` (`explain.row_reasons`).
    """
    headers = {"X-Request-ID": request_id}
    table = None if reasons is None else reasons.table.reset_index(drop=True)
    if reasons is not None and reasons.error:
        headers["X-Explain-Error"] = " ".join(reasons.error.encode("ascii", "replace").decode().split())[:300]
    if as_csv:
        answer_table = frame.reset_index(drop=True).join(outputs.reset_index(drop=True))
        answer_table = answer_table if table is None else answer_table.join(table)
        csv_format = frame.attrs.get("csv_format", api_csv.CsvFormat())  # the request's dialect
        return Response(api_csv.render(answer_table, csv_format), media_type="text/csv", headers=headers)
    per_class = store.class_probabilities(outputs)
    predictions = outputs.loc[:, ~outputs.columns.str.startswith(scoring.PROBABILITY_PREFIX)]
    predictions = predictions.assign(
        probabilities=None if per_class is None else per_class.to_dict("records")
    )
    head = {"request_id": request_id, "model_version": model.version, "count": len(outputs)}
    head["positive_class"] = model.metadata.positive_class if per_class is None else None
    if table is not None:
        rows = None if reasons.error else [explain.row_reasons(row) for row in table.to_dict("records")]
        rows = pd.Series(rows, index=predictions.index, dtype=object)
        predictions = predictions.assign(base_value=table["base_value"].to_numpy(dtype=float), reasons=rows)
        head |= {"explain_error": reasons.error} if reasons.error else {}
    # pandas writes the predictions in one C pass; json.dumps would walk 10,000 dicts in Python
    body = f'{json.dumps(head)[:-1]}, "predictions": {predictions.to_json(orient="records")}}}'
    return Response(body, media_type="application/json", headers=headers)


def respond(
    outputs: pd.DataFrame,
    frame: pd.DataFrame,
    request_id: str,
    model: registry.LoadedModel,
    as_csv: bool,
    top_k: int,
) -> Response:
    """The answer with each row's ``top_k`` reasons (none for 0): CPU work, for the thread pool."""
    return render(outputs, frame, request_id, model, as_csv, reasons_for(model, frame, top_k))
