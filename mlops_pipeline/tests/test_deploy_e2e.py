"""The prediction API end to end: a real uvicorn process, a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

import explain
import registry
import store
from conftest import REPO_ROOT, start_api

pytestmark = pytest.mark.e2e
SRC = REPO_ROOT / "mlops_pipeline" / "src"


@pytest.fixture
def records(trained_settings) -> pd.DataFrame:
    """Raw feature rows from the training data, with some missing values and an unseen category."""
    frame = (
        pd.read_csv(trained_settings.config.dataset.path)
        .drop(columns="Status")
        .head(40)
        .reset_index(drop=True)
    )
    frame.loc[0, "Income"] = None
    frame.loc[1, "Home"] = "houseboat"
    return frame


@pytest.fixture
def second_version(trained_settings) -> str:
    """A second saved version (same pipeline, another threshold) that is not the champion."""
    model = registry.load_model(trained_settings.models_dir)
    version = "20990101T000000Z-strict"
    metadata = model.metadata.model_copy(update={"threshold": 0.99, "model_name": "strict"})
    registry.save_version(
        trained_settings.models_dir,
        version,
        model.pipeline,
        metadata,
        registry.load_reference(trained_settings.models_dir),
    )
    return version


def _stored_ids(db_url: str) -> list[str]:
    engine = store.create_db_engine(db_url)
    try:
        return store.read_predictions(engine)["id"].tolist()
    finally:
        engine.dispose()


def _logged_rows(db_url: str) -> int:
    """``SELECT count(*) FROM predictions``: the log is a table, one row per prediction."""
    engine = store.create_db_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one()
    finally:
        engine.dispose()


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["predictions"]]


def test_every_input_form_is_predicted_and_logged(trained_settings, db_url, records, second_version) -> None:
    returned: list[str] = []
    champion = registry.champion_version(trained_settings.models_dir)
    threshold = registry.load_metadata(trained_settings.models_dir).threshold
    admin = {"X-Admin-Key": "adm1n"}
    with (
        start_api(trained_settings, db_url, ADMIN_API_KEY="adm1n") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        health = client.get("/health").json()
        assert health == {"status": "ok", "model_loaded": True, "model_version": champion}
        info = client.get("/model/info").json()
        assert info["version"] == champion and 0 < info["threshold"] < 1 and len(info["features"]) == 13
        listed = {m["version"]: m for m in client.get("/models").json()}
        assert listed[champion]["champion"] and not listed[second_version]["champion"]

        one = json.loads(records.iloc[[0]].to_json(orient="records"))[0]
        single = client.post("/predict", json=one)
        returned += _ids(single)
        prediction = single.json()["predictions"][0]
        assert prediction["model_version"] == champion and prediction["threshold"] == pytest.approx(threshold)
        assert prediction["prediction"] == ("bad" if prediction["score"] >= threshold else "good")
        assert single.json()["positive_class"] == "bad" and prediction["probabilities"] is None

        batch = client.post("/predict", json=json.loads(records.to_json(orient="records")))
        returned += _ids(batch)
        assert batch.json()["count"] == len(records)

        semicolon = "\ufeff" + records.to_csv(index=False, sep=";", decimal=",")
        as_csv = client.post("/predict", content=semicolon.encode(), headers={"Content-Type": "text/csv"})
        returned += _ids(as_csv)
        assert [p["score"] for p in as_csv.json()["predictions"]] == pytest.approx(
            [p["score"] for p in batch.json()["predictions"]]
        )

        upload = client.post(
            "/predict", files={"file": ("datos.csv", records.to_csv(index=False), "text/csv")}
        )
        returned += _ids(upload)

        csv_out = client.post(
            "/predict",
            content=records.to_csv(index=False),
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        assert csv_out.headers["content-type"].startswith("text/csv")
        table = pd.read_csv(io.StringIO(csv_out.text))
        assert list(table.columns[: records.shape[1]]) == list(records.columns)
        assert {
            "id",
            "model_version",
            "prediction",
            "score",
            "threshold",
            "probability_bad",
            "probability_good",
        } <= set(table.columns)
        returned += table["id"].tolist()

        explained = client.post("/predict", params={"explain": 2}, json=one)
        returned += _ids(explained)
        reasons = explained.json()["predictions"][0]["reasons"]
        assert len(reasons) == 2 and abs(reasons[0]["contribution"]) >= abs(reasons[1]["contribution"])
        champion_model = registry.load_model(trained_settings.models_dir)
        assert info["explainer"]["kind"] == explain.explainer_kind(champion_model)

        strict = client.post("/predict", params={"model": second_version}, json=one)
        returned += _ids(strict)
        assert strict.json()["predictions"][0]["model_version"] == second_version
        assert strict.json()["predictions"][0]["threshold"] == 0.99

        feedback = client.post(
            "/feedback",
            json=[
                {"prediction_id": returned[0], "actual": "bad"},
                {"prediction_id": returned[1], "actual": "good"},
            ],
        )
        assert feedback.status_code == 200 and feedback.json() == {"stored": 2}
        unknown = client.post(
            "/feedback",
            json=[
                {"prediction_id": returned[2], "actual": "bad"},
                {"prediction_id": "nope", "actual": "bad"},
            ],
        )
        assert unknown.status_code == 404 and unknown.json()["detail"]["unknown_ids"] == ["nope"]

        assert client.put("/models/default", json={"version": second_version}).status_code == 401
        assert client.put("/models/default", json={"version": second_version}, headers=admin).json() == {
            "default": second_version
        }
        assert client.get("/health").json()["model_version"] == second_version
        assert client.put("/models/default", json={"version": "../../etc"}, headers=admin).status_code == 404

    stored = _stored_ids(db_url)
    assert (
        _logged_rows(db_url) == len(stored) == len(returned) == len(set(returned)) == 1 + 4 * len(records) + 2
    )
    assert set(stored) == set(returned)
    engine = store.create_db_engine(db_url)
    log = store.read_predictions(engine)
    engine.dispose()
    assert log.set_index("id").loc[returned[0], "actual"] == "bad"
    assert log.set_index("id").loc[returned[2], "actual"] is None
    assert pd.isna(log.set_index("id").loc[returned[0], "Income"])


def test_concurrent_clients_get_unique_logged_ids(trained_settings, db_url, records) -> None:
    body = records.to_csv(index=False)
    with start_api(trained_settings, db_url) as base:

        def client_session(_: int) -> list[str]:
            with httpx.Client(base_url=base, timeout=60) as client:
                return [
                    i
                    for _ in range(5)
                    for i in _ids(client.post("/predict", content=body, headers={"Content-Type": "text/csv"}))
                ]

        with ThreadPoolExecutor(8) as pool:
            returned = [i for ids in pool.map(client_session, range(8)) for i in ids]

    assert len(returned) == len(set(returned)) == 8 * 5 * len(records)
    assert _logged_rows(db_url) == len(returned)
    assert sorted(_stored_ids(db_url)) == sorted(returned)  # every returned id stored exactly once


SCHEMATHESIS_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
)


def test_schemathesis_finds_no_server_error(trained_settings, db_url, tmp_path: Path) -> None:
    with start_api(trained_settings, db_url) as base:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
                "--checks", SCHEMATHESIS_CHECKS, "--max-examples", "30",
                "--phases", "examples,coverage,fuzzing",
                "--suppress-health-check", "all", "--seed", "1", "--request-timeout", "20",
            ],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_api_key_protects_everything_but_health(trained_settings, records) -> None:
    one = json.loads(records.iloc[[2]].to_json(orient="records"))[0]
    with start_api(trained_settings, API_KEY="s3cret") as base, httpx.Client(base_url=base) as client:
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json=one).status_code == 401
        assert client.post("/predict", json=one, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.put("/models/default", json={"version": "x"}).status_code == 403
        key = {"X-API-Key": "s3cret"}
        assert client.post("/predict", json=one, headers=key).status_code == 200
        # no ADMIN_API_KEY set: the prediction key does not open the admin endpoints (case 9)
        assert client.put("/models/default", json={"version": "x"}, headers=key).status_code == 403


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """The instructions of the image `docker build .` makes: its last stage and the stages it is built on."""
    text = re.sub(r"\\\n", " ", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))
    stages: dict[str, list[tuple[str, str]]] = {}
    for key, *value in (
        line.split(None, 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ):
        if key.upper() == "FROM":  # FROM image-or-stage [AS name]
            base, *alias = value[0].split()
            current = stages[alias[-1] if alias else str(len(stages))] = list(stages.get(base, []))
        current.append((key, value[0]))
    return current


def test_the_image_start_command_serves(trained_settings) -> None:
    """Run the Dockerfile's CMD as the image would: from the repo root (the image's WORKDIR), with its ENV."""
    instructions = _dockerfile_instructions()
    cmd = json.loads([value for key, value in instructions if key == "CMD"][-1])
    image_env = dict(
        pair.split("=", 1) for key, value in instructions if key == "ENV" for pair in shlex.split(value)
    )
    assert cmd[0] == "python" and image_env.get("PORT") == "8000"
    command = [sys.executable, *cmd[1:]]
    # the image's env, except where the test's trained model, port and store must win (the image
    # logs to its /data volume)
    overrides = {
        k: v
        for k, v in image_env.items()
        if k not in {"PORT", "MLOPS_ARTIFACTS_DIR", "MLOPS_CONFIG", "PATH", "DATABASE_URL"}
    }
    with start_api(trained_settings, command=command, **overrides) as base:
        assert httpx.get(f"{base}/health").json()["status"] == "ok"


def test_several_workers_start_on_a_fresh_store(trained_settings, db_url, records) -> None:
    """Two workers on a fresh store come up and share the log (both run `store.init_db`, which
    takes turns under a lock; whether they start at the same instant depends on timing)."""
    command = [sys.executable, "-m", "uvicorn", "model_deploy:app", "--app-dir", str(SRC),
               "--host", "127.0.0.1", "--port", "{port}", "--workers", "2"]  # fmt: skip
    body = records.to_csv(index=False)
    with (
        start_api(trained_settings, db_url, command=command) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        returned = [
            i
            for _ in range(6)
            for i in _ids(client.post("/predict", content=body, headers={"Content-Type": "text/csv"}))
        ]
    assert _logged_rows(db_url) == len(returned)
    assert sorted(_stored_ids(db_url)) == sorted(returned)
