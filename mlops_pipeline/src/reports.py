"""Reports: what a training or retraining run tells people, as Markdown (in Spanish).

`summary_markdown` and `cost_section` make ``reports/summary.md``; `retrain_markdown` makes
``reports/retrain_<version>.md``. Every function takes the run's summary table (one row per
candidate, as `model_training_evaluation.summary_table` builds it) and plain values, and returns
text; the training script writes the files.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

import metrics
import plots
from candidates import Selection
from settings import Costs

BINARY_NOTE = (
    "En CV, las métricas de etiqueta (accuracy, precision, recall, F1, balanced accuracy) usan la "
    "clase más probable (umbral 0.5); en prueba usan el umbral de cada modelo, elegido sobre sus "
    "predicciones fuera de pliegue."
)
PROMOTE_COMMAND = (
    "curl -X PUT http://127.0.0.1:8000/models/default -H 'Content-Type: application/json' "
    '-H "X-Admin-Key: $ADMIN_API_KEY" -d \'{{"version": "{version}"}}\''
)


def shown_metrics(kind: str, primary: str, costs: Costs | None) -> list[str]:
    """The metrics a summary shows: the task's headline ones, then the expected cost when costs are set."""
    return metrics.headline(kind, primary) + ([metrics.EXPECTED_COST] if costs else [])


def summary_markdown(
    table: pd.DataFrame, selection: Selection, kind: str, primary: str, costs: Costs | None
) -> str:
    """The candidates' table, the selection rule and why the champion won."""
    shown = shown_metrics(kind, primary, costs)
    markdown = plots.comparison_table(table, shown, kind == "binary").to_markdown(index=False)
    notes = f"**Regla:** {selection.rule}\n\n**Elección:** {selection.reason}\n"
    return f"{markdown}\n\n{notes}" + (f"\n{BINARY_NOTE}\n" if kind == "binary" else "")


def cost_section(table: pd.DataFrame, costs: Costs, rule: str, y_test: pd.Series, positive: str) -> str:
    """The decisions in cost: the cost table, how it is computed, and what the two trivial policies
    (every row negative, every row positive) cost on the same test rows."""
    negative = next(label for label in sorted(set(y_test.astype(str))) if label != positive)
    share = float(metrics.is_positive(y_test, positive).mean())
    fn, fp = f"{costs.false_negative:g}", f"{costs.false_positive:g}"
    how = (
        "el umbral de cada modelo es el que minimiza ese costo en sus predicciones fuera de pliegue"
        if rule == "cost"
        else f"el umbral de cada modelo sigue la regla `{rule}`, no los costos"
    )
    return (
        f"\n### Costo de las decisiones\n\n{plots.cost_table(table).to_markdown(index=False)}\n\n"
        f"Costos de `training.costs`: un falso negativo (un `{positive}` predicho `{negative}`) cuesta {fn} "
        f"y un falso positivo (un `{negative}` predicho `{positive}`) cuesta {fp}. El costo esperado es el "
        f"costo medio por fila, ({fn}·FN + {fp}·FP) / n; {how}. La columna CV da el costo de esas mismas "
        "predicciones por pliegue (media ± desviación estándar; algo optimista, porque el umbral se eligió "
        f"con ellas); la de prueba, el de las {len(y_test)} filas de prueba. En esas filas, predecir "
        f"`{negative}` para todas costaría {costs.false_negative * share:.4f} por fila y predecir "
        f"`{positive}` para todas {costs.false_positive * (1 - share):.4f}.\n"
    )


def holdout_table(
    table: pd.DataFrame, versions: dict[str, str], champion: dict, shown: Sequence[str]
) -> pd.DataFrame:
    """The current champion and every new candidate on the retraining holdout.

    Args:
        table: the retraining run's summary table (its ``test_<metric>`` are holdout values).
        versions: the new candidates' saved versions, by name.
        champion: ``version``, ``threshold`` and ``metrics`` (holdout values) of the champion.
        shown: the metrics to show.
    """
    rows = {"campeón actual": {"Versión": champion["version"], "threshold": champion["threshold"]}}
    rows["campeón actual"] |= {metric: champion["metrics"].get(metric) for metric in shown}
    for name, row in table.iterrows():
        rows[str(name)] = {"Versión": versions[name], "threshold": row["threshold"]}
        rows[str(name)] |= {metric: row[f"test_{metric}"] for metric in shown}
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("Modelo")
    for metric in shown:
        out[metric] = out[metric].map(plots.number_text)
    out["Umbral"] = out.pop("threshold").map(lambda value: plots.number_text(value, 3))
    return out.reset_index()


def verdict(name: str, metric: str, new: float, old: float, greater_is_better: bool) -> str:
    """``<name> tiene <metric> <new> frente a <old> del campeón (mejor | igual | peor)``."""
    better = new > old if greater_is_better else new < old
    word = "mejor" if better else ("igual" if new == old else "peor")
    return f"{name} tiene {metric} {new:.4f} frente a {old:.4f} del campeón ({word})"


def retrain_markdown(
    table: pd.DataFrame,
    versions: dict[str, str],
    selection: Selection,
    champion: dict,
    rows: dict,
    shown: Sequence[str],
    shadow: str | None = None,
) -> str:
    """The retraining report: where the rows came from, the holdout table and the verdicts.

    Args:
        table: the retraining run's summary table (``test_<metric>`` on the holdout).
        versions: the new versions by candidate name.
        selection: the selection rule's pick among the new candidates (on their CV).
        champion: the current champion on the holdout (as `holdout_table` takes it).
        rows: the run's sources: ``retrain`` holds `retraining.sources`.
        shown: the metrics to show (`shown_metrics`).
        shadow: the shadow comparison's sentence (`shadow.compare_retrained`), when it ran.
    """
    name, primary, values, rows = (
        selection.champion,
        selection.primary_metric,
        champion["metrics"],
        rows["retrain"],
    )
    version, new = versions[name], table.loc[name]
    better = selection.greater_is_better
    comparison = verdict(name, primary, new[f"test_{primary}"], values[primary], better)
    if metrics.EXPECTED_COST in shown:
        cost = metrics.EXPECTED_COST
        comparison += f"; costo esperado por fila {new[f'test_{cost}']:.4f} frente a {values[cost]:.4f}"
    return (
        f"# Reentrenamiento: {version}\n\n"
        f"Datos de entrenamiento: las {rows['original_rows']} filas originales más "
        f"{rows['log_train_rows']} filas del registro de predicciones con resultado real. Reserva para "
        f"comparar: las {rows['holdout_rows']} filas con resultado real más recientes (de "
        f"{rows['holdout_from']} a {rows['holdout_to']}), que ningún modelo nuevo vio.\n\n"
        f"{holdout_table(table, versions, champion, shown).to_markdown(index=False)}\n\n"
        f"**Candidato recomendado:** {name} (versión `{version}`). {selection.reason}\n\n"
        f"**En la reserva:** {comparison}.\n\n"
        + (f"**Comparación en sombra:** {shadow}\n\n" if shadow else "")
        + "Las versiones nuevas quedaron registradas **sin promover**: el campeón sigue siendo "
        f"`{champion['version']}`. Para promover la recomendada, con la API en marcha:\n\n"
        f"```bash\n{PROMOTE_COMMAND.format(version=version)}\n```\n"
    )
