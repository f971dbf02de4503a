"""Plots: the figures (and the table) that compare trained candidates, drawn from plain data.

Every function takes arrays, Series or DataFrames and labels (never training objects); the
figures come back as matplotlib `Figure`s, which `save` writes to a file. Training saves them as
reports and logs them to MLflow; a notebook can draw them from any predictions. Their text is
Spanish, like everything a user reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay
from sklearn.preprocessing import label_binarize

CHAMPION_COLOR, OTHER_COLOR, GUIDE_COLOR = "tab:orange", "tab:blue", "grey"
MULTICLASS_NOTE = " (micro-promedio uno-contra-resto)"


def save(figure: Figure, path: Path) -> Path:
    """Lay out and write a figure as a PNG; return its path."""
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def number_text(value: Any, digits: int = 4) -> str:
    """A number for a table: ``digits`` decimals, or "-" when it is missing."""
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def comparison_table(table: pd.DataFrame, metrics: Sequence[str], threshold: bool = False) -> pd.DataFrame:
    """The candidates' summary for people: CV as "mean ± std", test values, times; Spanish headings.

    Args:
        table: one row per model (index = name) with ``cv_<metric>_mean`` / ``_std``,
            ``test_<metric>``, ``fit_time_s``, ``predict_us_per_row``, ``threshold`` and ``champion``.
        metrics: the metrics to show.
        threshold: show the decision threshold (binary tasks).
    """
    out = pd.DataFrame(index=table.index.rename("Modelo"))
    for metric in metrics:
        pairs = zip(table[f"cv_{metric}_mean"], table[f"cv_{metric}_std"])
        out[f"CV {metric}"] = [f"{mean:.4f} ± {std:.4f}" for mean, std in pairs]
    for metric in metrics:
        out[f"Prueba {metric}"] = table[f"test_{metric}"].map(number_text)
    out["Ajuste (s)"] = table["fit_time_s"].map("{:.2f}".format)
    out["Predicción (µs/fila)"] = table["predict_us_per_row"].map("{:.1f}".format)
    if threshold:
        out["Umbral"] = table["threshold"].map("{:.3f}".format)
    out["Campeón"] = table["champion"].map({True: "★", False: ""})
    return out.reset_index()


def cost_table(table: pd.DataFrame) -> pd.DataFrame:
    """The candidates' decisions in cost, for people: threshold, expected cost per row (CV as
    "mean ± std", test) and the test errors of each kind.

    Args:
        table: one row per model (index = name) with ``threshold``, ``cv_expected_cost_mean`` /
            ``_std``, ``test_expected_cost``, ``test_false_negatives``, ``test_false_positives``
            and ``champion``.
    """
    out = pd.DataFrame(index=table.index.rename("Modelo"))
    out["Umbral"] = table["threshold"].map("{:.3f}".format)
    pairs = zip(table["cv_expected_cost_mean"], table["cv_expected_cost_std"])
    out["Costo esperado CV"] = [f"{mean:.4f} ± {std:.4f}" for mean, std in pairs]
    out["Costo esperado prueba"] = table["test_expected_cost"].map("{:.4f}".format)
    out["Falsos negativos (prueba)"] = table["test_false_negatives"].astype(int)
    out["Falsos positivos (prueba)"] = table["test_false_positives"].astype(int)
    out["Campeón"] = table["champion"].map({True: "★", False: ""})
    return out.reset_index()


def curves(y_true, scores: Mapping[str, np.ndarray], classes: Sequence, pos_label: Any = None) -> Figure:
    """ROC and precision-recall curves of several models on the same test rows.

    Args:
        y_true: the true labels.
        scores: {model name: scores}; binary: the positive-class probability (n,); multiclass:
            the (n, k) probability matrix, columns in the order of ``classes``, drawn as
            micro-averaged one-vs-rest curves.
        classes: every class.
        pos_label: the positive class (binary); None for multiclass.
    """
    figure = Figure(figsize=(13, 5.5))
    roc_ax, pr_ax = figure.subplots(1, 2)
    binary = pos_label is not None
    truth = y_true if binary else label_binarize(y_true, classes=list(classes)).ravel()
    for name, score in scores.items():
        values, positive = (score, pos_label) if binary else (np.asarray(score).ravel(), 1)
        RocCurveDisplay.from_predictions(truth, values, pos_label=positive, name=name, ax=roc_ax)
        PrecisionRecallDisplay.from_predictions(truth, values, pos_label=positive, name=name, ax=pr_ax)
    note = "" if binary else MULTICLASS_NOTE
    roc_ax.plot([0, 1], [0, 1], linestyle=":", color=GUIDE_COLOR)
    roc_ax.set(
        title=f"Curvas ROC en prueba{note}",
        xlabel="Tasa de falsos positivos",
        ylabel="Tasa de verdaderos positivos",
    )
    pr_ax.set(
        title=f"Curvas precisión-exhaustividad en prueba{note}",
        xlabel="Exhaustividad (recall)",
        ylabel="Precisión",
    )
    roc_ax.legend(fontsize=8, loc="lower right")
    pr_ax.legend(fontsize=8, loc="upper right")
    return figure


def metric_bars(table: pd.DataFrame, metrics: Sequence[str], highlight: str | None = None) -> Figure:
    """Horizontal bars of each model's CV mean per metric, with one-standard-deviation error bars.

    Args:
        table: one row per model (index = name) with ``cv_<metric>_mean`` and ``cv_<metric>_std``.
        metrics: the metrics to draw, one panel each.
        highlight: the model drawn in another color (the champion).
    """
    columns = min(len(metrics), 3)
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(5 * columns, 3.8 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    names = [str(name) for name in table.index]
    colors = [CHAMPION_COLOR if name == highlight else OTHER_COLOR for name in names]
    for ax, metric in zip(axes, metrics):
        ax.barh(names, table[f"cv_{metric}_mean"], xerr=table[f"cv_{metric}_std"], color=colors, capsize=3)
        ax.set_title(f"{metric} (CV, media ± DE)")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
    figure.suptitle("Comparación de candidatos (naranja: campeón)")
    return figure


def confusion(y_true, y_pred, labels: Sequence, name: str) -> Figure:
    """Confusion matrix of one model's test predictions."""
    figure = Figure(figsize=(5.5, 5))
    ax = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(labels), ax=ax, colorbar=False)
    ax.set(title=f"Matriz de confusión en prueba: {name}", xlabel="Clase predicha", ylabel="Clase real")
    return figure


def calibration(y_true, scores: np.ndarray, name: str, pos_label: Any = None, y_pred=None) -> Figure:
    """Calibration curve of one model on the test rows (ten quantile bins).

    Binary (``pos_label`` given): ``scores`` is the positive-class probability. Multiclass: the
    (n, k) probability matrix and the predicted labels ``y_pred``; the curve is the confidence of
    the predicted class against how often it is right.
    """
    figure = Figure(figsize=(5.5, 5))
    ax = figure.subplots()
    if pos_label is not None:
        hits, confidence = np.asarray(y_true) == pos_label, scores
        title, observed = f"Calibración: P({pos_label})", "Fracción observada de positivos"
    else:
        hits, confidence = np.asarray(y_true) == np.asarray(y_pred), np.asarray(scores).max(axis=1)
        title, observed = "Calibración: confianza de la clase predicha", "Fracción observada de aciertos"
    CalibrationDisplay.from_predictions(hits, confidence, n_bins=10, strategy="quantile", name=name, ax=ax)
    ax.set(title=f"{title} ({name})", xlabel="Probabilidad media predicha", ylabel=observed)
    return figure


def diagnostic(y_true, y_pred, classes: Sequence, name: str, kind: str) -> Figure:
    """One model's test diagnostic: predicted vs actual (``kind`` regression) or its confusion matrix."""
    return (
        regression(y_true, y_pred, name) if kind == "regression" else confusion(y_true, y_pred, classes, name)
    )


def run_figures(
    table: pd.DataFrame,
    metrics: Sequence[str],
    y_true,
    scores: Mapping[str, np.ndarray],
    champion: tuple[str, np.ndarray],
    classes: Sequence,
    pos_label: Any,
    kind: str,
) -> dict[str, Figure]:
    """The comparison plots of a training run, by report name.

    Args:
        table: the summary table (`metric_bars`), one row per model.
        metrics: the metrics of the bars.
        y_true: the test labels or values.
        scores: each model's test scores (as `curves` takes them).
        champion: the champion's name and test predictions (labels or values).
        classes: every class (empty for regression).
        pos_label: the positive class (binary), else None.
        kind: ``binary``, ``multiclass`` or ``regression``.
    """
    name, predictions = champion
    figures = {"metric_bars": metric_bars(table, metrics, name)}
    if kind == "regression":
        return figures | {"predicted_vs_actual": regression(y_true, predictions, name)}
    return figures | {
        "roc_pr_curves": curves(y_true, scores, classes, pos_label),
        "confusion_matrix": confusion(y_true, predictions, classes, name),
        "calibration": calibration(y_true, scores[name], name, pos_label, predictions),
    }


def regression(y_true, y_pred, name: str) -> Figure:
    """Predicted against actual values, and residuals against predictions, of one model."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    figure = Figure(figsize=(11, 5))
    scatter_ax, residual_ax = figure.subplots(1, 2)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    scatter_ax.scatter(y_true, y_pred, s=8, alpha=0.5)
    scatter_ax.plot([low, high], [low, high], linestyle=":", color=GUIDE_COLOR)
    scatter_ax.set(xlabel="Real", ylabel="Predicho", title=f"Predicho vs real: {name}")
    residual_ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.5)
    residual_ax.axhline(0, linestyle=":", color=GUIDE_COLOR)
    residual_ax.set(xlabel="Predicho", ylabel="Residuo (real - predicho)", title="Residuos en prueba")
    return figure
