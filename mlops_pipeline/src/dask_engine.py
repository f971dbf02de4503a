"""Scale-out on Dask: batch scoring and drift monitoring on a ``dask.distributed`` cluster.

The same code as the single-process paths, run per partition:

- scoring applies ``scoring.predict_frame`` and ``scoring.flat_outputs`` to each
  partition of a CSV/Parquet input (one file, a glob or a list), with the loaded model sent to
  every worker once, and writes a folder of numbered parts in the input's row order;
- drift counts each partition on the reference bins with ``drift.current_counts``,
  adds the counts up with ``drift.merge_counts`` on the client, and turns them into
  statistics with ``drift.drift_from_counts``: since counts add up exactly, every
  statistic equals the single-process one. ``model_monitoring.run_windows`` runs the monitoring
  job with a ``ClusterLog``, which counts every row of each window of the log here.

This module imports only the layers below the course scripts (it never imports
``model_deploy`` or ``model_monitoring``, which call it lazily).

Without a scheduler address a ``LocalCluster`` is started on this machine; with one, the client
connects to that cluster, whose workers need this project's requirements and ``src/`` on their
``PYTHONPATH`` (they unpickle the fitted pipeline and import this module).

CLI (through the mandated scripts)::

    python mlops_pipeline/src/model_deploy.py score --engine dask --input 'data/*.csv' --output scored/
    python mlops_pipeline/src/model_monitoring.py run --engine dask [--input 'log/*.parquet']
        [--scheduler tcp://host:8786]
"""

from __future__ import annotations

import argparse
import glob
import itertools
import logging
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

import drift
import ft_engineering
import registry
import scoring
import store
from settings import Settings

logger = logging.getLogger(__name__)

BLOCKSIZE = "16MB"
"""Bytes of CSV per partition: about 250,000 rows of the credit table, a few hundred MB in a worker."""
LOG_ROWS_PER_PARTITION = 200_000
"""Prediction-log rows read from the database per partition (one time slice of the window)."""


# ----------------------------------------------------------------------------- cluster
@contextmanager
def dask_client(
    scheduler: str | None = None, n_workers: int | None = None, processes: bool = True
) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster at ``scheduler``, or on a new ``LocalCluster``.

    Args:
        scheduler: address of a running scheduler (``tcp://host:8786``); None starts a local
            cluster of ``n_workers`` single-threaded workers (default: one per core), closed on exit.
        n_workers, processes: options of the local cluster.

    Raises:
        ValueError: when the scheduler cannot be reached (within ``distributed.comm.timeouts.connect``).
    """
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().level))
    if scheduler:
        try:
            client = Client(scheduler)
        except OSError as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextmanager
def numpy_strings() -> Iterator[None]:
    """Build Dask frames with NumPy object text columns (NaN for missing), as pandas reads them in
    the single-process paths, instead of Dask's default PyArrow strings (whose missing value,
    ``pd.NA``, the cleaning code would otherwise read as the text "<NA>")."""
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        yield


def _wait(client: Any, collections: Any, progress: bool) -> Any:
    """Compute on the cluster, with Dask's progress bar in the terminal when asked; the results."""
    from distributed import progress as progress_bar

    futures = client.compute(collections)
    if progress:
        progress_bar(futures)
    return client.gather(futures)


# ----------------------------------------------------------------------------- reading inputs
def _matches(item: str | Path) -> list[Path]:
    """The files of a path, a glob or a folder (its CSV and Parquet files), in natural order
    (``part-2`` before ``part-10``)."""
    from dask.utils import natural_sort_key

    if Path(item).is_dir():
        found = [p for p in Path(item).iterdir() if p.suffix.lower() in (".csv", ".parquet", ".pq")]
    else:
        found = [Path(p) for p in glob.glob(str(item))]
    return sorted((p for p in found if p.is_file()), key=lambda p: natural_sort_key(str(p)))


def expand_inputs(pattern: str | Path | list[str | Path]) -> list[Path]:
    """The files that a path, a glob, a folder or a list of them names, in order.

    Raises:
        ValueError: when nothing matches, or the files mix CSV and Parquet.
    """
    patterns = pattern if isinstance(pattern, list) else [pattern]
    paths = [path for item in patterns for path in _matches(item)]
    if not paths:
        raise ValueError(f"no input file matches {', '.join(map(str, patterns))}")
    kinds = {"parquet" if p.suffix.lower() in (".parquet", ".pq") else "csv" for p in paths}
    if len(kinds) > 1:
        raise ValueError("the input mixes CSV and Parquet files; give one kind")
    return paths


def csv_format(path: Path) -> dict[str, str | None]:
    """``ft_engineering.sniff_csv_format`` of a file's first 64 KiB."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(64 * 1024)
    if not sample.strip():
        raise ValueError(f"the CSV {path} is empty")
    return ft_engineering.sniff_csv_format(sample)


def _csv_dtypes(path: Path, options: dict, metadata: registry.ModelMetadata) -> dict[str, str]:
    """Column types that parse every partition alike: numbers as floats (missing values allowed
    anywhere), categories as text unless the file writes them as numbers, other columns as text."""
    sample = pd.read_csv(path, nrows=1000, encoding="utf-8-sig", skipinitialspace=True, **options)
    kinds = {feature.name: feature.kind for feature in metadata.features}
    dtypes = {}
    for column in sample.columns:
        kind = kinds.get(str(column).strip())
        numeric = kind == "numeric" or (kind is not None and pd.api.types.is_numeric_dtype(sample[column]))
        dtypes[column] = "float64" if numeric else "object"
    return dtypes


def read_csv_files(
    paths: list[Path], metadata: registry.ModelMetadata, na_values: list[str], blocksize: str = BLOCKSIZE
) -> Any:
    """CSV files as one Dask DataFrame in file order, each file parsed as ``ft_engineering.read_csv``
    would (``;`` with decimal commas or ``,`` with decimal points, sniffed per file; consecutive
    files of one format are read together)."""
    import dask.dataframe as dd

    parts = []
    for options, group in itertools.groupby(paths, key=csv_format):
        group = list(group)
        frame = dd.read_csv(
            [str(path) for path in group],
            **options,
            na_values=na_values,
            encoding="utf-8-sig",
            skipinitialspace=True,
            dtype=_csv_dtypes(group[0], options, metadata),
            blocksize=blocksize,
        )
        parts.append(frame.rename(columns={c: str(c).strip() for c in frame.columns}))
    columns = [list(part.columns) for part in parts]
    if any(c != columns[0] for c in columns):
        raise ValueError(f"the input files do not share one header: {sorted(map(tuple, columns))[:2]}")
    return parts[0] if len(parts) == 1 else dd.concat(parts)


def read_input(
    paths: list[Path], metadata: registry.ModelMetadata, na_values: list[str], blocksize: str = BLOCKSIZE
) -> Any:
    """The scoring input (``expand_inputs``: CSV or Parquet files) as a Dask DataFrame whose
    partitions keep the row order."""
    import dask.dataframe as dd

    with numpy_strings():
        if paths[0].suffix.lower() in (".parquet", ".pq"):
            frame = dd.read_parquet([str(p) for p in paths])
            return frame.rename(columns={c: str(c).strip() for c in frame.columns})
        return read_csv_files(paths, metadata, na_values, blocksize)


# ----------------------------------------------------------------------------- scoring
def prediction_columns(model: registry.LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """What the single-process ``score`` appends to a chunk: ``id``, ``model_version`` and
    ``scoring.flat_outputs`` of ``scoring.predict_frame``."""
    return scoring.flat_outputs(scoring.batch_outputs(model, frame[model.feature_names]))


def score_partition(part: pd.DataFrame, model: registry.LoadedModel, meta: pd.DataFrame) -> pd.DataFrame:
    """One partition scored: its columns, then the prediction columns (``meta`` when empty)."""
    return meta if part.empty else part.join(prediction_columns(model, part))


def output_meta(model: registry.LoadedModel, input_meta: pd.DataFrame) -> pd.DataFrame:
    """The empty output frame (columns and types), from scoring the model's example record."""
    example = pd.DataFrame([{f.name: f.example for f in model.metadata.features}])
    return input_meta.join(prediction_columns(model, example).iloc[0:0])


def score_frame(frame: Any, model_future: Any, model: registry.LoadedModel) -> Any:
    """The lazily scored Dask DataFrame; ``model_future`` is the model already on the workers."""
    missing = [c for c in model.feature_names if c not in frame.columns]
    if missing:
        raise ValueError(f"the input lacks the model's columns {missing}")
    meta = output_meta(model, frame._meta)
    with numpy_strings():
        return frame.map_partitions(score_partition, model_future, meta, meta=meta)


def part_name(index: int) -> str:
    """Output part file stem: zero-padded, so sorting the names keeps the partition order."""
    return f"part-{index:05d}"


def write_output(scored: Any, output: Path, output_format: str, csv_options: dict | None = None) -> Any:
    """The lazy write of ``scored`` as numbered parts in the folder ``output``."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValueError(f"the output {output} must be a new or empty folder")
    output.mkdir(parents=True, exist_ok=True)
    if output_format == "parquet":
        return scored.to_parquet(
            str(output), write_index=False, name_function=lambda i: f"{part_name(i)}.parquet", compute=False
        )
    options = csv_options or {"sep": ",", "decimal": "."}
    return scored.to_csv(
        str(output / "*.csv"),
        name_function=part_name,
        index=False,
        sep=options["sep"],
        decimal=options["decimal"],
        compute=False,
    )


def score_files(
    client: Any,
    model: registry.LoadedModel,
    inputs: str | Path | list[str | Path],
    output: Path,
    output_format: str = "parquet",
    blocksize: str = BLOCKSIZE,
    progress: bool = False,
) -> int:
    """Score CSV or Parquet files on the cluster; write a folder of parts (Parquet or CSV).

    Reading ``output`` back in part order gives the rows in input order:
    ``pd.read_parquet(output)`` or ``dask.dataframe.read_parquet(output)``.

    Returns:
        The number of rows scored.

    Raises:
        ValueError: for missing inputs, missing model columns, unparseable values, an output
            folder that is not empty.
    """
    na_values = list(model.metadata.na_values)
    paths = expand_inputs(inputs)
    frame = read_input(paths, model.metadata, na_values, blocksize)
    [model_future] = client.scatter([model], broadcast=True, hash=False)
    scored = score_frame(frame, model_future, model)
    logger.info(
        "scoring %d partitions on %d workers", scored.npartitions, len(client.scheduler_info()["workers"])
    )
    csv_options = csv_format(paths[0]) if paths[0].suffix.lower() == ".csv" else None
    try:
        _wait(client, write_output(scored, output, output_format, csv_options), progress)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"a partition could not be read or scored: {exc}") from exc
    return written_rows(output)


def written_rows(output: Path) -> int:
    """Rows in an output folder, from the Parquet footers or the CSV line counts."""
    import pyarrow.parquet as pq

    parts = sorted(output.glob("part-*"))
    return sum(
        pq.ParquetFile(p).metadata.num_rows if p.suffix == ".parquet" else scoring.count_rows(p)
        for p in parts
    )


def score_command(settings: Settings, args: argparse.Namespace) -> int:
    """``model_deploy.py score --engine dask``: score ``--input`` on the cluster into the folder
    ``--output``."""
    if args.log:
        print(
            "--log no está disponible con --engine dask: use el motor local para registrar las predicciones.",
            file=sys.stderr,
        )
        return 2
    model = registry.load_model(settings.models_dir, args.model or settings.model_version)
    try:
        with dask_client(args.scheduler) as client:
            if not args.quiet:
                workers = len(client.scheduler_info()["workers"])
                print(f"Dask: {workers} workers, panel en {client.dashboard_link}", file=sys.stderr)
            rows = score_files(
                client, model, str(args.input), args.output, args.output_format, progress=not args.quiet
            )
    except (ValueError, OSError) as exc:
        print(f"No se pudo puntuar {args.input}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{rows} filas puntuadas con el modelo {model.version} (Dask) -> {args.output}/ "
        f"({args.output_format}, una parte por partición)"
    )
    return 0


# ----------------------------------------------------------------------------- drift counts
def partition_counts(
    part: pd.DataFrame, profile: dict, metadata: registry.ModelMetadata | None = None
) -> dict:
    """``drift.current_counts`` of one partition, cleaned first as the job cleans
    logged rows (``clean_current``) when the version's ``metadata`` is given."""
    if metadata is not None:
        part = drift.clean_current(part, profile, metadata)
    return drift.current_counts(profile, part)


def window_counts(
    client: Any,
    frame: Any,
    profile: dict,
    metadata: registry.ModelMetadata | None = None,
    progress: bool = False,
) -> dict:
    """Counts of every row of a Dask DataFrame on the profile's bins: counted per partition on
    the workers, merged on the client (``merge_counts``); exactly the counts of the whole frame."""
    import dask

    profile_future, metadata_future = client.scatter([profile, metadata], broadcast=True, hash=False)
    count = dask.delayed(partition_counts)
    parts = [count(part, profile_future, metadata_future) for part in frame.to_delayed()]
    return drift.merge_counts(_wait(client, parts, progress))


def compute_drift(
    client: Any,
    reference: pd.DataFrame,
    current: Any,
    numeric: list[str],
    categorical: list[str],
    thresholds: dict[str, tuple[float, float]] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """``drift.compute_drift`` with ``current`` a Dask DataFrame counted on the cluster."""
    profile = drift.build_reference_profile(reference, numeric, categorical)
    return drift.drift_from_counts(profile, window_counts(client, current, profile), thresholds, **options)


# ----------------------------------------------------------------------------- the prediction log
def log_features(log: pd.DataFrame, profile: dict) -> pd.DataFrame:
    """The profile's columns of a log shaped like ``store.read_predictions`` (features as columns;
    the model output as ``score`` / ``prediction``); absent features are left out (all missing).
    A feature named like a log column is read from its ``feature_`` column, as the log names it."""
    names = {drift.SCORE_COLUMN: "score", drift.PREDICTION_COLUMN: "prediction"}
    columns = {}
    for name in profile["features"]:
        prefixed = f"feature_{name}"
        source = names.get(name, prefixed if name in log and prefixed in log else name)
        if source in log:
            columns[name] = log[source]
    return pd.DataFrame(columns, index=log.index)


@cache
def _engine(db_url: str) -> Any:
    """One engine per worker process and database."""
    return store.create_db_engine(db_url)


def read_log_slice(
    bounds: tuple[pd.Timestamp, pd.Timestamp], db_url: str, version: str, profile: dict
) -> pd.DataFrame:
    """One partition of the log: the profile's columns of the predictions in ``[start, end)``."""
    return log_features(store.read_predictions(_engine(db_url), bounds[0], bounds[1], version), profile)


def log_from_store(
    engine: Any,
    db_url: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    version: str,
    profile: dict,
    rows_per_partition: int = LOG_ROWS_PER_PARTITION,
) -> Any:
    """A window of the prediction log as a Dask DataFrame of equal time slices, each read by a worker.

    The slice count comes from the window's row count, for about ``rows_per_partition`` rows per
    slice when traffic is even.
    """
    import dask.dataframe as dd

    rows = store.count_predictions(engine, start, end, version)
    edges = pd.date_range(start, end, periods=max(math.ceil(rows / rows_per_partition), 1) + 1)
    meta = pd.DataFrame({name: pd.Series(dtype=object) for name in profile["features"]})
    with numpy_strings():
        return dd.from_map(
            read_log_slice,
            list(zip(edges[:-1], edges[1:])),
            db_url=db_url,
            version=version,
            profile=profile,
            meta=meta,
            label="read-log",
        )


def read_log_parquet(pattern: str | Path | list[str | Path]) -> Any:
    """Parquet exports of the log (columns as ``store.read_predictions`` returns them, e.g.
    ``store.read_predictions(engine, start, end).to_parquet(...)``) as a Dask DataFrame."""
    import dask.dataframe as dd

    paths = expand_inputs(pattern)
    if paths[0].suffix.lower() not in (".parquet", ".pq"):
        raise ValueError("the log export must be Parquet files")
    with numpy_strings():
        return dd.read_parquet([str(p) for p in paths])


def _of_version(log: Any, version: str) -> Any:
    """The rows of ``version`` in an exported log (all rows when it has no ``model_version``)."""
    return log[log["model_version"] == version] if "model_version" in log.columns else log


def window_of(log: Any, start: pd.Timestamp, end: pd.Timestamp, version: str, profile: dict) -> Any:
    """The rows of an exported log created in ``[start, end)`` by ``version``, as the profile's columns."""
    created = log["created_at"]
    if getattr(created.dtype, "tz", None) is None:  # naive times in the export are UTC
        start, end = (t.tz_convert("UTC").tz_localize(None) for t in (start, end))
    log = _of_version(log[(created >= start) & (created < end)], version)
    meta = log_features(log._meta, profile)
    with numpy_strings():
        return log.map_partitions(log_features, profile, meta=meta)


def _export_range(client: Any, log: Any, version: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last ``created_at`` of a version in an exported log (UTC), or (None, None)."""
    log = _of_version(log, version)
    first, last = client.gather(client.compute([log["created_at"].min(), log["created_at"].max()]))
    if pd.isna(first):
        return None, None
    return tuple(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC") for t in (first, last))


@dataclass(frozen=True)
class ClusterLog:
    """The prediction log as a Dask cluster reads it, for ``model_monitoring.run_windows``: from the
    store in time slices (each read by a worker), or from Parquet exports (``exported``)."""

    client: Any
    engine: Any
    db_url: str
    exported: Any = None
    progress: bool = False

    def time_range(self, version: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """First and last prediction of ``version`` in the log, or (None, None) when it has none."""
        if self.exported is None:
            return store.prediction_time_range(self.engine, version)
        return _export_range(self.client, self.exported, version)

    def counts(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        version: str,
        profile: dict,
        metadata: registry.ModelMetadata,
    ) -> dict:
        """``drift.current_counts`` of every row of ``version`` in ``[start, end)``, counted per partition."""
        if self.exported is None:
            frame = log_from_store(self.engine, self.db_url, start, end, version, profile)
        else:
            frame = window_of(self.exported, start, end, version, profile)
        logger.info("window %s: counting %d partitions", start, frame.npartitions)
        return window_counts(self.client, frame, profile, metadata, self.progress)


def cluster_log(
    client: Any,
    engine: Any,
    db_url: str,
    inputs: str | Path | list[str | Path] | None = None,
    progress: bool = False,
) -> ClusterLog:
    """The log to monitor on the cluster: the store at ``db_url``, or the Parquet exports ``inputs``.

    Raises:
        ValueError: when the exports match no file or lack the ``created_at`` column windows need.
    """
    exported = read_log_parquet(inputs) if inputs else None
    if exported is not None and "created_at" not in exported.columns:
        raise ValueError("the log export needs a created_at column to be split into windows")
    return ClusterLog(client, engine, db_url, exported, progress)
