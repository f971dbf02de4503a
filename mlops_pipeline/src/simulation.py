"""Traffic simulation: realistic requests with chosen drift, sent through the real API or written
straight to the store, so a fresh clone has a monitoring history to show."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import ft_engineering
import registry
import scoring
import store
from settings import Settings

logger = logging.getLogger(__name__)


NEW_CATEGORY = "nueva_categoria"


@dataclass(frozen=True)
class DriftScenario:
    """Which drift the simulator injects, from ``start_day`` (0-based) to the last day.

    ``shift``: numeric column -> shift in reference standard deviations; ``missing``: column ->
    share of values blanked; ``new_category``: categorical column -> share replaced by a category
    the model never saw; ``mix``: categorical column -> category that takes half of the rows.
    """

    start_day: int = 6
    shift: dict[str, float] | None = None
    missing: dict[str, float] | None = None
    new_category: dict[str, float] | None = None
    mix: dict[str, str] | None = None

    @property
    def features(self) -> set[str]:
        """Every feature the scenario changes."""
        return {
            name for part in (self.shift, self.missing, self.new_category, self.mix) for name in (part or {})
        }


def default_scenario(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], start_day: int = 6
) -> DriftScenario:
    """A scenario with each kind of drift on different features, chosen from the column roles."""
    numbers = [c for c in numeric if frame[c].nunique() > 2]
    categories = [c for c in categorical if frame[c].nunique() > 1]
    mix = {}
    if len(categories) > 1:
        mix = {categories[1]: str(frame[categories[1]].value_counts().index[-1])}
    return DriftScenario(
        start_day=start_day,
        shift={numbers[0]: 1.0} if numbers else None,
        missing={numbers[1]: 0.3} if len(numbers) > 1 else None,
        new_category={categories[0]: 0.2} if categories else None,
        mix=mix or None,
    )


def apply_drift(
    frame: pd.DataFrame, scenario: DriftScenario, reference: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Inject the scenario's drift into a batch of raw feature rows (integral columns stay integral)."""
    out = frame.copy()
    for column, sd in (scenario.shift or {}).items():
        values = (
            pd.to_numeric(out[column], errors="coerce")
            + sd * pd.to_numeric(reference[column], errors="coerce").std()
        )
        integral = bool(np.all(np.mod(reference[column].dropna(), 1) == 0))
        out[column] = values.round() if integral else values
    for column, share in (scenario.new_category or {}).items():
        out[column] = out[column].astype(object).where(rng.random(len(out)) >= share, NEW_CATEGORY)
    for column, category in (scenario.mix or {}).items():
        out[column] = out[column].astype(object).where(rng.random(len(out)) >= 0.5, category)
    for column, share in (scenario.missing or {}).items():
        out[column] = out[column].where(rng.random(len(out)) >= share)
    return out


def degrade_labels(
    labels: pd.Series, metadata: registry.ModelMetadata, share: float, rng: np.random.Generator
) -> pd.Series:
    """Ground truth as the world changed: a share of labels replaced (classes) or noised (regression)."""
    hit = rng.random(len(labels)) < share
    if metadata.task == "regression":
        values = labels.astype(float)
        return values + hit * rng.normal(0, values.std() or 1.0, len(values))
    classes = [str(c) for c in metadata.classes]
    flipped = [rng.choice([c for c in classes if c != label] or classes) for label in labels.astype(str)]
    return labels.astype(str).where(~hit, pd.Series(flipped, index=labels.index))


@dataclass(frozen=True)
class Traffic:
    """What the simulated days draw from: the data, the model, the drift and its reference."""

    data: ft_engineering.Dataset
    model: registry.LoadedModel
    scenario: DriftScenario
    reference: pd.DataFrame
    rows: int
    label_noise: float


def day_batch(traffic: Traffic, index: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    """Day ``index``'s raw feature rows and true labels, drifted from ``scenario.start_day`` on."""
    rows = traffic.data.frame.sample(traffic.rows, replace=True, random_state=rng.integers(2**31))
    rows = rows.reset_index(drop=True)
    features, labels = rows[traffic.model.feature_names], rows[traffic.data.target]
    if index >= traffic.scenario.start_day:
        features = apply_drift(features, traffic.scenario, traffic.reference, rng)
        labels = degrade_labels(labels, traffic.model.metadata, traffic.label_noise, rng)
    return features, labels


def _log_day(
    engine: Any,
    model: registry.LoadedModel,
    features: pd.DataFrame,
    start: pd.Timestamp,
    rng: np.random.Generator,
) -> tuple[list[str], pd.DatetimeIndex]:
    """Score a day's rows with the real pipeline and log them at random times of that day; their ids
    and times."""
    seconds = np.sort(rng.integers(0, 86_400, len(features)))
    times = start + pd.to_timedelta(seconds, unit="s")
    outputs = scoring.batch_outputs(model, features)
    ids = store.log_predictions(
        engine, features, outputs, model_version=model.version, created_at=list(times)
    )
    return ids, times


def label_arrivals(
    predicted_at: pd.DatetimeIndex, delay_hours: float, now: pd.Timestamp, rng: np.random.Generator
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """When each outcome becomes known: its prediction time plus a delay drawn uniformly from
    ``[0, delay_hours]``. Returns the positions already known at ``now`` and their arrival times
    (the others have not arrived yet, as the newest loans' outcomes in real life)."""
    delays = pd.to_timedelta(rng.uniform(0, delay_hours, len(predicted_at)), unit="h")
    arrivals = (predicted_at + delays).floor("us")  # the store keeps microseconds
    known = np.flatnonzero(arrivals <= now)
    return known, arrivals[known]


def _send_feedback(engine: Any, client: Any, items: list[dict], received_at: pd.DatetimeIndex) -> None:
    """Store the true outcomes, through the API when there is a client (which stamps them now)."""
    if not items:
        return
    if client is None:
        store.record_feedback(engine, items, received_at=list(received_at))
    else:
        client.post("/feedback", json=items).raise_for_status()


def load_traffic(
    settings: Settings, version: str | None, scenario: DriftScenario | None, rows: int, label_noise: float
) -> Traffic:
    """The model, data, scenario (default: `default_scenario`) and reference a simulation draws from."""
    model = registry.load_model(settings.models_dir, version)
    data, _ = ft_engineering.load_project_data(settings.config)
    metadata = model.metadata
    scenario = scenario or default_scenario(
        data.frame, metadata.numeric_features, metadata.categorical_features
    )
    unknown = sorted(scenario.features - set(model.feature_names))
    if unknown:
        raise ValueError(f"el escenario nombra columnas que el modelo no usa: {unknown}")
    reference = registry.load_reference(settings.models_dir, model.version)
    return Traffic(data, model, scenario, reference, rows, label_noise)


def simulate_traffic(
    settings: Settings,
    engine: Any,
    days: int = 10,
    rows_per_day: int = 300,
    scenario: DriftScenario | None = None,
    feedback_share: float = 0.5,
    label_noise: float = 0.3,
    seed: int = 0,
    version: str | None = None,
    api_url: str | None = None,
    label_delay_hours: float = 12.0,
) -> dict:
    """Send realistic traffic with chosen drift over ``days`` simulated days ending yesterday (UTC).

    Rows are drawn with replacement from the configured dataset, drifted from
    ``scenario.start_day`` on, scored by the real pipeline (``scoring.predict_frame``) and
    written by the real store path with backdated ``created_at``; the true labels of a
    ``feedback_share`` of them are stored as feedback (a ``label_noise`` share degraded on drift
    days), arriving up to ``label_delay_hours`` after their prediction (`label_arrivals`; the
    monitoring job counts an outcome in the window it arrives in). With ``api_url`` the same
    traffic goes over HTTP to a running API instead (then the API stamps every row and every
    outcome with the current time, so all of it lands in today's window).

    Returns:
        ``{"version", "days": [day start ISO...], "rows", "feedback", "drift_days", "features"}``.
    """
    if not label_delay_hours >= 0:
        raise ValueError(f"la demora de los resultados debe ser 0 horas o más, no {label_delay_hours}")
    traffic = load_traffic(settings, version, scenario, rows_per_day, label_noise)
    model, scenario = traffic.model, traffic.scenario
    rng = np.random.default_rng(seed)
    starts = [pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=days - d) for d in range(days)]
    sent = feedback = 0
    now = pd.Timestamp.now(tz="UTC")
    with _api_client(api_url, settings) if api_url else nullcontext() as client:
        for index, start in enumerate(starts):
            features, labels = day_batch(traffic, index, rng)
            if client:
                ids, times = _post_predictions(client, features), pd.DatetimeIndex([now] * len(features))
            else:
                ids, times = _log_day(engine, model, features, start, rng)
            chosen = np.flatnonzero(rng.random(len(ids)) < feedback_share)
            known, received_at = label_arrivals(times[chosen], 0 if client else label_delay_hours, now, rng)
            items = [{"prediction_id": ids[i], "actual": str(labels.iloc[i])} for i in chosen[known]]
            _send_feedback(engine, client, items, received_at)
            sent, feedback = sent + len(ids), feedback + len(items)
    return {
        "version": model.version,
        "days": [start.isoformat() for start in starts],
        "rows": sent,
        "feedback": feedback,
        "drift_days": [start.isoformat() for start in starts[scenario.start_day :]],
        "features": sorted(scenario.features),
    }


def _api_client(api_url: str, settings: Settings) -> Any:
    import httpx

    headers = {"X-API-Key": settings.effective_api_key} if settings.effective_api_key else {}
    return httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=60)


def _post_predictions(client: Any, features: pd.DataFrame) -> list[str]:
    """POST a batch to a running API's /predict; the prediction ids, in row order."""
    response = client.post(
        "/predict", content=features.to_json(orient="records"), headers={"Content-Type": "application/json"}
    )
    response.raise_for_status()
    return [item["id"] for item in response.json()["predictions"]]
