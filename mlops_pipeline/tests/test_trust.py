"""Inputs the service can trust (issue #15): keys, feedback checks, model-file integrity, store errors.

In process (`TestClient`) on both stores; the cases that need a real server, a held database
lock or several workers are in test_trust_e2e.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import model_deploy
import registry
import store


@pytest.fixture
def settings(trained_settings, db_url):
    return trained_settings.model_copy(update={"database_url": db_url, "admin_api_key": "adm1n"})


@pytest.fixture
def client(settings):
    with TestClient(model_deploy.create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def one(trained_settings) -> dict:
    frame = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status").head(1)
    return json.loads(frame.to_json(orient="records"))[0]


def _predicted_ids(client: TestClient, record: dict, n: int) -> list[str]:
    response = client.post("/predict", json=[record] * n)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["predictions"]]


# ----------------------------------------------------------------------------- 5 and 7: feedback
@pytest.mark.parametrize(
    ("actual", "kind"),
    [
        ("x" * 201, "value_error"),  # case 5: over the column's 200 characters
        (1e300, "value_error"),  # case 5: 301 digits once spelled as a label
        ("ba\x00d", "value_error"),  # case 5: NUL, which PostgreSQL refuses
        ("", "value_error"),  # case 7
    ],
)
def test_feedback_the_store_cannot_hold_is_a_422(client, one, actual, kind) -> None:
    [prediction_id] = _predicted_ids(client, one, 1)
    response = client.post("/feedback", json=[{"prediction_id": prediction_id, "actual": actual}])
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]["errors"]
    assert error["row"] == 1 and error["column"] == "actual" and error["type"] == kind


@pytest.mark.parametrize("actual", ["maybe", 42, "Good"])
def test_feedback_labels_must_be_the_model_classes(client, one, actual) -> None:
    """Case 7: a label the prediction's model version does not have is refused, nothing stored."""
    first, second = _predicted_ids(client, one, 2)
    response = client.post(
        "/feedback",
        json=[{"prediction_id": first, "actual": "bad"}, {"prediction_id": second, "actual": actual}],
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["error_count"] == 1 and detail["errors"][0]["prediction_id"] == second
    assert "expected one of ['bad', 'good']" in detail["errors"][0]["msg"]
    assert store.read_outcomes(client.app.state.serving.engine, None, None).empty


def test_feedback_is_an_upsert(client, one) -> None:
    """Case 5: a second outcome for an id replaces the first (no primary-key collision)."""
    [prediction_id] = _predicted_ids(client, one, 1)
    for actual in ("bad", "good", "good"):
        response = client.post("/feedback", json=[{"prediction_id": prediction_id, "actual": actual}])
        assert response.status_code == 200, response.text
    outcomes = store.read_outcomes(client.app.state.serving.engine, None, None)
    assert outcomes["actual"].tolist() == ["good"]


def test_feedback_for_row_1000_and_beyond(client, one) -> None:
    """Case 2: the ids of rows 1000+ of a batch are accepted by /feedback."""
    ids = _predicted_ids(client, one, 1200)
    assert max(map(len, ids)) <= store.predictions.c.id.type.length
    items = [{"prediction_id": i, "actual": "good"} for i in ids[999:]]
    response = client.post("/feedback", json=items)
    assert response.status_code == 200 and response.json() == {"stored": len(items)}, response.text


def test_feedback_checks_the_key_before_reading_the_body(trained_settings, tmp_path: Path) -> None:
    """Case 4: without the key, a body that is not even JSON is never parsed: 401, not 422."""
    settings = trained_settings.model_copy(update={"api_key": "s3cret"})
    with TestClient(model_deploy.create_app(settings)) as client:
        response = client.post(
            "/feedback", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401


# ----------------------------------------------------------------------------- 5: store errors
def test_a_database_error_is_a_503_with_retry_after(trained_settings, one) -> None:
    """Case 5: a store that does not answer is a 503 with a clear body; /health stays 200, /ready not."""
    with TestClient(model_deploy.create_app(trained_settings)) as client:
        state = client.app.state.serving
        state.engine = store.create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", timeout=1)
        response = client.post("/predict", json=one)
        feedback = client.post("/feedback", json=[{"prediction_id": "x", "actual": "bad"}])
        health, ready = client.get("/health"), client.get("/ready")
    for failed in (response, feedback, ready):
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "5", failed.text
        assert "unavailable" in failed.json()["detail"]
    assert health.status_code == 200


def test_tables_dropped_while_serving_are_created_again(client, one) -> None:
    """Case 5: after the database is recreated, the next /predict recreates the tables (not a 500)."""
    engine = client.app.state.serving.engine
    store.metadata.drop_all(engine)
    assert client.get("/ready").status_code == 200
    response = client.post("/predict", json=one)
    assert response.status_code == 200, response.text
    assert len(store.read_predictions(engine)) == 1


# ----------------------------------------------------------------------------- 9: admin key
def test_admin_endpoints_need_their_own_key(trained_settings, one) -> None:
    champion = registry.champion_version(trained_settings.models_dir)
    no_admin = trained_settings.model_copy(update={"api_key": "s3cret"})
    with TestClient(model_deploy.create_app(no_admin)) as client:
        body = {"version": champion}
        assert client.put("/models/default", json=body).status_code == 403
        assert client.put("/models/default", json=body, headers={"X-API-Key": "s3cret"}).status_code == 403
    admin = no_admin.model_copy(update={"admin_api_key": "adm1n"})
    with TestClient(model_deploy.create_app(admin)) as client:
        assert client.put("/models/default", json=body, headers={"X-API-Key": "s3cret"}).status_code == 401
        assert client.put("/models/default", json=body, headers={"X-Admin-Key": "s3cret"}).status_code == 401
        done = client.put("/models/default", json=body, headers={"X-Admin-Key": "adm1n"})
        assert done.status_code == 200 and done.json() == {"default": champion}


# ----------------------------------------------------------------------------- 10: model file integrity
def test_a_changed_model_file_is_refused_before_unpickling(trained_settings, tmp_path: Path) -> None:
    models_dir = trained_settings.models_dir
    champion = registry.champion_version(models_dir)
    metadata = registry.load_metadata(models_dir)
    assert metadata.model_sha256 == registry.file_sha256(models_dir / champion / registry.MODEL_FILE)
    marker = tmp_path / "ran"
    (models_dir / champion / registry.MODEL_FILE).write_bytes(_pickle_running(f"touch {marker}"))
    with pytest.raises(registry.ModelIntegrityError, match="does not match the SHA-256"):
        registry.load_model(models_dir)
    assert not marker.exists()


def test_a_version_without_a_digest_is_refused_with_the_retrain_command(trained_settings) -> None:
    models_dir = trained_settings.models_dir
    path = models_dir / registry.champion_version(models_dir) / registry.METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("model_sha256")
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(registry.ModelIntegrityError, match=registry.RETRAIN_COMMAND):
        registry.load_model(models_dir)


def test_model_info_never_unpickles(client, settings, tmp_path: Path) -> None:
    """Case 10: /model/info of a version not loaded yet reads its metadata only."""
    models_dir = settings.models_dir
    champion = registry.champion_version(models_dir)
    other = "20990101T000000Z-other"
    shutil.copytree(models_dir / champion, models_dir / other)
    marker = tmp_path / "ran"
    (models_dir / other / registry.MODEL_FILE).write_bytes(_pickle_running(f"touch {marker}"))
    info = client.get("/model/info", params={"model": other})
    assert info.status_code == 200 and info.json()["version"] == champion  # the copied metadata
    refused = client.post("/predict", params={"model": other}, json={})
    assert refused.status_code == 503 and "SHA-256" in refused.json()["detail"]
    assert not marker.exists()


def _pickle_running(command: str) -> bytes:
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (command,))

    return pickle.dumps(Payload())
