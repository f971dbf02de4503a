"""Inputs the service can trust (issue #15): keys, feedback checks, model-file integrity, store errors.

In process (`TestClient`) on both stores; the cases that need a real server, a held database
lock or several workers are in test_trust_e2e.py.
"""

from __future__ import annotations

import io
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


# ----------------------------------------------------------------------------- 1, 6, #18: CSV dialects
def _csv(client: TestClient, text: str, **headers: str):
    return client.post("/predict", content=text.encode(), headers={"Content-Type": "text/csv", **headers})


@pytest.fixture
def rows(trained_settings) -> pd.DataFrame:
    frame = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status").head(3)
    return frame.assign(Income=[0.5, 129.5, None])


def test_semicolons_with_dot_decimals_keep_their_values(client, rows) -> None:
    """Case 1: ``;`` with ``0.5`` and ``129.5`` is read as 0.5 and 129.5 (never thousands)."""
    response = _csv(client, rows.to_csv(index=False, sep=";"))
    assert response.status_code == 200, response.text
    logged = store.read_predictions(client.app.state.serving.engine)
    assert sorted(logged["Income"].dropna()) == [0.5, 129.5]


def test_decimal_commas_are_read_and_answered_in_the_same_dialect(client, rows) -> None:
    """#18: a ``;`` + decimal-comma request gets its CSV answer in that dialect, integers as integers."""
    response = _csv(client, rows.to_csv(index=False, sep=";", decimal=","), Accept="text/csv")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0].startswith("Seniority;") and ";0,5;" in lines[1] and ";129,5;" in lines[2]
    answer = pd.read_csv(io.StringIO(response.text), sep=";", decimal=",")
    assert answer["Income"].tolist()[:2] == [0.5, 129.5]
    first = lines[1].split(";")
    assert first[0] == str(rows["Seniority"].iloc[0])  # 9, not 9.0
    assert "," in first[answer.columns.get_loc("score")]


@pytest.mark.parametrize(
    ("cell", "why"),
    [("1.295", "a thousands dot beside decimal commas"), ("1.295,5", "both marks"), ("12abc", "a word")],
)
def test_a_number_that_reads_two_ways_is_a_422_naming_row_and_column(client, rows, cell, why) -> None:
    """Case 1: when a value would not parse the same under the detected dialect, nothing is scored."""
    text = rows.assign(Income=["0,5", cell, None]).to_csv(index=False, sep=";", decimal=",")
    response = _csv(client, text)
    assert response.status_code == 422, (why, response.text)
    [error] = response.json()["detail"]["errors"]
    assert (error["row"], error["column"], error["type"]) == (2, "Income", "float_parsing")
    assert store.read_predictions(client.app.state.serving.engine).empty


@pytest.mark.parametrize(
    ("edit", "row", "kind"),
    [
        (lambda lines: [*lines[:2], lines[2].rsplit(",", 1)[0], *lines[3:]], 2, "row_shape"),  # short row
        (
            lambda lines: [lines[0], *("7," + line for line in lines[1:])],
            1,
            "row_shape",
        ),  # extra leading field
        (lambda lines: [*lines[:3], lines[3].replace(",", ",ow\x00ner", 1)], 3, "csv_invalid"),  # NUL byte
        (lambda lines: [*lines[:3], lines[3] + ',"open'], 3, "csv_invalid"),  # an unterminated quote
    ],
)
def test_malformed_rows_are_refused(client, rows, edit, row, kind) -> None:
    """Case 6: a short row, one extra field on every row, a NUL byte: 422, never altered values."""
    lines = rows.to_csv(index=False).splitlines()
    response = _csv(client, "\n".join(edit(lines)) + "\n")
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]["errors"]
    assert (error["row"], error["type"]) == (row, kind)


@pytest.mark.parametrize("token", ["None", "NULL", "n/a", ""])
def test_csv_and_json_agree_on_missing_values(client, rows, token) -> None:
    """Case 6: the same tokens are missing in CSV and JSON, numeric and categorical alike."""
    record = json.loads(rows.iloc[[0]].to_json(orient="records"))[0] | {"Income": token, "Home": token}
    as_json = client.post("/predict", json=record)
    as_csv = _csv(client, pd.DataFrame([record]).to_csv(index=False))
    assert as_json.status_code == as_csv.status_code == 200, as_json.text + as_csv.text
    logged = store.read_predictions(client.app.state.serving.engine)
    assert logged["Income"].isna().all() and logged["Home"].isna().all()
    assert as_json.json()["predictions"][0]["score"] == pytest.approx(
        as_csv.json()["predictions"][0]["score"]
    )


# ----------------------------------------------------------------------------- 4: bounded cost
def test_many_empty_records_stop_at_the_first_chunk(client) -> None:
    """Case 4: [{}] * 100,000 (300 KB): a 422 from the first 1,000 records, not 1.3 million errors."""
    response = client.post(
        "/predict", content=b"[" + b"{}," * 99_999 + b"{}]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["errors"][0]["row"] == 1 and detail["error_count"] <= 13 * 1000


@pytest.mark.e2e  # a stress input: 1.5 million column names cost a second of CPU
def test_a_huge_header_is_refused_from_the_header(trained_settings) -> None:
    """Case 4: 1.5 million columns: refused by their names, before any cell is parsed (and before
    the store is used: on SQLite only, a second of CPU a backend)."""
    header = ",".join(f"c{i}" for i in range(1_500_000))
    with TestClient(model_deploy.create_app(trained_settings)) as client:
        response = _csv(client, header + "\n" + "1," * 10 + "\n")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["error_count"] >= 1_500_000 and len(detail["errors"]) == 20


# ----------------------------------------------------------------------------- 8: columns dropped at training
def test_columns_dropped_at_training_are_accepted_and_ignored(client, rows, settings) -> None:
    metadata = registry.load_metadata(settings.models_dir)
    assert "dropped_columns" in client.get("/model/info").json()
    models_dir, version = settings.models_dir, metadata.version
    path = models_dir / version / registry.METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8")) | {"dropped_columns": ["Id", "Constant"]}
    path.write_text(json.dumps(raw), encoding="utf-8")
    with TestClient(model_deploy.create_app(settings)) as fresh:
        assert fresh.get("/model/info").json()["dropped_columns"] == ["Id", "Constant"]
        assert "ignored" in json.dumps(fresh.get("/openapi.json").json())
        with_dropped = rows.assign(Id=[1, 2, 3], Constant="x")
        assert _csv(fresh, with_dropped.to_csv(index=False)).status_code == 200
        records = json.loads(with_dropped.to_json(orient="records"))
        assert fresh.post("/predict", json=records).status_code == 200
        unknown = fresh.post("/predict", json=[records[0] | {"Other": 1}])
        assert unknown.status_code == 422 and unknown.json()["detail"]["errors"][0]["column"] == "Other"
