"""Scale-out on Dask with a real 2-worker LocalCluster: scoring equals the single-process scorer
row for row, distributed drift equals ``compute_drift``, the monitoring job runs on the cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import dask_engine
import drift
import ft_engineering
import model_deploy
import model_monitoring
import monitoring_history
import registry
import scoring
import simulation
import store
from settings import Settings

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded workers in this process (fast to start), shared by the module."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture
def project(trained_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The trained settings, also seen by the CLIs through the environment."""
    monkeypatch.setenv("MLOPS_CONFIG", str(trained_settings.mlops_config))
    return trained_settings


def scoring_input(settings: Settings, folder: Path) -> pd.DataFrame:
    """Three CSV parts of the small credit data with an id column: comma, semicolon with decimal
    commas and a BOM, comma again; returns the whole input."""
    source = pd.read_csv(settings.config.dataset.path).drop(columns="Status").reset_index(drop=True)
    source.insert(0, "customer_id", range(len(source)))
    source.loc[3, "Home"] = "ignore"
    source.loc[5, "Job"] = "astronaut"
    source.loc[7, "Income"] = np.nan
    folder.mkdir()
    thirds = np.array_split(np.arange(len(source)), 3)
    source.iloc[thirds[0]].to_csv(folder / "part-1.csv", index=False)
    source.iloc[thirds[1]].to_csv(
        folder / "part-2.csv", index=False, sep=";", decimal=",", encoding="utf-8-sig"
    )
    source.iloc[thirds[2]].to_csv(folder / "part-3.csv", index=False)
    return source


def single_process(settings: Settings, source: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    source.to_csv(tmp_path / "whole.csv", index=False)
    model = registry.load_model(settings.models_dir)
    scoring.score_file(
        model, tmp_path / "whole.csv", tmp_path / "whole_scored.csv", chunk_size=100, progress=False
    )
    return pd.read_csv(tmp_path / "whole_scored.csv")


def assert_same_predictions(scored: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(scored.columns) == list(expected.columns)
    assert scored["customer_id"].astype(int).tolist() == expected["customer_id"].tolist()
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    probabilities = [c for c in expected.columns if c.startswith(scoring.PROBABILITY_PREFIX)]
    for column in ["score", "threshold", *probabilities]:
        np.testing.assert_allclose(scored[column].astype(float), expected[column], rtol=0, atol=TOLERANCE)
    assert scored["id"].is_unique and scored["model_version"].nunique() == 1


# ----------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_score_cli_on_dask_matches_single_process_row_for_row(
    project: Settings, client: Client, tmp_path: Path, capsys, output_format: str
) -> None:
    source = scoring_input(project, tmp_path / "in")
    expected = single_process(project, source, tmp_path)

    inputs, output = str(tmp_path / "in" / "part-*.csv"), str(tmp_path / "out")
    code = model_deploy.main(
        ["score", "--engine", "dask", "--scheduler", client.scheduler.address, "--input", inputs,
         "--output", output, "--output-format", output_format, "--quiet"]
    )  # fmt: skip

    assert code == 0, capsys.readouterr().err
    assert f"{len(source)} filas puntuadas" in capsys.readouterr().out
    parts = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in parts] == [f"part-{i:05d}.{output_format}" for i in range(3)]
    if output_format == "parquet":
        scored = pd.read_parquet(tmp_path / "out")
    else:
        scored = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    assert_same_predictions(scored, expected)


def test_score_files_splits_files_into_blocks_and_keeps_the_order(
    project: Settings, client: Client, tmp_path: Path
) -> None:
    source = scoring_input(project, tmp_path / "in")
    expected = single_process(project, source, tmp_path)
    model = registry.load_model(project.models_dir)

    rows = dask_engine.score_files(
        client, model, str(tmp_path / "in" / "*.csv"), tmp_path / "out", blocksize="4KB"
    )

    assert rows == len(source) and len(list((tmp_path / "out").iterdir())) > 6
    assert_same_predictions(pd.read_parquet(tmp_path / "out"), expected)


def test_score_files_reads_parquet(trained_settings: Settings, client: Client, tmp_path: Path) -> None:
    source = pd.read_csv(trained_settings.config.dataset.path).drop(columns="Status")
    source.insert(0, "customer_id", range(len(source)))
    (tmp_path / "in").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(source)), 2)):
        source.iloc[rows].to_parquet(tmp_path / "in" / f"p{i}.parquet", index=False)
    model = registry.load_model(trained_settings.models_dir)

    rows = dask_engine.score_files(
        client, model, str(tmp_path / "in" / "*.parquet"), tmp_path / "out", output_format="csv"
    )

    scored = pd.concat([pd.read_csv(p) for p in sorted((tmp_path / "out").iterdir())], ignore_index=True)
    expected = scoring.flat_outputs(scoring.predict_frame(model, source))
    assert rows == len(source) and scored["customer_id"].tolist() == list(range(len(source)))
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(scored["score"], expected["score"], rtol=0, atol=TOLERANCE)


def test_score_cli_on_dask_rejects_bad_input_clearly(
    project: Settings, client: Client, tmp_path: Path, capsys
) -> None:
    source = scoring_input(project, tmp_path / "in")
    source.drop(columns="Age").to_csv(tmp_path / "no_age.csv", index=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    base = ["score", "--engine", "dask", "--scheduler", client.scheduler.address, "--quiet"]
    cases = [
        (
            ["--input", str(tmp_path / "nothing-*.csv"), "--output", str(tmp_path / "o1")],
            "no input file matches",
        ),
        (["--input", str(tmp_path / "no_age.csv"), "--output", str(tmp_path / "o2")], "['Age']"),
        (
            ["--input", str(tmp_path / "in" / "*.csv"), "--output", str(tmp_path / "busy")],
            "new or empty folder",
        ),
        (["--input", str(tmp_path / "in" / "*.csv"), "--output", str(tmp_path / "o3"), "--log"], "--log"),
    ]
    for arguments, message in cases:
        assert model_deploy.main([*base, *arguments]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_an_unreachable_scheduler_is_a_clear_error(project: Settings, tmp_path: Path, capsys) -> None:
    import dask

    scoring_input(project, tmp_path / "in")
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):  # a refused port: no wait needed
        unreachable = ["--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
        score = ["score", *unreachable, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
        assert model_deploy.main(score) == 2
        assert "cannot reach the Dask scheduler" in capsys.readouterr().err
        assert model_monitoring.main(["run", *unreachable]) == 2
        assert "cannot reach the Dask scheduler" in capsys.readouterr().err


# ----------------------------------------------------------------------------- drift
@pytest.fixture
def drift_data(small_settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference = the cleaned small credit data; current = a drifted resample of it with shifted
    numbers, unseen categories, new missing values, out-of-range values and an all-missing column."""
    data = ft_engineering.load_data(small_settings.config.dataset)
    reference = data.X
    rng = np.random.default_rng(0)
    current = reference.sample(3000, replace=True, random_state=1).reset_index(drop=True)
    current["Income"] = current["Income"] * 1.3
    current["Age"] = current["Age"].where(rng.random(len(current)) > 0.2)
    current["Amount"] = current["Amount"].where(rng.random(len(current)) > 0.05, 1e7)
    current["Home"] = current["Home"].where(rng.random(len(current)) > 0.1, "castle")
    current["Job"] = current["Job"].where(rng.random(len(current)) > 0.3)
    current["Debt"] = np.nan
    return reference, current, data.roles.numeric, data.roles.categorical


@pytest.mark.parametrize("correction", ["bonferroni", "none", "fdr_bh"])
def test_distributed_drift_equals_compute_drift(drift_data, client: Client, correction: str) -> None:
    reference, current, numeric, categorical = drift_data

    expected = drift.compute_drift(reference, current, numeric, categorical, correction=correction)
    result = dask_engine.compute_drift(
        client,
        reference,
        dd.from_pandas(current, npartitions=7),
        numeric,
        categorical,
        correction=correction,
    )

    pd.testing.assert_frame_equal(
        result.drop(columns=["statistic", "p_value", "p_value_raw"]),
        expected.drop(columns=["statistic", "p_value", "p_value_raw"]),
    )
    for column in ("statistic", "p_value", "p_value_raw"):
        np.testing.assert_allclose(result[column], expected[column], rtol=0, atol=TOLERANCE, equal_nan=True)
    assert {
        "ks",
        "psi",
        "jensen_shannon",
        "chi_squared",
        "missing_share",
        "unseen_share",
        "out_of_range_share",
    } <= set(result["method"])
    assert result.loc[result["feature"] == "Debt", "status"].eq("no_data").any()
    assert (
        result.loc[(result["feature"] == "Home") & (result["method"] == "unseen_share"), "statistic"].item()
        > 0.05
    )


def test_window_counts_merge_exactly(drift_data, client: Client) -> None:
    reference, current, numeric, categorical = drift_data
    profile = drift.build_reference_profile(reference, numeric, categorical)

    frame = dd.from_pandas(current, npartitions=5)

    counts = dask_engine.window_counts(client, frame, profile)
    again = dask_engine.window_counts(client, frame, profile)  # same data, same client: no key clash

    assert json.dumps(counts, sort_keys=True) == json.dumps(
        drift.current_counts(profile, current), sort_keys=True
    )
    assert again == counts


# ----------------------------------------------------------------------------- the monitoring job
def run_results(outcomes: list[dict]) -> pd.DataFrame:
    frames = [o["results"].assign(window=str(o["run"]["window_start"])) for o in outcomes]
    return pd.concat(frames, ignore_index=True).sort_values(
        ["window", "feature", "method"], ignore_index=True
    )


@pytest.mark.e2e
def test_monitoring_run_on_dask_equals_the_single_process_job(
    project: Settings, client: Client, tmp_path: Path, capsys
) -> None:
    engine = store.create_db_engine(project.db_url)
    store.init_db(engine)
    simulation.simulate_traffic(
        project,
        engine,
        days=3,
        rows_per_day=400,
        scenario=simulation.DriftScenario(start_day=2, shift={"Age": 2.0}, new_category={"Home": 0.2}),
    )
    config = project.config.monitoring  # sample_size 5000 > 400 rows a day: the local job sees every row
    local = model_monitoring.run_backfill(engine, project.models_dir, config)

    assert (
        model_monitoring.main(
            ["run", "--engine", "dask", "--scheduler", client.scheduler.address, "--backfill", "--json"]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    from_store = dask_engine.cluster_log(client, engine, project.db_url)
    on_dask = model_monitoring.run_windows(engine, project.models_dir, config, backfill=True, log=from_store)
    exported = store.read_predictions(engine)
    exported.iloc[: len(exported) // 2].to_parquet(tmp_path / "log-0.parquet")
    exported.iloc[len(exported) // 2 :].to_parquet(tmp_path / "log-1.parquet")
    exports = dask_engine.cluster_log(client, engine, project.db_url, str(tmp_path / "log-*.parquet"))
    from_parquet = model_monitoring.run_windows(
        engine, project.models_dir, config, backfill=True, log=exports
    )

    expected = run_results(local)
    for outcomes in (on_dask, from_parquet):
        result = run_results(outcomes)
        assert result[["window", "feature", "method", "status"]].equals(
            expected[["window", "feature", "method", "status"]]
        )
        for column in ("statistic", "p_value"):
            np.testing.assert_allclose(
                result[column], expected[column], rtol=0, atol=TOLERANCE, equal_nan=True
            )
        assert (
            [o["run"]["n_rows"] for o in outcomes] == [o["run"]["n_rows"] for o in local] == [400, 400, 400]
        )
        for ours, theirs in zip(outcomes, local, strict=True):  # CBPE and the limits come from the counts too
            summary, expected_summary = ours["run"]["summary"], theirs["run"]["summary"]
            estimated, expected_estimate = summary["estimated"], expected_summary["estimated"]
            assert estimated["metrics"] == pytest.approx(expected_estimate["metrics"], abs=TOLERANCE)
            assert estimated["reasons"] == expected_estimate["reasons"]
            limits = pd.json_normalize(summary["limits"]).iloc[0]
            expected_limits = pd.json_normalize(expected_summary["limits"]).iloc[0]
            np.testing.assert_allclose(np.stack(limits), np.stack(expected_limits), rtol=0, atol=TOLERANCE)
    assert [run["status"] for run in printed] == [o["run"]["status"] for o in local]
    assert printed[-1]["status"] == "red"
    runs = monitoring_history.read_runs(engine)
    assert len(runs) == 3 and runs["n_sampled"].tolist() == [400, 400, 400]
    before = pd.Timestamp("2020-01-02", tz="UTC")
    [empty] = model_monitoring.run_windows(engine, project.models_dir, config, end=before, log=from_store)
    assert empty["run"]["status"] == "no_data" and empty["run"]["n_rows"] == 0
    exported.drop(columns="created_at").to_parquet(tmp_path / "no-times.parquet")
    with pytest.raises(ValueError, match="created_at"):
        dask_engine.cluster_log(client, engine, project.db_url, str(tmp_path / "no-times.parquet"))
    engine.dispose()
