"""``POST /predict?explain=K`` and the explainer in ``/model/info``, in process (FastAPI's TestClient)
over the small trained credit project, a multiclass and a regression example."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.pipeline import make_pipeline

import api_input
import candidates
import explain
import ft_engineering
import model_deploy
import registry
import store
from settings import Settings
from test_datasets_e2e import make_example_data
from test_explain import Project, fit_version

ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def client(trained_settings: Settings):
    with TestClient(model_deploy.create_app(trained_settings)) as test_client:
        yield test_client


@pytest.fixture
def rows(trained_settings: Settings) -> pd.DataFrame:
    """Raw credit rows, with a missing income and an unseen category."""
    frame = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status").head(8)
    frame.loc[0, "Income"], frame.loc[1, "Home"] = None, "houseboat"
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def expected_reasons(model: registry.LoadedModel, body: bytes, is_csv: bool, top_k: int) -> pd.DataFrame:
    """`explain.explain` on the rows exactly as the API validates them."""
    frame = api_input.parse_body(api_input.Body(body, is_csv), api_input.InputSchema(model.metadata), 10**6)
    return explain.explain(model, frame, top_k)


def assert_reasons_match(predictions: list[dict], expected: pd.DataFrame) -> None:
    """Each prediction's ``base_value`` and ``reasons`` are `explain.explain`'s row, largest first."""
    assert len(predictions) == len(expected)
    for prediction, (_, row) in zip(predictions, expected.iterrows()):
        assert prediction["base_value"] == pytest.approx(row["base_value"], abs=1e-9)
        wanted = explain.row_reasons(row.to_dict())
        got = prediction["reasons"]
        assert [r["feature"] for r in got] == [r["feature"] for r in wanted]
        assert [r["contribution"] for r in got] == pytest.approx(
            [r["contribution"] for r in wanted], abs=1e-9
        )
        for mine, theirs in zip(got, wanted):
            if isinstance(theirs["value"], str) or theirs["value"] is None:
                assert mine["value"] == theirs["value"]
            else:
                assert mine["value"] == pytest.approx(float(theirs["value"]))
        sizes = [abs(r["contribution"]) for r in got]
        assert sizes == sorted(sizes, reverse=True)


def without_ids(text: str) -> str:
    return ID.sub("<id>", text)


# ----------------------------------------------------------------------------- JSON
def test_json_reasons_for_a_list_and_one_record_match_explain(client: TestClient, rows: pd.DataFrame) -> None:
    model = client.app.state.serving.model()
    body = json.dumps(records(rows)).encode()
    assert len(body) <= model_deploy.SMALL_BODY_BYTES  # the MicroBatcher path
    answer = client.post(
        "/predict", params={"explain": 3}, content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert all(len(p["reasons"]) == 3 for p in predictions)
    assert_reasons_match(predictions, expected_reasons(model, body, False, 3))
    assert "explain_error" not in answer.json()

    one = client.post("/predict?explain=2", json=records(rows)[0])
    assert one.status_code == 200 and one.json()["count"] == 1
    assert [r["feature"] for r in one.json()["predictions"][0]["reasons"]] == [
        r["feature"] for r in predictions[0]["reasons"][:2]
    ]
    income = [r for r in predictions[0]["reasons"] if r["feature"] == "Income"]
    assert all(r["value"] is None for r in income)  # missing: null, not NaN


def test_without_explain_the_answer_is_unchanged_and_the_log_keeps_no_reasons(
    client: TestClient, rows: pd.DataFrame, trained_settings: Settings
) -> None:
    body = records(rows)
    plain, zero = client.post("/predict", json=body), client.post("/predict?explain=0", json=body)
    explained = client.post("/predict?explain=3", json=body)
    assert without_ids(plain.text) == without_ids(zero.text)
    assert set(plain.json()) == {"request_id", "model_version", "count", "positive_class", "predictions"}
    assert not {"base_value", "reasons"} & set(plain.json()["predictions"][0])
    shared = {
        key: value
        for key, value in explained.json()["predictions"][0].items()
        if key in {"prediction", "score"}
    }
    assert shared == {key: plain.json()["predictions"][0][key] for key in shared}
    log = store.read_predictions(client.app.state.serving.engine)
    assert len(log) == 3 * len(rows) and not [c for c in log.columns if "reason" in c or c == "base_value"]


@pytest.mark.parametrize("value", ["6", "-1", "a", "2.5"])
def test_a_bad_explain_is_a_422_naming_the_parameter_and_nothing_is_logged(
    client: TestClient, rows: pd.DataFrame, value: str
) -> None:
    answer = client.post("/predict", params={"explain": value}, json=records(rows))
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["query", "explain"] and error["msg"]
    assert store.count_predictions(client.app.state.serving.engine, None, None) == 0


# ----------------------------------------------------------------------------- CSV and the big-body path
@pytest.mark.parametrize(("sep", "decimal"), [(",", "."), (";", ",")])
def test_csv_answer_appends_the_reason_columns_in_the_request_dialect(
    client: TestClient, rows: pd.DataFrame, sep: str, decimal: str
) -> None:
    model = client.app.state.serving.model()
    rows = rows.assign(Expenses=rows["Expenses"] + 0.5)  # a decimal mark to detect
    body = rows.to_csv(index=False, sep=sep, decimal=decimal).encode()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    answer = client.post("/predict?explain=2", content=body, headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(answer.text), sep=sep, decimal=decimal)
    plain = pd.read_csv(io.StringIO(client.post("/predict", content=body, headers=headers).text), sep=sep)
    assert list(table.columns) == [*plain.columns, *explain.reason_columns(2)]
    expected = expected_reasons(model, body, True, 2)
    np.testing.assert_allclose(table["base_value"], expected["base_value"].astype(float), atol=1e-9)
    for k in (1, 2):
        assert table[f"reason_{k}_feature"].tolist() == expected[f"reason_{k}_feature"].tolist()
        np.testing.assert_allclose(
            table[f"reason_{k}_contribution"], expected[f"reason_{k}_contribution"].astype(float), atol=1e-9
        )
        numbers = pd.to_numeric(expected[f"reason_{k}_value"], errors="coerce")
        written = table[f"reason_{k}_value"].astype(str).str.replace(decimal, ".", regex=False)
        np.testing.assert_allclose(pd.to_numeric(written, errors="coerce")[numbers.notna()], numbers.dropna())


def test_a_big_body_is_explained_in_the_thread_pool_path(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    model = client.app.state.serving.model()
    body = credit_frame.drop(columns="Status").head(400).to_csv(index=False).encode()
    assert len(body) > model_deploy.SMALL_BODY_BYTES
    answer = client.post("/predict?explain=3", content=body, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and answer.json()["count"] == 400
    assert_reasons_match(answer.json()["predictions"], expected_reasons(model, body, True, 3))
    assert store.count_predictions(client.app.state.serving.engine, None, None) == 400


# ----------------------------------------------------------------------------- /model/info and failures
def save_copy(settings: Settings, name: str, pipeline) -> str:
    """A hand-saved version of the champion's metadata with another pipeline and model name."""
    champion = registry.load_model(settings.models_dir)
    version = f"20990101T000000Z-{name}"
    metadata = champion.metadata.model_copy(update={"model_name": name})
    registry.save_version(
        settings.models_dir, version, pipeline, metadata, registry.load_reference(settings.models_dir)
    )
    return version


def test_model_info_names_the_explainer_of_each_version(
    client: TestClient, trained_settings: Settings
) -> None:
    state = client.app.state.serving
    info = client.get("/model/info").json()["explainer"]
    kind = explain.explainer_kind(state.model())
    assert info == {"kind": kind, "description": explain.EXPLAINERS[kind]}
    for version in registry.list_versions(trained_settings.models_dir):  # none loaded: from the name
        name = registry.load_metadata(trained_settings.models_dir, version).model_name
        shown = client.get("/model/info", params={"model": version}).json()["explainer"]["kind"]
        assert shown == explain.explainer_kind(registry.load_model(trained_settings.models_dir, version)), (
            name
        )
    version = save_copy(trained_settings, "by_hand", state.model().pipeline)
    assert client.get("/model/info", params={"model": version}).json()["explainer"]["kind"] is None
    assert client.post("/predict", params={"model": version}, json={}).status_code == 422  # loads it
    assert client.get("/model/info", params={"model": version}).json()["explainer"]["kind"] == kind


def test_the_candidate_name_rule_agrees_with_the_fitted_models(credit_frame: pd.DataFrame) -> None:
    """`candidate_explainer_kind` (by name, for /model/info) and `explainer_kind` (of a loaded
    model) are one rule: checked on every candidate of both tasks, fitted on a few credit rows."""
    rows = credit_frame.dropna().head(60)
    for task, target in (("classification", rows["Status"]), ("regression", rows["Price"])):
        for name, family in candidates.CANDIDATES[task].items():
            fitted = family.factory(**family.defaults).fit(rows[["Amount", "Income"]], target)
            kind = explain.estimator_kind(fitted)
            assert explain.candidate_explainer_kind(task, name) == kind, name
            assert explain.candidate_explainer_kind(task, name + candidates.TUNED_SUFFIX) == kind
    assert explain.candidate_explainer_kind("classification", "ridge") is None


def test_reasons_that_fail_still_answer_the_stored_predictions(
    client: TestClient, trained_settings: Settings, rows: pd.DataFrame
) -> None:
    """A pipeline `explain` cannot read (the whole pipeline as one step) scores, logs and answers 200."""
    version = save_copy(
        trained_settings, "wrapped", make_pipeline(registry.load_model(trained_settings.models_dir).pipeline)
    )
    answer = client.post("/predict", params={"model": version, "explain": 3}, json=records(rows))
    assert answer.status_code == 200, answer.text
    assert "ColumnTransformer" in answer.json()["explain_error"]
    predictions = answer.json()["predictions"]
    assert all(p["reasons"] is None and p["base_value"] is None for p in predictions)
    logged = store.read_predictions(client.app.state.serving.engine)["id"]
    assert sorted(logged) == sorted(p["id"] for p in predictions)
    csv = client.post(
        "/predict", params={"model": version, "explain": 1}, content=rows.to_csv(index=False),
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )  # fmt: skip
    assert csv.status_code == 200 and "ColumnTransformer" in csv.headers["X-Explain-Error"]
    assert pd.read_csv(io.StringIO(csv.text))["reason_1_feature"].isna().all()


def test_docs_show_the_parameter_and_the_fields(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    [parameter] = [p for p in schema["paths"]["/predict"]["post"]["parameters"] if p["name"] == "explain"]
    assert parameter["schema"]["maximum"] == explain.MAX_REASONS and parameter["schema"]["minimum"] == 0
    fields = schema["components"]["schemas"]["PredictionOut"]["properties"]
    assert {"base_value", "reasons"} <= set(fields)


# ----------------------------------------------------------------------------- other tasks
@pytest.mark.parametrize(
    ("example", "name"),
    [("penguins", "logistic_regression"), ("penguins", "xgboost"), ("saratoga_houses", "ridge")],
)
def test_multiclass_and_regression_models_give_reasons_through_the_api(
    example: str, name: str, tmp_path: Path
) -> None:
    path = make_example_data.write_example(example, tmp_path / "data")
    settings = Settings(mlops_config=path, mlops_artifacts_dir=tmp_path / "artifacts")
    project = Project(ft_engineering.load_data(settings.config.dataset), settings.config.dataset)
    model = fit_version(project, name)
    metadata = model.metadata.model_copy(update={"model_name": name})
    registry.save_version(settings.models_dir, f"v-{name}", model.pipeline, metadata, project.data.X.head(50))
    registry.set_champion(settings.models_dir, f"v-{name}")
    body = json.dumps(records(project.data.X.sample(12, random_state=0))).encode()
    with TestClient(model_deploy.create_app(settings)) as client:
        info = client.get("/model/info").json()["explainer"]
        answer = client.post("/predict?explain=3", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert info["kind"] == explain.explainer_kind(model)
    assert_reasons_match(answer.json()["predictions"], expected_reasons(model, body, False, 3))
