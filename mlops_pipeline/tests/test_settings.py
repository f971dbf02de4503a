"""Config loading: the shipped config is valid, environment overrides work, bad keys are named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import write_config
from settings import (
    DEFAULT_CONFIG,
    ConfigError,
    Settings,
    get_settings,
    load_config,
    normalize_database_url,
)


def test_shipped_config_is_valid_and_points_at_the_data() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.dataset.target == "Status"
    assert config.dataset.positive_class == "bad"
    assert config.dataset.path.is_file()


def test_environment_variables_choose_config_and_artifacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_config_dict: dict
) -> None:
    other = dict(default_config_dict, split={"test_size": 0.3, "seed": 7, "stratify": True})
    path = write_config(tmp_path / "other", other)
    monkeypatch.setenv("MLOPS_CONFIG", str(path))
    monkeypatch.setenv("MLOPS_ARTIFACTS_DIR", str(tmp_path / "out"))
    settings = get_settings()
    assert settings.config.split.seed == 7
    assert settings.models_dir == (tmp_path / "out" / "models").resolve()
    assert settings.db_url == f"sqlite:///{(tmp_path / 'out' / 'predictions.db').resolve()}"


def test_database_url_from_environment_is_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://user@db:5432/app")
    assert get_settings().db_url == "postgresql+psycopg://user@db:5432/app"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_relative_data_path_resolves_from_the_config_folder(
    tmp_path: Path, default_config_dict: dict
) -> None:
    path = write_config(tmp_path / "cfg", default_config_dict)
    raw = yaml.safe_load(path.read_text())
    raw["dataset"]["path"] = "sub/data.csv"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).dataset.path == (tmp_path / "cfg" / "sub" / "data.csv").resolve()


@pytest.mark.parametrize(
    ("change", "named_key"),
    [
        (lambda c: c["split"].update(test_size=1.5), "split.test_size"),
        (lambda c: c["dataset"].pop("target"), "dataset.target"),
        (lambda c: c["training"].update(cv_folds="five"), "training.cv_folds"),
        (lambda c: c["monitoring"].update(windw="1D"), "monitoring.windw"),
        (
            lambda c: c["monitoring"]["thresholds"].update(psi=[0.3, 0.1]),
            "monitoring.thresholds",
        ),
        (
            lambda c: c["dataset"].update(categorical=["Home", "Age"]),
            "more than one role",
        ),
        (
            lambda c: c["dataset"]["derived"].update(net_assets="Assets - "),
            "dataset.derived.net_assets",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, default_config_dict: dict, change, named_key: str) -> None:
    config = yaml.safe_load(yaml.safe_dump(default_config_dict))
    change(config)
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError, match=named_key.replace(".", r"\.")):
        load_config(path)


def test_missing_and_malformed_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_edits_are_picked_up_without_restart(tmp_path: Path, default_config_dict: dict) -> None:
    path = write_config(tmp_path, default_config_dict)
    settings = Settings(mlops_config=path)
    assert settings.config.split.seed == 42
    raw = yaml.safe_load(path.read_text())
    raw["split"]["seed"] = 1
    path.write_text(yaml.safe_dump(raw))
    os.utime(path, ns=(1, 10**18))
    assert settings.config.split.seed == 1


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("Assets - ", "syntax error"),
        ("Income > 1000", "is not allowed"),
        ("Income.mean()", "is not allowed"),
    ],
)
def test_a_derived_expression_that_does_not_parse_is_rejected_in_spanish(
    tmp_path: Path, default_config_dict: dict, expression: str, reason: str
) -> None:
    config = yaml.safe_load(yaml.safe_dump(default_config_dict))
    config["dataset"]["derived"]["net_assets"] = expression
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, config))
    message = str(error.value)
    assert f"dataset.derived.net_assets: Value error, la expresión '{expression}' no es válida (" in message
    assert reason in message and "installment" not in message, "only the broken expression is named"
