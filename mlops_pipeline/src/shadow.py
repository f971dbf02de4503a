"""Shadow comparison at the I/O edge: the logged inputs with feedback, the stored comparisons and the
promotion guard with its audit.

`comparison` is pure: it compares two loaded versions on rows it is given. This module reads those
rows from the prediction store (`store.read_labelled_inputs`: every logged input whose true outcome arrived,
whichever version served it, since a date), runs the comparison (`compare`; `compare_retrained`
after ``--retrain``), stores and reads it (`write_comparison`, `read_comparisons`,
`latest_comparison`), decides whether ``PUT /models/default`` may promote a version
(`promotion_verdict`), and promotes it while keeping the audit of every promotion and refusal
(`promote`, `read_promotions`). The tables are `store.comparisons` and `store.promotions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import comparison
import messages
import registry
import store
from settings import Settings

COMPARISON_COLUMNS = [column.name for column in store.comparisons.columns]
PROMOTION_COLUMNS = [column.name for column in store.promotions.columns]
EVIDENCE = {
    "compared": "a stored shadow comparison of the champion and this version",
    "no_evidence": "no logged input has a true outcome yet: nothing to compare on",
    "same_version": "the version already is the champion",
    "no_champion": "there was no champion to compare with",
    "incomparable": "the versions cannot be compared on the log",
}
"""Why a promotion was allowed or refused (the audit's ``evidence``)."""


class CannotCompare(ValueError):
    """Why two versions cannot be compared on the log: ``code`` (a key of `messages.COMPARE_ERRORS`)
    and the values its Spanish message names in ``params``; the text of the exception is English."""

    def __init__(self, code: str, message: str, **params: object):
        super().__init__(message)
        self.code, self.params = code, params

    @property
    def spanish(self) -> str:
        return messages.compare_error_text(self.code, self.params)


# ----------------------------------------------------------------------------- comparing on the log
def load_pair(
    models_dir: Path, challenger: str, champion: str | None = None
) -> tuple[registry.LoadedModel, registry.LoadedModel]:
    """The champion (default: the current one) and the challenger, loaded.

    Raises:
        CannotCompare: ``unknown_version`` when either is not a saved version.
        registry.ModelNotFoundError: when there is no champion at all.
    """
    available = registry.list_versions(models_dir)
    for version in (challenger, champion):
        if version is not None and version not in available:
            message = f"unknown model version '{version}'; available: {available}"
            raise CannotCompare("unknown_version", message, version=version, available=", ".join(available))
    return registry.load_model(models_dir, champion), registry.load_model(models_dir, challenger)


def compare(
    engine: Engine,
    champion: registry.LoadedModel,
    challenger: registry.LoadedModel,
    since: datetime | None = None,
    *,
    names: list[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> comparison.Comparison:
    """`comparison.compare_models` of two versions on the logged inputs with feedback since ``since``.

    Raises:
        CannotCompare: ``incomparable`` (different task or classes), ``no_labelled_rows`` or, for
            anything else the comparison refuses, ``cannot_compare``.
    """
    names_of = {"champion": champion.version, "challenger": challenger.version}
    try:
        comparison.check_comparable(champion, challenger)
    except ValueError as exc:
        kinds = {"champion_task": champion.task, "champion_classes": champion.metadata.classes}
        kinds |= {"challenger_task": challenger.task, "challenger_classes": challenger.metadata.classes}
        raise CannotCompare("incomparable", str(exc), **names_of, **kinds) from exc
    features, actual = store.read_labelled_inputs(engine, since)
    if actual.empty:
        where = f" since {since:%Y-%m-%d}" if since else ""
        message = f"no logged input has a true outcome (feedback){where}"
        raise CannotCompare("no_labelled_rows", message, since=since)
    try:
        return comparison.compare_models(
            champion, challenger, features, actual, names=names, n_boot=n_boot, seed=seed
        )
    except ValueError as exc:
        message = f"cannot compare {challenger.version} with {champion.version}: {exc}"
        raise CannotCompare("cannot_compare", message, **names_of, detail=str(exc)) from exc


# ----------------------------------------------------------------------------- stored comparisons
def write_comparison(
    engine: Engine, result: comparison.Comparison, since: datetime | None = None, source: str = "cli"
) -> int:
    """Store a comparison (its table needs the primary metric); return its id.

    Args:
        source: who ran it: ``cli``, ``api`` (the promotion guard) or ``retrain``.
    """
    table = result.table
    record = {
        "created_at": datetime.now(UTC),
        "champion_version": result.champion,
        "challenger_version": result.challenger,
        "since": store.as_utc(since) if since is not None else None,
        "n_rows": result.rows,
        "primary_metric": result.primary,
        "primary_verdict": str(table.loc[result.primary, "verdict"]),
        "worse": comparison.is_worse(result),
        "metrics": registry.json_safe(table.rename_axis("metric").reset_index().to_dict("records")),
        "resamples": result.n_boot,
        "seed": result.seed,
        "level": result.level,
        "source": source,
    }
    with engine.begin() as connection:
        return int(connection.execute(store.comparisons.insert().values(**record)).inserted_primary_key[0])


def read_comparisons(
    engine: Engine,
    champion: str | None = None,
    challenger: str | None = None,
    comparison_id: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Stored comparisons, newest first (`COMPARISON_COLUMNS`; ``metrics`` is the list of per-metric
    rows: ``metric`` and `comparison.TABLE_COLUMNS`; times in UTC)."""
    table = store.comparisons
    query = sa.select(*[table.c[name] for name in COMPARISON_COLUMNS]).order_by(table.c.id.desc())
    for column, value in (
        (table.c.champion_version, champion),
        (table.c.challenger_version, challenger),
        (table.c.id, comparison_id),
    ):
        if value is not None:
            query = query.where(column == value)
    with engine.connect() as connection:
        rows = pd.DataFrame(connection.execute(query.limit(limit)).all(), columns=COMPARISON_COLUMNS)
    for column in ("created_at", "since"):
        rows[column] = pd.to_datetime(rows[column], utc=True)
    return rows


def read_comparison(engine: Engine, comparison_id: int) -> dict:
    """One stored comparison as a dict (`read_comparisons`' columns)."""
    return read_comparisons(engine, comparison_id=comparison_id).iloc[0].to_dict()


def latest_comparison(engine: Engine, champion: str, challenger: str) -> dict | None:
    """The newest stored comparison of ``challenger`` against ``champion``, or None."""
    rows = read_comparisons(engine, champion, challenger, limit=1)
    return None if rows.empty else rows.iloc[0].to_dict()


def comparison_frame(row: Mapping) -> pd.DataFrame:
    """A stored comparison's table as `comparison.compare_models` gave it (one row per metric)."""
    frame = pd.DataFrame(list(row["metrics"])).set_index("metric").reindex(columns=comparison.TABLE_COLUMNS)
    numbers = ["champion", "challenger", "difference", "low", "high"]
    return frame.astype({name: float for name in numbers})


def compare_retrained(settings: Settings, champion: str, challenger: str, since: datetime) -> str:
    """The comparison a retraining run makes of its recommended version against the champion on the
    logged inputs with feedback since ``since`` (its holdout's first row, so neither version trained
    on them): the primary metric, with the monitoring bootstrap (``bootstrap_draws``, ``seed``),
    stored (source ``retrain``). Returns the Spanish sentence for its report.
    """
    engine, monitoring = store.open_store(settings.db_url), settings.config.monitoring
    try:
        current, candidate = load_pair(settings.models_dir, challenger, champion)
        names = [comparison.primary_metric(current.metadata)]
        draws, seed = monitoring.bootstrap_draws, monitoring.seed
        result = compare(engine, current, candidate, since, names=names, n_boot=draws, seed=seed)
        row = read_comparison(engine, write_comparison(engine, result, since, source="retrain"))
    except CannotCompare as exc:
        return f"sin comparación: {exc.spanish}."
    finally:
        engine.dispose()
    return f"{messages.comparison_header(row)} {messages.comparison_conclusion(row)}"


# ----------------------------------------------------------------------------- the promotion guard
@dataclass(frozen=True)
class PromotionCheck:
    """What the guard of ``PUT /models/default`` decided: whether to promote, whether ``force``
    overrode a refusal, why (`EVIDENCE`), the stored comparison it relied on, and an English detail."""

    allowed: bool
    forced: bool
    evidence: str
    stored: dict | None
    detail: str

    def refusal(self) -> dict:
        """The body of a 409: the detail and, after a comparison, its metric, difference and interval."""
        body: dict = {"msg": self.detail, "evidence": self.evidence}
        if self.stored is not None:
            primary = comparison_frame(self.stored).loc[self.stored["primary_metric"]]
            body |= {"comparison_id": int(self.stored["id"]), "metric": self.stored["primary_metric"]}
            body |= {"difference": primary["difference"], "interval": [primary["low"], primary["high"]]}
            body |= {"rows": int(self.stored["n_rows"])}
        return registry.json_safe(body)


def _guarded(refuse: bool, force: bool, evidence: str, stored: dict | None, why: str) -> PromotionCheck:
    """Allowed unless ``refuse``; then refused, or with ``force`` allowed as forced."""
    if not refuse:
        return PromotionCheck(True, False, evidence, stored, why)
    if force:
        return PromotionCheck(True, True, evidence, stored, f"{why}; promoted anyway (force)")
    return PromotionCheck(False, False, evidence, stored, f'{why}; send "force": true to promote it anyway')


def _comparison_detail(stored: Mapping) -> str:
    primary = comparison_frame(stored).loc[stored["primary_metric"]]
    return (
        f"shadow comparison {stored['id']} of {stored['challenger_version']} against the champion "
        f"{stored['champion_version']} on {stored['n_rows']} labelled rows: {stored['primary_metric']} "
        f"difference {primary['difference']:+.4f}, {stored['level']:.0%} interval [{primary['low']:+.4f}, "
        f"{primary['high']:+.4f}] ({stored['primary_verdict']})"
    )


def promotion_verdict(
    engine: Engine,
    load: Callable[[str], registry.LoadedModel],
    champion: str | None,
    version: str,
    *,
    force: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> PromotionCheck:
    """May ``version`` replace ``champion``? Refused when the latest stored comparison of the pair
    shows it worse on the primary metric (`comparison.is_worse`) or the two cannot be compared,
    unless ``force``. With no stored comparison and labelled rows in the log, the comparison is run
    here (primary metric only) and stored (source ``api``); with no labelled row at all, allowed.

    Args:
        load: loads a version by name (the API passes its cache of loaded versions).
    """
    if champion is None or champion == version:
        evidence = "no_champion" if champion is None else "same_version"
        return PromotionCheck(True, False, evidence, None, EVIDENCE[evidence])
    stored = latest_comparison(engine, champion, version)
    if stored is None:
        current, candidate = load(champion), load(version)
        names = [comparison.primary_metric(current.metadata)]
        try:
            result = compare(engine, current, candidate, names=names, n_boot=n_boot, seed=seed)
        except CannotCompare as exc:
            if exc.code == "no_labelled_rows":
                return PromotionCheck(True, False, "no_evidence", None, EVIDENCE["no_evidence"])
            return _guarded(True, force, "incomparable", None, str(exc))
        stored = read_comparison(engine, write_comparison(engine, result, source="api"))
    return _guarded(bool(stored["worse"]), force, "compared", stored, _comparison_detail(stored))


# ----------------------------------------------------------------------------- the promotion audit
def audit_row(
    check: PromotionCheck, version: str, previous: str | None, requested_by: str | None, client: str | None
) -> dict:
    """The audit row of one promotion request (`store.promotions`)."""
    return {
        "created_at": datetime.now(UTC),
        "version": version,
        "previous_version": previous,
        "outcome": "promoted" if check.allowed else "refused",
        "forced": check.forced,
        "requested_by": requested_by,
        "client": client,
        "comparison_id": None if check.stored is None else int(check.stored["id"]),
        "evidence": check.evidence,
        "detail": check.detail,
    }


def record_promotion(engine: Engine, row: Mapping, apply: Callable[[], None] | None = None) -> int:
    """Append an audit row (`audit_row`); return its id.

    With ``apply`` (the promotion itself), it runs inside the same transaction after the insert: if
    it raises, the row is rolled back, so no row claims a promotion that did not happen.
    """
    with engine.begin() as connection:
        promotion_id = connection.execute(store.promotions.insert().values(**row)).inserted_primary_key[0]
        if apply is not None:
            apply()
    return int(promotion_id)


def promote(
    engine: Engine,
    models_dir: Path,
    load: Callable[[str], registry.LoadedModel],
    version: str,
    *,
    force: bool = False,
    requested_by: str | None = None,
    client: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> PromotionCheck:
    """Make ``version`` the champion if `promotion_verdict` allows it, and record the request in the
    audit either way (promoted or refused); the check says which."""
    champion = registry.champion_version(models_dir)
    check = promotion_verdict(engine, load, champion, version, force=force, n_boot=n_boot, seed=seed)
    apply = (lambda: registry.set_champion(models_dir, version)) if check.allowed else None
    record_promotion(engine, audit_row(check, version, champion, requested_by, client), apply)
    return check


def read_promotions(engine: Engine, limit: int | None = None) -> pd.DataFrame:
    """The promotion audit, newest first (`PROMOTION_COLUMNS`; ``created_at`` in UTC)."""
    table = store.promotions
    query = sa.select(*[table.c[name] for name in PROMOTION_COLUMNS]).order_by(table.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        rows = pd.DataFrame(connection.execute(query).all(), columns=PROMOTION_COLUMNS)
    rows["created_at"] = pd.to_datetime(rows["created_at"], utc=True)
    rows["comparison_id"] = rows["comparison_id"].astype("Int64")
    return rows.astype({"forced": bool})
