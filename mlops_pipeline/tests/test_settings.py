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
            "dataset.categorical: 'Age' ya está en dataset.numeric",
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
    with pytest.raises(ConfigError, match="no existe el archivo de configuración .*nope.yaml; indique otro"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match=r"bad.yaml no es YAML válido \(línea 1, columna \d+\)"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="debe ser un mapeo de secciones"):
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
        ("Assets - ", "error de sintaxis"),
        ("Income > 1000", "no está permitido"),
        ("Income.mean()", "no está permitido"),
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
    assert message.startswith(f"dataset.derived.net_assets: la expresión '{expression}' no es válida: ")
    assert reason in message and "installment" not in message, "only the broken expression is named"


# ----------------------------------------------------------------------------- config mistakes, in Spanish
def mistaken_config(folder: Path, default_config_dict: dict, change) -> Path:
    config = yaml.safe_load(yaml.safe_dump(default_config_dict))
    change(config)
    return write_config(folder, config)


CLI_MISTAKES = {
    "derived_typo": (
        lambda c: c["dataset"]["derived"].update(net_assets="Assets - Deuda"),
        "dataset.derived.net_assets: en la expresión 'Assets - Deuda', 'Deuda' no es una variable del "
        "modelo; escriba una de: Age, Amount, Assets, Debt,",
    ),
    "rule_on_unknown_column": (
        lambda c: c["dataset"]["validation"]["ranges"].update(Ingresos={"min": 0}),
        "dataset.validation.ranges.Ingresos: 'Ingresos' no es una columna de los datos; escriba una de: ",
    ),
    "range_on_a_category": (
        lambda c: c["dataset"]["validation"]["ranges"].update(Home={"min": 0}),
        "dataset.validation.ranges.Home: 'Home' es categórica; su regla va en dataset.validation.categories",
    ),
    "empty_role_lists": (
        lambda c: c["dataset"].update(numeric=[], categorical=[]),
        "dataset.numeric, dataset.categorical: las dos listas están vacías, así que el modelo no tendría "
        "variables; liste las columnas o borre las dos claves para que se infieran",
    ),
    "target_typo": (
        lambda c: c["dataset"].update(target="Estatus"),
        "dataset.target: 'Estatus' no es una columna de los datos; escriba una de: Status, ",
    ),
    "key_typo": (
        lambda c: c["monitoring"].update(windw="1D"),
        "monitoring.windw: 'windw' no es una clave de esta sección; escriba una de: window, ",
    ),
}


@pytest.mark.parametrize("mistake", sorted(CLI_MISTAKES))
def test_each_config_mistake_stops_the_clis_with_one_spanish_line(
    mistake: str, tmp_path: Path, default_config_dict: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    import ft_engineering
    import model_training_evaluation

    change, expected = CLI_MISTAKES[mistake]
    path = mistaken_config(tmp_path / "project", default_config_dict, change)
    train_argv = ["--config", str(path), "--artifacts", str(tmp_path / "out"), "--quiet"]
    for cli, argv in (
        (model_training_evaluation.main, train_argv),
        (ft_engineering.main, ["--config", str(path)]),
    ):
        assert cli(argv) == 2
        out, err = capsys.readouterr()
        assert out.splitlines() == [out.strip()] and out.startswith(f"Error de configuración: {expected}")
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_the_monitoring_cli_prints_the_config_mistake_as_one_spanish_line(
    tmp_path: Path, default_config_dict: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    import model_monitoring

    change, expected = CLI_MISTAKES["empty_role_lists"]
    path = mistaken_config(tmp_path / "bad", default_config_dict, change)
    assert model_monitoring.main(["--config", str(path), "run"]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [f"Error: {expected}"]


@pytest.mark.e2e
def test_the_serve_command_prints_the_config_mistake_as_one_spanish_line(
    trained_settings: Settings, tmp_path: Path, default_config_dict: dict
) -> None:
    import subprocess
    import sys

    from conftest import REPO_ROOT, api_env, free_port

    change, expected = CLI_MISTAKES["empty_role_lists"]
    path = mistaken_config(tmp_path / "bad", default_config_dict, change)
    command = [sys.executable, "mlops_pipeline/src/model_deploy.py", "serve", "--port", str(free_port())]
    env = api_env(trained_settings) | {"MLOPS_CONFIG": str(path)}
    served = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert served.returncode == 2 and served.stdout == ""
    assert served.stderr.splitlines() == [f"Error de configuración: {expected}"]


def test_training_flags_and_environment_variables_are_checked_in_spanish(
    small_credit_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import model_training_evaluation

    argv = ["--config", str(small_credit_config), "--artifacts", str(tmp_path / "out"), "--quiet"]
    assert model_training_evaluation.main([*argv, "--trials", "0"]) == 2
    assert capsys.readouterr().out == (
        "Error de configuración: training.tuning.trials: debe ser mayor o igual que 1 (se escribió 0)\n"
    )
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(ConfigError, match=r"^variable de entorno PORT: debe ser un número entero"):
        get_settings()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["dataset"]["validation"]["ranges"].update(Age={"min": 60, "max": 18}),
            "dataset.validation.ranges.Age: min 60 es mayor que max 18; escriba min <= max",
        ),
        (
            lambda c: c["dataset"].update(drop_columns=["Age"]),
            "dataset.drop_columns: 'Age' está en dataset.numeric; quítela de una",
        ),
        (
            lambda c: c["dataset"].update(numeric=[*c["dataset"]["numeric"], "Status"]),
            "dataset.numeric: 'Status' es dataset.target; quítela de la lista",
        ),
        (
            lambda c: c["dataset"]["derived"].update(Age="Amount / 2"),
            "dataset.derived.Age: ya es una columna; elija otro nombre",
        ),
        (
            lambda c: c["dataset"].update(task="regression"),
            "dataset.positive_class: solo se usa en clasificación; bórrela o use task: classification",
        ),
        (
            lambda c: c["training"].update(threshold_rule="costo"),
            "training.threshold_rule: debe ser una de: 'f1', 'youden', 'fixed' o 'cost' "
            "(se escribió 'costo')",
        ),
        (
            lambda c: c["training"]["costs"].update(false_negative=0),
            "training.costs.false_negative: debe ser mayor que 0 (se escribió 0)",
        ),
        (
            lambda c: c["monitoring"]["thresholds"].update(psi=[0.3]),
            "monitoring.thresholds.psi: a la lista le falta el elemento 2",
        ),
    ],
)
def test_impossible_settings_are_one_spanish_line_naming_the_key(
    tmp_path: Path, default_config_dict: dict, change, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(mistaken_config(tmp_path, default_config_dict, change))
    assert str(error.value) == message


def test_unknown_suggests_the_closest_name() -> None:
    from settings import unknown

    assert unknown("Incom", ["Income", "Age"]) == (
        "'Incom' no es una columna de los datos; escriba una de: Income, Age (¿quiso decir 'Income'?)"
    )
    assert unknown("zzz", [f"c{i}" for i in range(20)], "una opción").endswith("c14 y 5 más")
