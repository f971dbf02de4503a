"""Dashboard page "Predicciones": the latest logged predictions, the model output's distribution,
and a form that sends one prediction to the API and then its true outcome (feedback).

The API is the one at ``MLOPS_API_URL`` (default ``http://127.0.0.1:8000``), called with
``X-API-Key`` when ``API_KEY`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import drift
import explain
import registry
from dashboard_shared import draw_distribution
from settings import Settings

DEFAULT_API_URL = "http://127.0.0.1:8000"
REASONS_SHOWN = 3  # ?explain= of the form's prediction
NO_PREDICTIONS_MESSAGE = (
    "No hay predicciones registradas para esta versión: use el formulario de abajo, envíe tráfico a la "
    "API o simúlelo con `python mlops_pipeline/src/model_monitoring.py simulate`."
)


# ----------------------------------------------------------------------------- the API
def api_settings(settings: Settings) -> tuple[str, dict[str, str]]:
    """The API base URL (``MLOPS_API_URL``) and the headers to send (``X-API-Key`` when configured)."""
    url = os.environ.get("MLOPS_API_URL", DEFAULT_API_URL).rstrip("/")
    key = settings.effective_api_key
    return url, ({"X-API-Key": key} if key else {})


def _api_call(method: str, url: str, headers: Mapping[str, str], **kwargs) -> dict:
    """The JSON answer of one API call; a ``RuntimeError`` with a message for the user otherwise."""
    try:
        response = httpx.request(method, url, headers=dict(headers), timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"No se pudo conectar con la API en {url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise RuntimeError(f"La API respondió {response.status_code}: {detail}")
    return response.json()


def send_prediction(url: str, headers: Mapping[str, str], record: Mapping, version: str | None) -> dict:
    """POST one record to ``/predict`` with its `REASONS_SHOWN` reasons; returns its prediction (id,
    prediction, score, reasons...), plus the answer's ``explain_error`` when the reasons failed.

    Raises:
        RuntimeError: with a message for the user when the API cannot be reached or refuses.
    """
    params = {"explain": REASONS_SHOWN, **({"model": version} if version else {})}
    body = _api_call("post", f"{url}/predict", headers, json=dict(record), params=params)
    failed = {"explain_error": body["explain_error"]} if body.get("explain_error") else {}
    return {**body["predictions"][0], **failed}


def send_feedback(url: str, headers: Mapping[str, str], prediction_id: str, actual: object) -> int:
    """POST the true outcome of one prediction to ``/feedback``; returns how many were stored."""
    body = _api_call(
        "post", f"{url}/feedback", headers, json=[{"prediction_id": prediction_id, "actual": actual}]
    )
    return int(body["stored"])


def binary_classes(prediction: Mapping, metadata: registry.ModelMetadata) -> tuple[str, str] | None:
    """The positive class and the other one of a binary prediction (one with a threshold); None otherwise."""
    positive, classes = metadata.positive_class, metadata.classes or []
    if prediction.get("threshold") is None or positive not in classes or len(classes) != 2:
        return None
    return positive, next(label for label in classes if label != positive)


def class_probabilities(prediction: Mapping, metadata: registry.ModelMetadata) -> dict[str, float] | None:
    """Every class's probability: the API's ``probabilities`` (multiclass), or for a binary
    prediction its ``score`` for the positive class and the rest for the other; None for regression."""
    if prediction.get("probabilities"):
        return dict(prediction["probabilities"])
    pair = binary_classes(prediction, metadata)
    if pair is None:
        return None
    score = float(prediction["score"])
    return {pair[0]: score, pair[1]: 1 - score}


def reason_lines(prediction: Mapping, metadata: registry.ModelMetadata) -> tuple[list[str], str]:
    """The prediction's reasons in Spanish, one line each (`explain.reason_text` and which way it
    pushes), and the sentence saying what a positive contribution means for this task."""
    pair = binary_classes(prediction, metadata)
    if pair is not None:
        up, down = f"empuja hacia «{pair[0]}»", f"empuja hacia «{pair[1]}»"
        meaning = f"el log-odds de «{pair[0]}»: positivo empuja hacia «{pair[0]}», negativo hacia «{pair[1]}»"
    elif metadata.task == "classification":
        predicted = prediction["prediction"]
        up, down = f"a favor de «{predicted}»", f"en contra de «{predicted}»"
        meaning = f"el puntaje de la clase predicha «{predicted}»: positivo la favorece, negativo la aleja"
    else:
        up, down = "sube el valor", "baja el valor"
        meaning = f"el valor predicho de {metadata.target or 'la salida'}: positivo lo sube, negativo lo baja"
    lines = [
        f"{explain.reason_text(**reason)} ({up if reason['contribution'] > 0 else down})"
        for reason in prediction.get("reasons") or []
    ]
    sentence = (
        f"Cada número es cuánto mueve esa variable {meaning}, frente a un caso típico (cada variable "
        "en su mediana o en su categoría más frecuente del entrenamiento)."
    )
    return lines, sentence


# ----------------------------------------------------------------------------- widgets
def _feature_input(feature: registry.FeatureSpec) -> object:
    """One form input for a feature: a number (empty = missing) or one of its categories."""
    name, example = feature.name, feature.example
    if feature.kind == "numeric":
        value = example if isinstance(example, (int, float)) and not pd.isna(example) else None
        integer = feature.dtype == "integer"
        number = st.number_input(
            name,
            value=None if value is None else float(value),
            step=1.0 if integer else None,
            key=f"form_{name}",
        )
        return None if number is None else (int(number) if integer else float(number))
    options = ["", *[str(c) for c in feature.categories or []]]
    index = options.index(str(example)) if example is not None and str(example) in options else 0
    return st.selectbox(name, options, index=index, key=f"form_{name}") or None


def prediction_form_ui(features: list[registry.FeatureSpec]) -> dict | None:
    """A form with one input per model feature (from the metadata); the record when submitted."""
    with st.form("prediction_form"):
        st.markdown("Complete los datos de un caso (vacío = faltante) y envíelo a la API.")
        columns = st.columns(3)
        record = {}
        for i, feature in enumerate(features):
            with columns[i % 3]:
                record[feature.name] = _feature_input(feature)
        submitted = st.form_submit_button("Predecir")
    return record if submitted else None


def feedback_ui(metadata: registry.ModelMetadata, prediction: Mapping) -> object | None:
    """A form for the true outcome of the last prediction; the value when submitted."""
    with st.form("feedback_form"):
        st.markdown(f"Resultado real de la predicción `{prediction['id']}`")
        if metadata.task == "classification":
            actual = st.selectbox("Resultado real", [str(c) for c in metadata.classes], key="feedback_actual")
        else:
            actual = st.number_input(
                "Valor real", value=float(prediction["prediction"]), key="feedback_actual"
            )
        submitted = st.form_submit_button("Enviar resultado real")
    return actual if submitted else None


# ----------------------------------------------------------------------------- drawing
def draw_recent_predictions(recent: pd.DataFrame) -> None:
    """The latest predictions, dates as day/month/year, "—" where there is no outcome or value."""
    st.subheader("Predicciones recientes")
    text = [c for c in recent.columns if not pd.api.types.is_numeric_dtype(recent[c]) and c != "created_at"]
    shown = recent.astype({c: object for c in text}).fillna({c: "—" for c in text})
    st.dataframe(
        shown.rename(columns={"created_at": "fecha", "prediction": "predicción", "actual": "resultado real"}),
        hide_index=True,
        width="stretch",
        height=300,
        column_config={"fecha": st.column_config.DatetimeColumn(format="DD/MM/YYYY HH:mm:ss")},
    )


def draw_score_distribution(
    reference: pd.DataFrame | None, sample: pd.DataFrame, metadata: registry.ModelMetadata
) -> None:
    """The model output in the window against the reference's (when the reference kept it)."""
    column, kind = drift.output_feature(metadata)
    if column not in sample:
        return
    st.subheader("Distribución de la salida del modelo")
    if reference is None or column not in reference:
        st.caption(
            "La referencia de esta versión no guarda la salida del modelo: se muestra solo la ventana actual."
        )
        reference = pd.DataFrame({column: pd.Series(dtype=float)})
    draw_distribution(reference[column], sample[column], column, kind)


def draw_prediction_result(prediction: Mapping, metadata: registry.ModelMetadata) -> None:
    """The API's answer: class or value, score, threshold or interval, and each class's probability."""
    cols = st.columns(3)
    cols[0].metric("Predicción", str(prediction["prediction"]))
    cols[1].metric("Score", f"{float(prediction['score']):.3f}")
    if prediction.get("threshold") is not None:
        cols[2].metric("Umbral", f"{float(prediction['threshold']):.3f}")
    if prediction.get("lower") is not None:
        interval = f"{float(prediction['lower']):.4g} a {float(prediction['upper']):.4g}"
        cols[2].metric("Intervalo de predicción", interval)
    probabilities = class_probabilities(prediction, metadata)
    if probabilities:
        figure = go.Figure(
            go.Bar(x=list(probabilities), y=list(probabilities.values()), marker_color="#1f77b4")
        )
        figure.update_layout(
            title="Probabilidad por clase", yaxis_range=[0, 1], height=280, margin={"t": 40, "b": 10}
        )
        st.plotly_chart(figure, width="stretch")
    draw_reasons(prediction, metadata)
    st.caption(f"Id de la predicción: `{prediction['id']}` (versión {prediction['model_version']})")


def draw_reasons(prediction: Mapping, metadata: registry.ModelMetadata) -> None:
    """ "Por qué": the variables that push this prediction the most, and what their sign means."""
    if prediction.get("explain_error"):
        st.warning(f"No se pudieron calcular las razones de esta predicción: {prediction['explain_error']}")
        return
    if "reasons" not in prediction:
        return
    st.markdown("**Por qué**")
    lines, sentence = reason_lines(prediction, metadata)
    if not lines:
        st.markdown(
            "Ninguna variable mueve el puntaje frente al caso típico: el caso enviado es el típico en todo "
            "lo que el modelo usa (así empieza el formulario), o el modelo es constante, como el `dummy`."
        )
        return
    st.markdown("\n".join(f"- {line}" for line in lines))
    st.caption(sentence)


# ----------------------------------------------------------------------------- the page
def _try_model(url: str, headers: Mapping[str, str], version: str, metadata: registry.ModelMetadata) -> bool:
    """The form, the API's answer and the feedback form; True when this run stored a prediction or
    a feedback (the caller then draws the page again, so the recent predictions include it)."""
    stored = False
    record = prediction_form_ui(metadata.features)
    if record is not None:
        try:
            st.session_state["last_prediction"] = send_prediction(url, headers, record, version)
            st.session_state.pop("last_feedback", None)
            stored = True
        except RuntimeError as exc:
            st.error(str(exc))
    prediction = st.session_state.get("last_prediction")
    if prediction is None:
        return stored
    draw_prediction_result(prediction, metadata)
    actual = feedback_ui(metadata, prediction)
    if actual is not None:
        try:
            send_feedback(url, headers, prediction["id"], actual)
            st.session_state["last_feedback"] = (prediction["id"], actual)
            stored = True
        except RuntimeError as exc:
            st.error(str(exc))
    answered, given = st.session_state.get("last_feedback", (None, None))
    if answered == prediction["id"]:
        st.success(f"Resultado real «{given}» registrado para la predicción {prediction['id']}.")
    return stored


def predictions_page(
    version: str,
    metadata: registry.ModelMetadata | None,
    recent: pd.DataFrame,
    reference: pd.DataFrame | None,
    sample: pd.DataFrame,
    api: tuple[str, dict[str, str]],
) -> bool:
    """The page for one version: its ``recent`` predictions, the chosen window's ``sample`` (empty
    when there is none), and the form that calls the API (``api_settings``).

    Returns:
        True when a prediction or a feedback was stored (the caller refreshes the recent predictions).
    """
    if recent.empty:
        st.info(NO_PREDICTIONS_MESSAGE)
    else:
        draw_recent_predictions(recent)
    if metadata is not None and not sample.empty:
        draw_score_distribution(reference, sample, metadata)
    st.subheader("Probar el modelo")
    if metadata is None:
        st.warning("No hay un modelo entrenado para esta versión en la carpeta de artefactos.")
        return False
    url, headers = api
    st.caption(f"API: {url}")
    return _try_model(url, headers, version, metadata)
