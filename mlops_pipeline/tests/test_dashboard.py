"""Dashboard tests: its plain functions, and every page through Streamlit's AppTest on a store
filled by the real simulation and monitoring job, and on an empty store."""

from __future__ import annotations

import copy
import functools
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import dashboard
import dashboard_comparison
import dashboard_predictions
import dashboard_shared
import drift
import ft_engineering
import messages
import model_monitoring
import monitoring_history
import registry
import shadow
import simulation
import store
from conftest import isolated, run_artifacts, start_api
from model_training_evaluation import TrainingResult
from settings import Settings

APP = Path(dashboard.__file__)
TIMEOUT = 60


# ----------------------------------------------------------------------------- fixtures
def scenario_for(settings: Settings) -> simulation.DriftScenario:
    """The simulator's default drift scenario for the test project: drift on the last of 4 days."""
    metadata = registry.load_metadata(settings.models_dir)
    data, _ = ft_engineering.load_project_data(settings.config)
    return simulation.default_scenario(
        data.frame, metadata.numeric_features, metadata.categorical_features, start_day=3
    )


def simulate_and_monitor(settings: Settings, db_url: str | None = None, monitor: bool = True) -> dict:
    """Fill the store with 4 simulated days (drift on day 3) and run the monitoring job over them."""
    engine = store.create_db_engine(db_url or settings.db_url)
    store.init_db(engine)
    report = simulation.simulate_traffic(
        settings, engine, days=4, rows_per_day=150, scenario=scenario_for(settings), feedback_share=0.5
    )
    if monitor:
        model_monitoring.run_backfill(engine, settings.models_dir, settings.config.monitoring)
    engine.dispose()
    return report


@pytest.fixture(autouse=True)
def fresh_caches(components_scanned_once: None) -> None:
    """Streamlit's caches live in the test process: start each test without them."""
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_env(trained_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The dashboard (run in this process by AppTest) reads the trained test project."""
    monkeypatch.setenv("MLOPS_CONFIG", str(trained_settings.mlops_config))
    return trained_settings


@pytest.fixture(scope="module")
def simulated_artifacts(
    small_credit_config: Path, small_training_run: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """The session's trained versions with simulated drifted traffic in their SQLite store and its
    monitoring history, built once for this module (read only: ``simulated`` copies it)."""
    folder = tmp_path_factory.mktemp("simulated")
    with isolated(folder):
        settings = Settings(mlops_config=small_credit_config)
        shutil.copytree(run_artifacts(small_training_run), settings.artifacts_dir)
        return settings.artifacts_dir, simulate_and_monitor(settings)


@pytest.fixture
def simulated(app_env: Settings, simulated_artifacts: tuple[Path, dict]) -> tuple[Settings, dict]:
    """A SQLite store with simulated drifted traffic and its monitoring history (a copy)."""
    artifacts, report = simulated_artifacts
    shutil.copytree(artifacts, app_env.artifacts_dir, dirs_exist_ok=True)
    return app_env, copy.deepcopy(report)


def settings_classes(settings: Settings) -> list[str]:
    return registry.load_metadata(settings.models_dir).classes


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if page is not None:
        at.session_state["page"] = page  # the sidebar radio starts there: one script run, not two
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    """The (form submit) button with this label."""
    return next(b for b in at.button if b.label == label)


def charts(at: AppTest) -> list[dict]:
    """The plotly figures on the page, as dicts."""
    import json

    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


# ----------------------------------------------------------------------------- plain functions
def test_traffic_light_counts_inputs_and_takes_the_worst_status() -> None:
    summary = {"features": {"a": "green", "b": "yellow", "c": "red", "d": "green", "__score__": "yellow"}}
    assert dashboard_shared.traffic_light(summary) == (
        "red",
        {"green": 2, "yellow": 1, "red": 1, "no_data": 0},
    )
    calm = {"features": {"a": "green", "__score__": "yellow"}}
    assert dashboard_shared.traffic_light(calm) == (
        "yellow",
        {"green": 1, "yellow": 0, "red": 0, "no_data": 0},
    )


def test_traffic_light_shows_the_verdict_the_monitoring_job_stored() -> None:
    summary = {"status": "red", "features": {"a": "green"}, "performance_drops": {"roc_auc": 0.2}}
    assert dashboard_shared.traffic_light(summary)[0] == "red"
    assert dashboard_shared.traffic_light({"features": {}})[0] == "no_data"


def test_feature_table_orders_by_status_then_risk_against_the_windows_limits() -> None:
    window = pd.DataFrame(
        {
            "feature": ["x", "x", "x", "y", "y", "z", "z"],
            "method": ["ks", "psi", "missing_share", "chi_squared", "psi", "psi", "missing_share"],
            "statistic": [0.3, 0.5, 0.0, 40.0, 0.12, 0.05, 0.2],
            "p_value": [0.001, 1e-9, 0.5, 0.0001, 0.01, 0.2, 1e-7],
            "status": ["yellow", "red", "green", "yellow", "yellow", "green", "red"],
        }
    )
    limits = {
        "x": {"psi": [0.1, 0.25]},
        "y": {"psi": [0.1, 0.3]},
        "z": {"psi": [0.1, 0.25], "missing_share": [0.05, 0.1]},
    }
    table = dashboard_shared.feature_table(window, limits)
    assert list(table.columns) == list(dashboard_shared.TABLE_COLUMNS)
    assert table["feature"].tolist() == ["x", "z", "y"]
    assert table["status"].tolist() == ["red", "red", "yellow"]
    assert table["risk"].tolist() == pytest.approx([2.0, 2.0, 0.4])  # y's red limit is 0.3 in this window
    assert table["test_p"].tolist() == pytest.approx([0.001, np.nan, 0.0001], nan_ok=True)
    assert table.loc[2, "test"] == pytest.approx(40.0) and np.isnan(table.loc[0, "outside"])
    legacy = dashboard_shared.run_limits({}, {"psi": (0.1, 0.25)})
    assert dashboard_shared.feature_table(window, legacy)["risk"].tolist() == pytest.approx([2.0, 0.2, 0.48])


def cell_colors(html: str) -> dict[str, str]:
    """``{"row0_col1": "#c62828", ...}`` from a Styler's HTML (its CSS rules per cell)."""
    colors = {}
    for selectors, color in re.findall(r"([^{}]+)\{\s*background-color: (#[0-9a-f]{6})", html):
        colors |= {cell: color for cell in re.findall(r"_(row\d+_col\d+)", selectors)}
    return colors


def test_styled_tables_paint_the_status_and_never_show_none() -> None:
    frame = pd.DataFrame({"Variable": ["a", "b"], "Estado": ["Rojo", "Amarillo"], "Riesgo": [1.5, np.nan]})
    frame["Detalle"] = [None, "x"]
    table = dashboard_shared.styled(frame, pd.Series(["red", "yellow"]), ["Estado", "Riesgo"])
    assert not table.data.isna().any().any()  # st.dataframe shows a missing value as "None"
    html = table.to_html()
    assert "None" not in html and "nan" not in html and html.count(">—<") == 2
    red, yellow = dashboard_shared.STATUS_COLORS["red"], dashboard_shared.STATUS_COLORS["yellow"]
    assert cell_colors(html) == {"row0_col1": red, "row0_col2": red, "row1_col1": yellow, "row1_col2": yellow}


def test_default_window_is_the_latest_complete_one_with_a_verdict() -> None:
    day = pd.Timestamp("2026-03-01", tz="UTC")
    runs = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "window_start": [
                day,
                day + pd.Timedelta("1D"),
                day + pd.Timedelta("2D"),
                day + pd.Timedelta("3D"),
            ],
            "status": ["green", "red", "yellow", "insufficient_data"],
            "n_rows": [300, 300, 310, 15],
        }
    ).assign(window_end=lambda f: f["window_start"] + pd.Timedelta("1D"))
    now = day + pd.Timedelta("3D 10h")  # the 4th window is today's, still filling up
    assert dashboard_shared.default_window(runs, now) == 3
    assert dashboard_shared.default_window(runs, day + pd.Timedelta("1h")) == 3  # none complete: most rows
    assert dashboard_shared.default_window(runs.iloc[0:0], now) is None


def test_category_shares_mark_unseen_and_missing() -> None:
    reference = pd.Series(["a", "a", "b", None])
    current = pd.Series(["a", "c", "c", None])
    shares = dashboard_shared.category_shares(reference, current).set_index("category")
    assert shares.index.tolist() == ["a", "b", dashboard_shared.MISSING_LABEL, "c"]
    assert shares["reference"].tolist() == pytest.approx([0.5, 0.25, 0.25, 0.0])
    assert shares["current"].tolist() == pytest.approx([0.25, 0.0, 0.25, 0.5])
    assert shares["unseen"].tolist() == [False, False, False, True]
    numbers = dashboard_shared.shares(reference, current, "categorical")
    assert numbers == pytest.approx(
        {"missing_reference": 0.25, "missing_current": 0.25, "outside_current": 2 / 3}
    )
    numeric = dashboard_shared.shares(pd.Series([1.0, 5.0]), pd.Series([0.0, 3.0, None, 9.0]), "numeric")
    assert numeric["outside_current"] == pytest.approx(2 / 3)


def test_class_probabilities_of_a_binary_prediction_come_from_its_score() -> None:
    binary = registry.ModelMetadata(
        task="classification", features=[], classes=["bad", "good"], positive_class="bad"
    )
    multiclass = registry.ModelMetadata(task="classification", features=[], classes=["a", "b", "c"])

    assert dashboard_predictions.class_probabilities(
        {"score": 0.25, "threshold": 0.3, "probabilities": None}, binary
    ) == {"bad": 0.25, "good": 0.75}
    assert dashboard_predictions.class_probabilities(
        {"score": 0.5, "threshold": None, "probabilities": {"a": 0.5, "b": 0.3, "c": 0.2}}, multiclass
    ) == {"a": 0.5, "b": 0.3, "c": 0.2}
    assert (
        dashboard_predictions.class_probabilities(
            {"score": 3.2, "threshold": None, "probabilities": None},
            registry.ModelMetadata(task="regression", features=[]),
        )
        is None
    )


def test_reason_lines_say_which_way_each_reason_pushes() -> None:
    binary = registry.ModelMetadata(
        task="classification", features=[], classes=["bad", "good"], positive_class="bad"
    )
    reasons = [
        {"feature": "Seniority", "value": 0.0, "contribution": 0.39},
        {"feature": "Income", "value": None, "contribution": -0.2},
    ]
    lines, sentence = dashboard_predictions.reason_lines({"threshold": 0.2, "reasons": reasons}, binary)
    assert lines == [
        "Seniority = 0: +0.39 (empuja hacia «bad»)",
        "Income = sin dato: -0.20 (empuja hacia «good»)",
    ]
    assert "log-odds de «bad»: positivo empuja hacia «bad», negativo hacia «good»" in sentence
    multiclass = registry.ModelMetadata(task="classification", features=[], classes=["a", "b", "c"])
    lines, sentence = dashboard_predictions.reason_lines(
        {"threshold": None, "prediction": "b", "reasons": reasons[:1]}, multiclass
    )
    assert lines == ["Seniority = 0: +0.39 (a favor de «b»)"] and "clase predicha «b»" in sentence
    regression = registry.ModelMetadata(task="regression", target="Price", features=[])
    lines, sentence = dashboard_predictions.reason_lines(
        {"threshold": None, "reasons": reasons[1:]}, regression
    )
    assert lines == ["Income = sin dato: -0.20 (baja el valor)"] and "valor predicho de Price" in sentence


def test_predictions_page_shows_the_reasons_of_the_last_prediction(app_env: Settings) -> None:
    """The API's real answer with ?explain=3 (in process), drawn under "Por qué" in Spanish."""
    from fastapi.testclient import TestClient

    import model_deploy

    metadata = registry.load_metadata(app_env.models_dir)
    record = {feature.name: feature.example for feature in metadata.features} | {"Seniority": 0}
    with TestClient(model_deploy.create_app(app_env)) as client:
        prediction = client.post("/predict", params={"explain": 3}, json=record).json()["predictions"][0]
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["last_prediction"] = prediction
    at.run()
    at.sidebar.radio(key="page").set_value("Predicciones").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown]
    assert "**Por qué**" in shown
    lines, sentence = dashboard_predictions.reason_lines(prediction, metadata)
    assert len(lines) == len(prediction["reasons"]) >= 1
    assert "\n".join(f"- {line}" for line in lines) in shown
    assert sentence in [c.value for c in at.caption]


# ----------------------------------------------------------------------------- pages on a simulated store
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_overview_shows_traffic_light_counts_and_alerts(
    backend: str, app_env: Settings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
        report = simulate_and_monitor(app_env, Settings().db_url)
    else:
        _, report = request.getfixturevalue("simulated")
    run = monitoring_history.read_runs(store.create_db_engine(Settings().db_url)).iloc[-1]
    status, counts = dashboard_shared.traffic_light(run["summary"])
    assert status == "red"

    at = open_page()
    html = " ".join(m.value for m in at.markdown)
    assert "Semáforo general: ROJO" in html
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Variables en rojo"] == str(counts["red"]) and counts["red"] >= 2
    assert metrics["Variables en verde"] == str(counts["green"])
    assert metrics["Predicciones en la ventana"] == "150"
    red_line = next(m.value for m in at.markdown if m.value.startswith(":red-badge"))
    assert any(f"**{feature}**" in red_line for feature in report["features"])
    assert run["model_version"] in " ".join(c.value for c in at.caption)
    assert [e.value for e in at.error] == [
        messages.alert_text(a) for a in run["summary"]["alerts"] if a["level"] == "red"
    ]
    assert any("Reentren" in m.value for m in at.markdown)
    advice = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert advice == [f"- {messages.recommendation_text(r)}" for r in run["summary"]["recommendations"]]
    [risk] = charts(at)  # the summary chart: risk by feature, the drifted ones red and on top
    bars = risk["data"][0]
    red = {messages.feature_label(f) for f, s in run["summary"]["features"].items() if s == "red"}
    top = bars["y"][-len(red) :]  # sorted by risk, highest last (top of the chart)
    assert set(top) == red and set(report["features"]) <= red
    colors = dict(zip(bars["y"], bars["marker"]["color"], strict=True))
    assert {colors[name] for name in red} == {dashboard_shared.STATUS_COLORS["red"]}


def test_drift_page_table_and_reference_vs_current(simulated: tuple[Settings, dict]) -> None:
    settings, report = simulated
    at = open_page("Deriva por variable")
    table = at.dataframe[0].value
    metadata = registry.load_metadata(settings.models_dir)
    assert set(table["Variable"]) >= {f.name for f in metadata.features}
    assert list(table.columns) == list(dashboard_shared.TABLE_COLUMNS.values())
    assert table["Estado"].iloc[0] == "Rojo"
    assert (
        table["Riesgo"]
        .dropna()
        .diff()
        .dropna()[table["Estado"].iloc[1:] == table["Estado"].iloc[:-1].to_numpy()]
        <= 0
    ).all()
    risk_chart = charts(at)[0]
    assert risk_chart["data"][0]["orientation"] == "h"

    categorical = next(iter(scenario_for(settings).new_category))
    at.selectbox(key="drift_feature").set_value(categorical).run()
    figure = charts(at)[1]
    assert [trace["type"] for trace in figure["data"]] == ["bar", "bar"]
    assert f"{simulation.NEW_CATEGORY} (nueva)" in figure["data"][1]["x"]
    unseen = next(m for m in at.metric if m.label.startswith("% categorías no vistas"))
    assert float(unseen.value.rstrip("%")) > 5

    numeric = metadata.roles.numeric[0]
    at.selectbox(key="drift_feature").set_value(numeric).run()
    figure = charts(at)[1]
    assert [trace["type"] for trace in figure["data"]] == ["histogram", "histogram"]
    assert figure["layout"]["barmode"] == "overlay"
    detail = at.dataframe[1].value
    assert set(detail["Estadístico"]) >= {"KS", "PSI", "Jensen-Shannon"}


def test_over_time_page_draws_limits_marks_and_performance(simulated: tuple[Settings, dict]) -> None:
    settings, report = simulated
    shifted = next(iter(scenario_for(settings).shift))
    at = open_page("Evolución temporal")
    at.selectbox(key="time_feature").set_value(shifted).run()
    heatmap, history, performance = charts(at)
    assert heatmap["data"][0]["type"] == "heatmap" and len(heatmap["data"][0]["x"]) == 4
    lines = [trace for trace in history["data"] if trace["mode"] == "lines+markers"]
    assert len(lines) == len(at.multiselect(key="time_methods").value) >= 4
    assert all(len(trace["x"]) == 4 for trace in lines)
    runs = monitoring_history.read_runs(store.create_db_engine(settings.db_url))
    stored = [run["limits"][shifted]["psi"] for run in runs["summary"]]
    # Panels follow drift.STATISTICS (KS, PSI, ...): PSI is the second, on axis x2.
    psi = {t["name"]: t["y"] for t in history["data"] if t.get("xaxis") == "x2" and t["mode"] == "lines"}
    assert psi["límite amarillo"] == pytest.approx([limits[0] for limits in stored])
    assert psi["límite rojo"] == pytest.approx([limits[1] for limits in stored])
    floors = settings.config.monitoring.thresholds["psi"]
    assert all(limits[0] >= floors[0] and limits[1] >= floors[1] for limits in stored)
    marks = [trace for trace in history["data"] if trace.get("name") == "Salto brusco"]
    assert marks, "the shift on day 3 is an abrupt change"
    assert {trace["name"] for trace in performance["data"]} == {
        "Real (con resultados)",
        "Estimado sin etiquetas (CBPE)",
        "Esperado (validación cruzada)",
    }
    assert at.selectbox(key="performance_metric").value == "roc_auc"
    for figure in (heatmap, history, performance):  # dates as numbers, no English month names
        assert figure["layout"]["xaxis"]["tickformat"] == dashboard_shared.AXIS_DATE

    at.multiselect(key="time_methods").set_value(["psi"]).run()
    assert len([t for t in charts(at)[1]["data"] if t["mode"] == "lines+markers"]) == 1
    at.selectbox(key="performance_metric").set_value("accuracy").run()
    assert charts(at)[2]["layout"]["title"]["text"] == "accuracy por ventana"


def test_controls_version_date_range_and_window(simulated: tuple[Settings, dict]) -> None:
    settings, report = simulated
    engine = store.create_db_engine(settings.db_url)
    champion = report["version"]
    other = next(v for v in registry.list_versions(settings.models_dir) if v != champion)
    calm = simulation.DriftScenario(start_day=99)
    simulation.simulate_traffic(settings, engine, days=2, rows_per_day=100, scenario=calm, version=other)
    model_monitoring.run_backfill(engine, settings.models_dir, settings.config.monitoring, other)
    runs = monitoring_history.read_runs(engine, champion)

    at = open_page()
    version = at.sidebar.selectbox(key="version")
    assert version.value == champion and version.options == registry.list_versions(settings.models_dir)
    window = at.sidebar.selectbox(key=f"window_{champion}")
    assert window.options == [dashboard_shared.window_label(r) for r in runs.to_dict("records")]
    assert window.value == int(runs["id"].iloc[-1])

    first_days = runs["window_start"].dt.date.iloc[:2].tolist()
    at.sidebar.date_input(key=f"dates_{champion}").set_value(tuple(first_days)).run()
    assert not at.exception
    assert at.sidebar.selectbox(key=f"window_{champion}").value == int(runs["id"].iloc[1])
    status, _ = dashboard_shared.traffic_light(runs.iloc[1]["summary"])
    assert f"Semáforo general: {messages.STATUS_LABELS[status].upper()}" in " ".join(
        m.value for m in at.markdown
    )

    at.sidebar.selectbox(key="version").set_value(other).run()
    assert not at.exception, [e.value for e in at.exception]
    other_runs = monitoring_history.read_runs(engine, other)
    assert at.sidebar.selectbox(key=f"window_{other}").value == int(other_runs["id"].iloc[-1])
    assert other in " ".join(c.value for c in at.caption)


@pytest.mark.e2e
def test_predictions_page_sends_a_record_and_its_feedback_to_the_real_api(
    simulated: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, report = simulated
    with start_api(settings, API_KEY="secreto") as url:
        monkeypatch.setenv("MLOPS_API_URL", url)
        monkeypatch.setenv("API_KEY", "secreto")
        at = open_page("Predicciones")
        recent = at.dataframe[0].value
        assert len(recent) == dashboard.RECENT_LIMIT and recent["fecha"].is_monotonic_decreasing
        assert charts(at)[0]["data"][-1]["type"] == "histogram"
        at.number_input(key="form_Seniority").set_value(0)  # the form starts at the typical case:
        at.selectbox(key="form_Home").set_value("rent")  # three inputs away from it, three reasons
        at.selectbox(key="form_Records").set_value("yes")
        button(at, "Predecir").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        prediction = at.session_state["last_prediction"]
        assert prediction["model_version"] == report["version"]
        assert at.dataframe[0].value["id"].iloc[0] == prediction["id"]  # the table shows it at once
        assert {m.label: m.value for m in at.metric}["Predicción"] == prediction["prediction"]
        assert {r["feature"] for r in prediction["reasons"]} == {"Seniority", "Home", "Records"}
        lines, _ = dashboard_predictions.reason_lines(prediction, registry.load_metadata(settings.models_dir))
        assert "**Por qué**" in [m.value for m in at.markdown]
        assert "\n".join(f"- {line}" for line in lines) in [m.value for m in at.markdown]
        assert "Seniority = 0: +" in " ".join(lines)
        assert sorted(charts(at)[-1]["data"][0]["x"]) == sorted(settings_classes(settings))
        at.selectbox(key="feedback_actual").set_value("bad").run()
        button(at, "Enviar resultado real").click().run()
        assert not at.error, [e.value for e in at.error]
        assert any(prediction["id"] in s.value for s in at.success)
    log = store.read_predictions(store.create_db_engine(settings.db_url))
    stored = log.set_index("id").loc[prediction["id"]]
    assert stored["actual"] == "bad" and stored["prediction"] == prediction["prediction"]


def test_api_errors_are_shown_not_raised(
    simulated: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import free_port

    monkeypatch.setenv("MLOPS_API_URL", f"http://127.0.0.1:{free_port()}")
    at = open_page("Predicciones")
    button(at, "Predecir").click().run()
    assert not at.exception
    assert "No se pudo conectar con la API" in at.error[0].value


def test_comparison_page_shows_the_stored_comparisons_painted_by_verdict_and_the_audit(
    app_env: Settings,
) -> None:
    simulate_and_monitor(app_env, monitor=False)
    engine, models_dir = store.open_store(app_env.db_url), app_env.models_dir
    champion = registry.load_model(models_dir)
    challengers = [v for v in registry.list_versions(models_dir) if v != champion.version]
    dummy = next(v for v in challengers if v.endswith("-dummy"))
    forest = next(v for v in challengers if v.endswith("-random_forest"))
    for version in (forest, dummy):  # the dummy's comparison is the newest
        challenger = registry.load_model(models_dir, version)
        result = shadow.compare(engine, champion, challenger, names=["roc_auc", "accuracy"], n_boot=100)
        shadow.write_comparison(engine, result)
    load = functools.partial(registry.load_model, models_dir)
    shadow.promote(engine, models_dir, load, dummy, requested_by="ana", n_boot=100)  # refused: worse
    stored = shadow.read_comparisons(engine)

    at = open_page(dashboard.COMPARISON)
    chooser = at.selectbox(key="comparison")
    assert chooser.value == stored["id"].iloc[0] and len(chooser.options) == 2
    assert chooser.options[0] == dashboard_comparison.comparison_label(stored.iloc[0])
    table = at.dataframe[0].value
    assert list(table.columns) == [
        "métrica",
        "campeón",
        "retador",
        "diferencia",
        "intervalo 95 %",
        "veredicto",
    ]
    assert table.set_index("métrica").loc["roc_auc", "veredicto"] == "peor"
    assert [e.value for e in at.error] == [messages.comparison_conclusion(stored.iloc[0])]
    assert "El retador es peor en roc_auc" in at.error[0].value
    audit = at.dataframe[1].value
    assert audit[["Versión", "Resultado", "Quién", "Forzado"]].values.tolist() == [
        [dummy, "rechazado", "ana", "no"]
    ]

    html = dashboard_comparison.comparison_styler(stored.iloc[0]).to_html()
    red = dashboard_shared.STATUS_COLORS["red"]
    verdicts = table["veredicto"].tolist()
    assert {cell for cell, color in cell_colors(html).items() if color == red} == {
        f"row{i}_col5" for i, verdict in enumerate(verdicts) if verdict == "peor"
    }
    at.selectbox(key="comparison").set_value(int(stored["id"].iloc[1])).run()
    assert not at.exception and forest in at.caption[-1].value


# ----------------------------------------------------------------------------- empty store and the run button
@pytest.mark.parametrize("trained", [True, False], ids=["trained_model", "fresh_clone"])
def test_empty_store_shows_how_to_fill_it(trained: bool, request: pytest.FixtureRequest) -> None:
    if trained:
        request.getfixturevalue("app_env")
    at = open_page()
    for page in dashboard.PAGES:
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, [e.value for e in at.exception]
        shown = " ".join(e.value for e in [*at.info, *at.warning])
        assert "model_monitoring.py simulate" in shown, page
        assert ("model_training_evaluation.py" in shown) is not trained, page
        assert not at.get("plotly_chart")


def test_history_written_with_spanish_sentences_still_displays(app_env: Settings) -> None:
    """Runs stored before the history held codes kept their alerts, advice and details as text."""
    engine = store.create_db_engine(app_env.db_url)
    store.init_db(engine)
    start = pd.Timestamp("2026-03-01", tz="UTC")
    summary = {
        "status": "red",
        "features": {"Age": "red", "Income": "green"},
        "alerts": [{"level": "red", "feature": "Age", "message": "Deriva en Age: PSI = 0.4"}],
        "recommendations": [{"action": "retrain", "feature": None, "message": "Reentrene el modelo ya."}],
    }
    version = registry.champion_version(app_env.models_dir)
    run = {"window_start": start, "window_end": start + pd.Timedelta("1D"), "model_version": version}
    run |= {"n_rows": 10, "n_sampled": 10, "status": "red", "summary": summary}
    results = pd.DataFrame(
        {
            "feature": ["Age", "Age", "Income"],
            "method": ["psi", "missing_share", "psi"],
            "statistic": [0.4, 0.3, 0.01],
            "p_value": float("nan"),
            "drifted": [True, True, False],
            "status": ["red", "red", "green"],
            "detail": [None, "faltantes 0.0% -> 30.0%", None],
        }
    )
    monitoring_history.write_monitoring_run(engine, run, results)

    at = open_page()
    assert [e.value for e in at.error] == ["Deriva en Age: PSI = 0.4"]
    assert any("Reentrene el modelo ya." in m.value for m in at.markdown)
    at.sidebar.radio(key="page").set_value("Deriva por variable").run()
    at.selectbox(key="drift_feature").set_value("Age").run()
    assert not at.exception, [e.value for e in at.exception]
    detail = at.dataframe[1].value.set_index("Estadístico")["Detalle"]
    assert detail["cambio en % de faltantes"] == "faltantes 0.0% -> 30.0%" and detail["PSI"] == ""


def test_run_monitoring_button_writes_history_and_refreshes(app_env: Settings) -> None:
    simulate_and_monitor(app_env, monitor=False)
    at = open_page()
    assert dashboard.NO_RUNS_MESSAGE in [i.value for i in at.info]
    at.sidebar.button(key="run_now").click().run()
    assert not at.exception
    runs = monitoring_history.read_runs(store.create_db_engine(app_env.db_url))
    assert len(runs) == 4
    assert "Semáforo general: ROJO" in " ".join(m.value for m in at.markdown)


# ----------------------------------------------------------------------------- other tasks
@pytest.mark.parametrize(
    ("target", "task"),
    [("Home", "classification"), ("Price", "regression")],
    ids=["multiclass", "regression"],
)
@pytest.mark.e2e
def test_every_page_works_for_multiclass_and_regression(
    target: str,
    task: str,
    tmp_path: Path,
    default_config_dict: dict,
    credit_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from conftest import write_config
    from model_training_evaluation import train

    config = json.loads(json.dumps(default_config_dict))
    dataset = config["dataset"]
    dataset |= {"target": target, "task": task, "positive_class": None, "derived": {}, "validation": {}}
    dataset["numeric"] = [c for c in dataset["numeric"] if c != target]
    dataset["categorical"] = [c for c in dataset["categorical"] if c != target] + ["Status"]
    config["training"] |= {
        "cv_folds": 2,
        "tracking": False,
        "models": {"random_forest": {"n_estimators": 10}},
        "tuning": {"enabled": False},
        "reference_sample_size": 300,
    }
    path = write_config(
        tmp_path / "project", config, credit_frame.dropna(subset=[target]).sample(500, random_state=0)
    )
    monkeypatch.setenv("MLOPS_CONFIG", str(path))
    settings = Settings()
    train(settings)
    engine = store.create_db_engine(settings.db_url)
    store.init_db(engine)
    scenario = simulation.DriftScenario(start_day=3, shift={"Amount": 2.0})
    simulation.simulate_traffic(
        settings, engine, days=4, rows_per_day=100, scenario=scenario, feedback_share=0.5
    )
    model_monitoring.run_backfill(engine, settings.models_dir, settings.config.monitoring)
    output, kind = drift.output_feature(registry.load_metadata(settings.models_dir))

    at = open_page()
    assert "Semáforo general: ROJO" in " ".join(m.value for m in at.markdown)
    at.sidebar.radio(key="page").set_value("Deriva por variable").run()
    assert messages.feature_label(output) in set(at.dataframe[0].value["Variable"])
    at.selectbox(key="drift_feature").set_value(output).run()
    assert not at.exception, [e.value for e in at.exception]
    assert charts(at)[1]["data"][0]["type"] == ("bar" if kind == "categorical" else "histogram")
    for page in ("Evolución temporal", "Predicciones"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert charts(at), page
