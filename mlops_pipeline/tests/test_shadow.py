"""The shadow comparison wired to the store, the CLI, the API guard and --retrain: on a simulated log
with feedback the dummy challenger is reported worse, stored, printed in Spanish and refused by
PUT /models/default unless forced; every promotion and refusal lands in the audit table."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import comparison
import metrics
import model_deploy
import model_monitoring
import model_training_evaluation
import registry
import shadow
import simulation
import store
from conftest import fast_bootstrap
from settings import Settings

ADMIN = {"X-Admin-Key": "adm1n"}


# ----------------------------------------------------------------------------- fixtures
def simulate(settings: Settings, db_url: str | None = None, feedback_share: float = 0.5) -> None:
    """Two days of the champion's simulated traffic (200 rows a day) with that share fed back."""
    engine = store.open_store(db_url or settings.db_url)
    simulation.simulate_traffic(settings, engine, days=2, rows_per_day=200, feedback_share=feedback_share)
    engine.dispose()


def version_named(settings: Settings, model_name: str) -> str:
    (version,) = [v for v in registry.list_versions(settings.models_dir) if v.endswith(f"-{model_name}")]
    return version


@pytest.fixture
def project(trained_settings: Settings) -> Settings:
    """The trained test project with a fast bootstrap."""
    return fast_bootstrap(trained_settings)


@pytest.fixture
def simulated(project: Settings) -> Settings:
    simulate(project)
    return project


def a_comparison(champion: str = "a", challenger: str = "b") -> comparison.Comparison:
    """A real comparison of hand-made outputs: the challenger right everywhere, the champion on half."""
    y_true = np.array([0, 1] * 20)
    binary = metrics.metric_table("binary", [0, 1], 1)
    table = {name: binary[name] for name in ("accuracy", "brier")}
    right = np.arange(40) % 4 < 2
    champion_out = comparison.Outputs(np.where(right, y_true, 1 - y_true), np.where(right, 0.7, 0.4))
    challenger_out = comparison.Outputs(y_true, np.where(y_true == 1, 0.9, 0.1))
    result = comparison.compare_outputs(table, y_true, champion_out, challenger_out, n_boot=20)
    return comparison.Comparison(champion, challenger, "accuracy", 40, 20, 0, 0.95, result)


# ----------------------------------------------------------------------------- tables, on both stores
def test_comparisons_and_promotions_round_trip_on_each_store(engine) -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    first = shadow.write_comparison(engine, a_comparison(), since, source="cli")
    second = shadow.write_comparison(engine, a_comparison(challenger="c"), source="api")
    rows = shadow.read_comparisons(engine)
    assert rows["id"].tolist() == [second, first]  # newest first
    assert list(rows.columns) == shadow.COMPARISON_COLUMNS
    stored = shadow.latest_comparison(engine, "a", "b")
    assert stored["id"] == first and stored["since"] == pd.Timestamp(since)
    assert stored["primary_verdict"] == "better" and not stored["worse"] and stored["source"] == "cli"
    assert [item["metric"] for item in stored["metrics"]] == ["accuracy", "brier"]
    pd.testing.assert_frame_equal(
        shadow.comparison_frame(stored), a_comparison().table.rename_axis("metric"), check_dtype=False
    )
    assert shadow.latest_comparison(engine, "b", "a") is None

    check = shadow.PromotionCheck(True, False, "compared", stored, "why")
    kept = shadow.record_promotion(engine, shadow.audit_row(check, "b", "a", "ana", "10.0.0.1"))

    def failing_promotion() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        shadow.record_promotion(engine, shadow.audit_row(check, "c", "a", None, None), failing_promotion)
    audit = shadow.read_promotions(engine)
    assert audit["id"].tolist() == [kept]  # the failed promotion left no row
    row = audit.iloc[0]
    assert (row["version"], row["previous_version"], row["outcome"]) == ("b", "a", "promoted")
    assert (row["requested_by"], row["client"], row["comparison_id"]) == ("ana", "10.0.0.1", first)
    assert row["evidence"] == "compared" and not row["forced"]


# ----------------------------------------------------------------------------- compare and the CLI
def test_compare_reports_the_dummy_worse_on_the_simulated_log_and_stores_it(simulated: Settings) -> None:
    engine = store.open_store(simulated.db_url)
    champion, dummy = shadow.load_pair(simulated.models_dir, version_named(simulated, "dummy"))
    features, actual = store.read_labelled_inputs(engine)
    assert len(features) == len(actual) == int(store.read_predictions(engine)["actual"].notna().sum()) > 150
    result = shadow.compare(engine, champion, dummy, n_boot=30)  # the dummy is far worse: 30 suffice
    assert result.primary == "roc_auc" and comparison.is_worse(result)
    assert result.table.loc["roc_auc", "high"] < 0 and comparison.EXPECTED_COST in result.table.index
    stored = shadow.read_comparison(engine, shadow.write_comparison(engine, result))
    assert stored["worse"] and stored["primary_verdict"] == "worse" and stored["n_rows"] == result.rows
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(shadow.CannotCompare) as raised:
        shadow.compare(engine, champion, dummy, tomorrow)
    assert raised.value.code == "no_labelled_rows" and "desde el" in raised.value.spanish


@pytest.mark.e2e
def test_cli_compare_prints_the_spanish_table_stores_it_and_exits_0(
    simulated: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    dummy = version_named(simulated, "dummy")
    argv = ["--config", str(simulated.mlops_config), "compare", "--challenger", dummy, "--resamples", "100"]
    assert model_monitoring.main(argv) == 0
    out = capsys.readouterr().out
    cells = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in out.splitlines()
        if line.startswith("|")
    }
    assert cells["métrica"] == ["campeón", "retador", "diferencia", "intervalo 95 %", "veredicto"]
    assert cells["roc_auc"][1] == "0.5000" and cells["roc_auc"][-1] == "peor" and "expected_cost" in cells
    assert "El retador es peor en roc_auc: no lo promueva" in out
    stored = shadow.read_comparisons(store.open_store(simulated.db_url))
    assert len(stored) == 1 and stored.loc[0, "source"] == "cli" and stored.loc[0, "resamples"] == 100
    assert f"Comparación n.º {stored.loc[0, 'id']}: retador {dummy}" in out


def incomparable_copy(settings: Settings, version: str) -> str:
    """A copy of a version whose metadata says it predicts other classes (its file still verifies)."""
    other = "20990101T000000Z-other"
    shutil.copytree(settings.models_dir / version, settings.models_dir / other)
    path = settings.models_dir / other / registry.METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata |= {"version": other, "classes": ["no", "yes"], "positive_class": "yes"}
    path.write_text(json.dumps(metadata), encoding="utf-8")
    return other


def test_cli_compare_errors_are_one_spanish_line_and_exit_2(
    project: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    dummy = version_named(project, "dummy")
    base = ["--config", str(project.mlops_config), "compare"]
    cases = {
        "la versión 'nope' no existe; versiones guardadas: ": ["--challenger", "nope"],
        "no hay entradas registradas con resultado real: envíe resultados con POST /feedback": [
            "--challenger",
            dummy,
        ],
        "--since espera una fecha AAAA-MM-DD y llegó 'ayer'": ["--challenger", dummy, "--since", "ayer"],
        "--resamples debe ser al menos 100 (llegó 5)": ["--challenger", dummy, "--resamples", "5"],
    }
    for expected, options in cases.items():
        assert model_monitoring.main([*base, *options]) == 2, expected
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"Error: {expected}") and "\n" not in err, err
    simulate(project)
    other = incomparable_copy(project, dummy)
    assert model_monitoring.main([*base, "--challenger", other]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: no se pueden comparar {other} y ") and "no predicen lo mismo" in err
    assert "\n" not in err and shadow.read_comparisons(store.open_store(project.db_url)).empty


# ----------------------------------------------------------------------------- the promotion guard
@pytest.fixture
def admin_settings(project: Settings, db_url: str) -> Settings:
    return project.model_copy(update={"database_url": db_url, "admin_api_key": "adm1n"})


def test_put_refuses_the_worse_dummy_unless_forced_and_audits_every_request(admin_settings: Settings) -> None:
    settings = admin_settings
    champion, dummy = registry.champion_version(settings.models_dir), version_named(settings, "dummy")
    simulate(settings, settings.db_url)
    with TestClient(model_deploy.create_app(settings)) as client:
        refused = client.put("/models/default", json={"version": dummy, "by": "ana"}, headers=ADMIN)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert detail["metric"] == "roc_auc" and detail["interval"][1] < 0 and detail["difference"] < 0
        assert "roc_auc difference -0." in detail["msg"] and '"force": true' in detail["msg"]
        assert registry.champion_version(settings.models_dir) == champion

        forced = client.put("/models/default", json={"version": dummy, "force": True}, headers=ADMIN)
        assert forced.status_code == 200 and forced.json() == {"default": dummy}
        assert client.get("/health").json()["model_version"] == dummy

        back = client.put("/models/default", json={"version": champion, "by": "luis"}, headers=ADMIN)
        assert back.status_code == 200 and back.json() == {"default": champion}  # better than the dummy

        audit = client.get("/models/promotions", headers=ADMIN)
        assert audit.status_code == 200
        assert client.get("/models/promotions").status_code == 401
    engine = store.open_store(settings.db_url)
    comparisons = shadow.read_comparisons(engine)
    assert comparisons["source"].tolist() == ["api", "api"]  # one per pair, run by the guard
    worse_id, better_id = comparisons["id"].iloc[1], comparisons["id"].iloc[0]
    rows = audit.json()
    assert [(r["version"], r["outcome"], r["forced"], r["comparison_id"]) for r in rows] == [
        (champion, "promoted", False, better_id),
        (dummy, "promoted", True, worse_id),
        (dummy, "refused", False, worse_id),
    ]
    assert [r["requested_by"] for r in rows] == ["luis", None, "ana"]
    assert {r["client"] for r in rows} == {"testclient"} and rows[1]["previous_version"] == champion
    assert pd.Timestamp(rows[0]["created_at"]) >= pd.Timestamp(rows[2]["created_at"])


def test_put_without_labelled_traffic_is_allowed_and_recorded_without_evidence(
    admin_settings: Settings,
) -> None:
    settings = admin_settings
    dummy = version_named(settings, "dummy")
    simulate(settings, settings.db_url, feedback_share=0.0)
    with TestClient(model_deploy.create_app(settings)) as client:
        assert client.put("/models/default", json={"version": dummy}, headers=ADMIN).status_code == 200
        again = client.put("/models/default", json={"version": dummy}, headers=ADMIN)
        assert again.status_code == 200
        [same, first] = client.get("/models/promotions", headers=ADMIN).json()
    assert (first["evidence"], first["comparison_id"], first["outcome"]) == ("no_evidence", None, "promoted")
    assert same["evidence"] == "same_version" and same["previous_version"] == dummy


def test_put_refuses_pinned_unknown_incomparable_and_bad_bodies(project: Settings, tmp_path: Path) -> None:
    settings = project.model_copy(update={"admin_api_key": "adm1n"})
    dummy = version_named(settings, "dummy")
    pinned = settings.model_copy(update={"model_version": registry.champion_version(settings.models_dir)})
    with TestClient(model_deploy.create_app(pinned)) as client:
        response = client.put("/models/default", json={"version": dummy, "force": True}, headers=ADMIN)
        assert response.status_code == 409 and "MODEL_VERSION pins" in response.json()["detail"]
    simulate(settings)
    other = incomparable_copy(settings, dummy)
    with TestClient(model_deploy.create_app(settings)) as client:
        assert client.put("/models/default", json={"version": "nope"}, headers=ADMIN).status_code == 404
        for body in (
            {"version": dummy, "by": "x" * 201},
            {"version": dummy, "by": "a\x00"},
            {"version": dummy, "x": 1},
        ):
            assert client.put("/models/default", json=body, headers=ADMIN).status_code == 422, body
        response = client.put("/models/default", json={"version": other}, headers=ADMIN)
        assert response.status_code == 409 and response.json()["detail"]["evidence"] == "incomparable"
        assert "predict different things" in response.json()["detail"]["msg"]
        rows = client.get("/models/promotions", headers=ADMIN, params={"limit": 1}).json()
    assert len(rows) == 1 and rows[0]["outcome"] == "refused" and rows[0]["evidence"] == "incomparable"


# ----------------------------------------------------------------------------- --retrain
@pytest.mark.e2e
def test_retrain_stores_a_comparison_on_the_holdout_and_reports_its_verdict(project: Settings) -> None:
    engine = store.open_store(project.db_url)
    scenario = simulation.DriftScenario(start_day=2, shift={"Income": 1.0})
    simulation.simulate_traffic(
        project, engine, days=4, rows_per_day=100, scenario=scenario, feedback_share=0.6
    )
    run = model_training_evaluation.retrain(project)
    [stored] = shadow.read_comparisons(engine).to_dict("records")
    holdout = run.sources["retrain"]
    assert stored["source"] == "retrain" and stored["since"] == pd.Timestamp(holdout["holdout_from"])
    assert (
        stored["challenger_version"] == run.champion_version and stored["n_rows"] >= holdout["holdout_rows"]
    )
    assert [item["metric"] for item in stored["metrics"]] == ["roc_auc"]
    text = run.reports["retrain"].read_text(encoding="utf-8")
    assert (
        f"**Comparación en sombra:** Comparación n.º {stored['id']}: retador {run.champion_version}" in text
    )
