"""MLflow for experiments: a sqlite store by default, params, metrics, digests, artifacts.

Only the experiment's driver process talks to MLflow (runs in workers just write files), so a
sqlite file is safe even with many parallel runs. ``mlflow`` is imported lazily (extra
``experiments``).

What a run holds:

- params: the dataset's params (``ds_name``, ``modifier``, the modifier's params; those of
  the validation and test datasets with ``_val`` / ``_test`` suffixes, as iquaflow), the
  hyper-parameters, ``repetition``, the dataset digests (``ds_digest``, ``ds_images_sha256``,
  ``ds_sha256_<annotation file>``), and string values of ``results.json``
- metrics: numbers of ``results.json`` (lists become steps)
- tags: the task (``task.kind``, ``task.script`` ...), ``annoloop.experiment``, and
  ``error`` with the message of a failed run
- inputs: the datasets with their digests (MLflow's dataset tracking)
- artifacts: everything the task wrote into its output folder (``results.json``,
  ``output.json``, ``task.log``, ...)
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from annoloop._lazy import lazy_import
from annoloop.errors import InvalidInput

# MLflow keys: alphanumerics, underscores, dashes, periods, spaces, slashes
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM_CHARS = 6000


def mlflow() -> Any:
    """The ``mlflow`` module (MissingDependency naming the ``experiments`` extra)."""
    return lazy_import("mlflow", "experiments")


def default_tracking_uri(workdir: Path) -> str:
    """``sqlite:///<workdir>/mlflow.db``."""
    return f"sqlite:///{(Path(workdir).resolve() / 'mlflow.db').as_posix()}"


def client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri``."""
    _forget_deleted_sqlite_store(tracking_uri)
    return mlflow().MlflowClient(tracking_uri=tracking_uri)


def _forget_deleted_sqlite_store(tracking_uri: str) -> None:
    """MLflow caches one engine per database URI for the life of the process; when the sqlite
    file was deleted since (a re-run demo, a cleaned workdir), its pooled connection still
    points at the deleted file and new writes collide with the old rows."""
    if not tracking_uri.startswith("sqlite:///") or Path(tracking_uri[10:]).exists():
        return
    mlflow()  # the store module is importable only after mlflow itself
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    engines = getattr(SqlAlchemyStore, "_engine_map", None)
    if isinstance(engines, dict) and tracking_uri in engines:
        engines.pop(tracking_uri).dispose()
    cached = getattr(TrackingStoreRegistry, "_get_store_with_resolved_uri", None)
    if hasattr(cached, "cache_clear"):  # the store objects, one per URI
        cached.cache_clear()


def clean_key(key: str) -> str:
    """A key MLflow accepts (other characters become ``_``)."""
    out = _BAD_KEY.sub("_", str(key)).strip() or "_"
    return out[:250]


def get_or_create_experiment(c: Any, name: str, artifact_root: Path) -> str:
    """The id of experiment ``name``; created with artifacts under ``artifact_root``."""
    found = c.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            c.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    location = (Path(artifact_root).resolve() / _safe_folder(name)).as_uri()
    return str(c.create_experiment(name, artifact_location=location))


def _safe_folder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "experiment"


def local_artifact_dir(artifact_uri: str) -> Path | None:
    """The local folder of a ``file://`` (or plain path) artifact URI, else None."""
    if artifact_uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(artifact_uri).path))
    if "://" not in artifact_uri:
        return Path(artifact_uri)
    return None


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_PARAM_CHARS]


def log_params(c: Any, run_id: str, params: dict[str, Any]) -> None:
    """Log params in batches (MLflow takes 100 per call)."""
    entities = lazy_import("mlflow.entities", "experiments")
    items = [entities.Param(clean_key(k), _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        c.log_batch(run_id, params=items[i : i + 100])


def split_results(
    results: dict[str, Any],
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, str]]:
    """``results.json`` -> (metric name -> [(step, value)], params).

    Numbers are metrics at step 0; lists of numbers are steps 0..n-1; lists of
    ``[step, value]`` pairs keep their steps; strings and booleans are params; nested dicts
    are flattened with ``/``. Non-finite numbers are kept as MLflow stores them (NaN).
    """
    metrics: dict[str, list[tuple[int, float]]] = {}
    params: dict[str, str] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, (bool, str)) or value is None:
            params[prefix] = str(value)
        elif isinstance(value, (int, float)):
            metrics[prefix] = [(0, float(value))]
        elif isinstance(value, dict):
            for k, v in value.items():
                visit(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            steps = _steps(value)
            if steps is None:
                params[prefix] = _param_value(value)
            elif steps:
                metrics[prefix] = steps
        else:
            params[prefix] = _param_value(value)

    for key, value in results.items():
        visit(str(key), value)
    return metrics, params


def _steps(values: list[Any]) -> list[tuple[int, float]] | None:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if all(number(v) for v in values):
        return [(i, float(v)) for i, v in enumerate(values)]
    if all(isinstance(v, (list, tuple)) and len(v) == 2 and all(map(number, v)) for v in values):
        return [(int(s), float(v)) for s, v in values]
    return None


def log_results(c: Any, run_id: str, results: dict[str, Any], prefix: str = "") -> None:
    """Log a results dict (see :func:`split_results`) as metrics and params."""
    import time

    entities = lazy_import("mlflow.entities", "experiments")
    metrics, params = split_results(results)
    now = int(time.time() * 1000)
    batch = [
        entities.Metric(clean_key(prefix + k), v if math.isfinite(v) else float("nan"), now, step)
        for k, steps in metrics.items()
        for step, v in steps
    ]
    for i in range(0, len(batch), 1000):
        c.log_batch(run_id, metrics=batch[i : i + 1000])
    if params:
        log_params(c, run_id, {prefix + k: v for k, v in params.items()})


def log_dataset_input(
    c: Any, run_id: str, name: str, digest: str, source: str, context: str
) -> None:
    """Record a dataset as an MLflow run input (name, digest, source folder, context)."""
    entities = lazy_import("mlflow.entities", "experiments")
    dataset = entities.Dataset(
        name=name[:500], digest=digest[:36], source_type="local", source=source
    )
    tag = entities.InputTag(key="mlflow.data.context", value=context)
    c.log_inputs(run_id, datasets=[entities.DatasetInput(dataset=dataset, tags=[tag])])


def check_tracking_uri(uri: str) -> str:
    """Refuse the plain file store, which MLflow no longer serves by default."""
    file_store = uri.startswith("file:") or ("://" not in uri and not uri.startswith("databricks"))
    if file_store and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise InvalidInput(
            f"tracking URI {uri!r} is a file store, which MLflow refuses; use "
            "'sqlite:///path/mlflow.db' (the default) or set MLFLOW_ALLOW_FILE_STORE=true"
        )
    return uri
