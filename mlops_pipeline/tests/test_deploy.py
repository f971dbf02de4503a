"""Serving in process: scoring for every task, input validation, the score CLI, exits, the Dockerfile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import ft_engineering
import model_deploy
import registry
import scoring
import store
from conftest import REPO_ROOT, api_env, write_config

SRC = REPO_ROOT / "mlops_pipeline" / "src"


@pytest.fixture
def client(trained_settings):
    with TestClient(model_deploy.create_app(trained_settings)) as test_client:
        yield test_client


@pytest.fixture
def rows(trained_settings) -> pd.DataFrame:
    return (
        pd.read_csv(trained_settings.config.dataset.path)
        .drop(columns="Status")
        .head(6)
        .reset_index(drop=True)
    )


def _toy_model(task: str, target: pd.Series, X: pd.DataFrame) -> registry.LoadedModel:
    roles = ft_engineering.Roles(numeric=["x"], categorical=["c"])
    estimator = DummyRegressor() if task == "regression" else LogisticRegression(max_iter=200)
    pipeline = Pipeline(
        [("preprocessor", ft_engineering.build_preprocessor(roles)), ("model", estimator)]
    ).fit(X, target)
    classes = sorted(target.unique().tolist()) if task == "classification" else []
    metadata = registry.ModelMetadata(
        task=task, classes=classes, features=ft_engineering.feature_schema(X, roles)
    )
    return registry.LoadedModel("toy", pipeline, metadata)


def test_predict_frame_multiclass_and_regression() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], size=60)})
    labels = pd.Series(np.where(X["x"] < -0.4, "low", np.where(X["x"] > 0.4, "high", "mid")))

    multi = scoring.predict_frame(_toy_model("classification", labels, X), X)
    regression = scoring.predict_frame(_toy_model("regression", X["x"] * 2, X), X.iloc[:3])

    assert set(multi["prediction"]) <= {"low", "mid", "high"} and multi["threshold"].isna().all()
    assert multi["score"].tolist() == pytest.approx([max(p.values()) for p in multi["probabilities"]])
    assert [max(p, key=p.get) for p in multi["probabilities"]] == multi["prediction"].tolist()
    assert regression["prediction"].tolist() == pytest.approx([float((X["x"] * 2).mean())] * 3)
    assert regression["probabilities"].isna().all()


def test_binary_uses_the_stored_threshold(trained_settings, rows) -> None:
    model = registry.load_model(trained_settings.models_dir)
    strict = registry.LoadedModel(
        model.version, model.pipeline, model.metadata.model_copy(update={"threshold": 0.0})
    )

    out = scoring.predict_frame(strict, rows.iloc[:, ::-1])  # column order does not matter

    assert (out["prediction"] == "bad").all() and (out["threshold"] == 0.0).all()
    assert out["score"].tolist() == pytest.approx([p["bad"] for p in out["probabilities"]])


def test_batch_outputs_keep_one_row_per_input_even_with_a_repeated_index(trained_settings, rows) -> None:
    model = registry.load_model(trained_settings.models_dir)
    repeated = pd.concat([rows.iloc[:3], rows.iloc[:3]])  # index 0, 1, 2, 0, 1, 2

    out = scoring.batch_outputs(model, repeated)

    assert len(out) == 6 and out["id"].is_unique and (out["model_version"] == model.version).all()
    assert out[[c for c in out if c.startswith("probability_")]].sum(axis=1).tolist() == pytest.approx(
        [1.0] * 6
    )


@pytest.mark.parametrize(
    ("body", "content_type", "row", "column", "kind"),
    [
        ({"Seniority": "ten"}, "json", 1, "Seniority", "float_parsing"),
        ("EXTRA_JSON", "json", 2, "Nope", "extra_forbidden"),
        ({"Home": "rent"}, "json", 1, "Seniority", "missing"),
        ("Seniority,Home\n1,rent\n", "csv", None, "Time", "missing_column"),
        ("EXTRA", "csv", None, "Extra", "unknown_column"),
        ("BAD_CELL", "csv", 3, "Income", "float_parsing"),
        ('a,b\n1,2\n3,"4\n', "csv", None, "a", "unknown_column"),  # the header is checked first
        ("[]", "json", None, None, "empty"),
        ("{not json", "json", None, None, "json_invalid"),
        ("", "csv", None, None, "empty"),
    ],
)
def test_bad_input_is_rejected_naming_row_and_column(
    client, rows, body, content_type, row, column, kind
) -> None:
    if body == "EXTRA_JSON":
        body = json.loads(rows.iloc[:2].to_json(orient="records"))
        body[1]["Nope"] = 1
    elif body == "EXTRA":
        body = rows.assign(Extra=1).to_csv(index=False)
    elif body == "BAD_CELL":
        body = (
            rows.astype({"Income": object})
            .assign(Income=lambda f: f["Income"].where(f.index != 2, "12abc"))
            .to_csv(index=False)
        )
    if isinstance(body, (dict, list)):
        response = client.post("/predict", json=body)
    else:
        response = client.post(
            "/predict",
            content=body,
            headers={"Content-Type": "application/json" if content_type == "json" else "text/csv"},
        )

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]["errors"]
    assert any(e["row"] == row and e["column"] == column and e["type"] == kind for e in errors), errors


def test_missing_values_tokens_and_unseen_categories_are_accepted(client, rows) -> None:
    record = json.loads(rows.iloc[[0]].to_json(orient="records"))[0] | {
        "Income": None,
        "Assets": "?",
        "Home": "yurt",
        "Job": 7,
    }

    response = client.post("/predict", json=record)

    assert response.status_code == 200, response.text
    assert 0 <= response.json()["predictions"][0]["score"] <= 1


def test_limits_and_content_types(trained_settings, rows, tmp_path: Path) -> None:
    raw = trained_settings.config.model_dump(mode="json")
    raw["serving"].update(max_rows=5, max_body_mb=0.01)
    settings = trained_settings.model_copy(update={"mlops_config": write_config(tmp_path / "limits", raw)})
    with TestClient(model_deploy.create_app(settings)) as client:
        too_many = client.post(
            "/predict", content=rows.to_csv(index=False), headers={"Content-Type": "text/csv"}
        )
        too_big = client.post("/predict", content="x" * 20_000, headers={"Content-Type": "text/csv"})
        wrong_type = client.post(
            "/predict", content=b"\x00\x01", headers={"Content-Type": "application/octet-stream"}
        )
        no_file = client.post("/predict", files={"other": ("a.csv", "x")})
    assert too_many.status_code == 413 and "5" in too_many.json()["detail"]
    assert too_big.status_code == 413
    assert wrong_type.status_code == 415
    assert no_file.status_code == 422 and no_file.json()["detail"]["errors"][0]["column"] == "file"


def test_docs_schema_lists_the_real_fields(client, trained_settings) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    record = content["application/json"]["schema"]["anyOf"][0]

    assert set(record["properties"]) == {
        f.name for f in registry.load_metadata(trained_settings.models_dir).features
    }
    assert (
        record["additionalProperties"] is False
        and record["properties"]["Income"]["anyOf"][0]["type"] == "number"
    )
    assert "rent" in record["properties"]["Home"]["description"]
    assert set(content) == {"application/json", "text/csv", "multipart/form-data"}
    example = content["application/json"]["example"]
    assert client.post("/predict", json=example).status_code == 200
    assert (
        client.post(
            "/predict", content=content["text/csv"]["example"], headers={"Content-Type": "text/csv"}
        ).status_code
        == 200
    )


@pytest.mark.e2e
def test_score_cli_streams_a_csv_and_can_log(trained_settings, tmp_path: Path) -> None:
    source = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status")
    source.insert(0, "customer_id", range(len(source)))
    source.to_csv(tmp_path / "in.csv", sep=";", decimal=",", index=False)
    env = api_env(trained_settings, f"sqlite:///{tmp_path / 'log.db'}")

    result = subprocess.run(
        [sys.executable, str(SRC / "model_deploy.py"), "score", "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "out.csv"), "--chunk-size", "1000", "--log"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(tmp_path / "out.csv", sep=";", decimal=",")
    assert len(scored) == len(source) and scored["customer_id"].tolist() == list(range(len(source)))
    assert scored["id"].is_unique and set(scored["prediction"]) <= {"good", "bad"}
    engine = store.create_db_engine(env["DATABASE_URL"])
    assert sorted(store.read_predictions(engine)["id"]) == sorted(scored["id"])
    engine.dispose()


@pytest.mark.e2e
def test_no_trained_model_exits_with_a_message(small_settings) -> None:
    commands = [
        [sys.executable, str(SRC / "model_deploy.py"), "serve"],
        [sys.executable, "-m", "uvicorn", "model_deploy:app", "--app-dir", str(SRC), "--port", "0"],
        [sys.executable, str(SRC / "model_deploy.py"), "score", "--input", "x.csv", "--output", "y.csv"],
    ]
    env = api_env(small_settings)
    processes = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]

    for process in processes:  # started together: each pays its imports in parallel
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        assert "No hay modelo entrenado" in stderr and "Traceback" not in stdout + stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rows_the_model_refuses_are_a_422_and_are_not_logged(trained_settings, rows, tmp_path: Path) -> None:
    from fastapi import HTTPException

    engine = store.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    state = model_deploy.ServingState(trained_settings, engine)
    model = state.model()
    broken = rows.iloc[[0]].assign(Income=np.inf)  # the imputer refuses infinity

    with pytest.raises(HTTPException) as refused:
        model_deploy.score_and_log(state, model, broken, "r0")
    outputs = model_deploy.score_and_log(state, model, rows, "r1")

    assert refused.value.status_code == 422
    assert store.read_predictions(engine)["id"].tolist() == outputs["id"].tolist()
    assert store.count_predictions(engine, None, None) == len(rows)
    engine.dispose()


def test_waiting_requests_are_scored_together_and_only_the_bad_one_fails(
    trained_settings, rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from fastapi import HTTPException

    engine = store.open_store(f"sqlite:///{tmp_path / 'batch.db'}")
    state = model_deploy.ServingState(trained_settings, engine)
    model = state.model()
    calls: list[int] = []  # rows per pipeline call
    batch_outputs = scoring.batch_outputs
    monkeypatch.setattr(
        scoring, "batch_outputs", lambda m, frame: calls.append(len(frame)) or batch_outputs(m, frame)
    )
    frames = [rows.iloc[[1]], rows.iloc[[2]], rows.iloc[[0]].assign(Income=np.inf), rows.iloc[3:6]]

    async def send_together() -> list:
        requests = (state.batcher.score(model, frame, f"r{i}") for i, frame in enumerate(frames))
        return await asyncio.gather(*requests, return_exceptions=True)

    first, second, failed, fourth = asyncio.run(send_together())

    assert isinstance(failed, HTTPException) and failed.status_code == 422  # the imputer refuses infinity
    assert calls == [6, 1, 1, 1, 3]  # all four in one call; that failed, so each alone
    assert [len(first), len(second), len(fourth)] == [1, 1, 3]
    log = store.read_predictions(engine)
    assert sorted(log["id"]) == sorted([*first["id"], *second["id"], *fourth["id"]])
    assert log.groupby("request_id").size().to_dict() == {"r0": 1, "r1": 1, "r3": 3}
    engine.dispose()


def test_cors_origins_come_from_config(trained_settings, tmp_path: Path) -> None:
    raw = trained_settings.config.model_dump(mode="json")
    raw["serving"]["cors_origins"] = ["https://tablero.example"]
    settings = trained_settings.model_copy(update={"mlops_config": write_config(tmp_path / "cors", raw)})
    preflight = {"Origin": "https://tablero.example", "Access-Control-Request-Method": "POST"}

    with TestClient(model_deploy.create_app(settings)) as client:
        allowed = client.options("/predict", headers=preflight)
        other = client.options("/predict", headers={**preflight, "Origin": "https://otro.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://tablero.example"
    assert "access-control-allow-origin" not in other.headers
