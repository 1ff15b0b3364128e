"""Recording runs (params, metrics, tags, artifacts) in MLflow, idempotently."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
RUN_ID_TAG = "mlmesh.run_id_tag"
"""The MLflow tag holding the caller's idempotency key (e.g. the event id)."""

_MAX_PARAM_CHARS = 6000


class TrackingConfigError(ValueError):
    """No MLflow tracking URI configured."""


class TrackingInputError(ValueError):
    """Params, metrics, tags or artifacts that cannot be logged as given."""


def _client(tracking_uri: str | None) -> Any:
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or os.environ.get(TRACKING_URI_ENV)
    if not uri:
        raise TrackingConfigError(
            f"no MLflow tracking URI: set {TRACKING_URI_ENV} (e.g. http://mlflow:5000 or "
            "sqlite:///path/mlflow.db) or pass tracking_uri"
        )
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    except MlflowException:
        # Another process created it between our lookup and create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


def _param_value(key: str, value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise TrackingInputError(f"param {key!r} cannot be serialised: {exc}") from exc
    if len(text) > _MAX_PARAM_CHARS:
        raise TrackingInputError(
            f"param {key!r} is {len(text)} characters; MLflow keeps at most {_MAX_PARAM_CHARS}"
            " - log it as an artifact instead"
        )
    return text


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TrackingInputError(
            f"metric {key!r} must be a number; got {type(value).__name__}"
        ) from None
    if math.isinf(number):
        raise TrackingInputError(f"metric {key!r} is infinite; log a finite value")
    return number


def _find_tagged_run(client: Any, experiment_id: str, tag_value: str) -> Any | None:
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_ID_TAG}` = '{tag_value}'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=10,
    )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    for stale in (r for r in runs if r.info.status != "FINISHED"):
        # A previous attempt died half-way: drop its partial run so only one survives.
        client.delete_run(stale.info.run_id)
    return finished[0] if finished else None


def log_run(
    experiment_name: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    tags: Mapping[str, Any],
    artifacts: Sequence[Path | str] = (),
    parent_run_id: str | None = None,
    run_id_tag: str | None = None,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
) -> str:
    """Record one finished run in MLflow and return its run id.

    The tracking URI comes from ``tracking_uri`` or ``MLFLOW_TRACKING_URI``. With
    ``run_id_tag`` (e.g. the event id) a finished run already carrying that tag in the
    experiment is returned instead of logging a second one. ``artifacts`` are files or
    folders; ``artifact_location`` is only used when the experiment has to be created.
    """
    if not experiment_name:
        raise TrackingInputError("experiment_name must not be empty")
    if run_id_tag is not None and ("'" in run_id_tag or not run_id_tag):
        raise TrackingInputError(
            f"run_id_tag {run_id_tag!r} must be non-empty and free of single quotes"
        )
    paths = [Path(a) for a in artifacts]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise TrackingInputError(f"artifacts do not exist: {', '.join(missing)}")

    from mlflow.entities import Metric, Param

    param_list = [Param(str(k), _param_value(str(k), v)) for k, v in params.items()]
    now_ms = int(time.time() * 1000)
    metric_list = [Metric(str(k), _metric_value(str(k), v), now_ms, 0) for k, v in metrics.items()]
    all_tags = {str(k): str(v) for k, v in tags.items()}
    if run_id_tag is not None:
        all_tags[RUN_ID_TAG] = run_id_tag
    if parent_run_id is not None:
        all_tags["mlflow.parentRunId"] = parent_run_id

    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment_name, artifact_location)
    if run_id_tag is not None:
        existing = _find_tagged_run(client, experiment_id, run_id_tag)
        if existing is not None:
            return str(existing.info.run_id)

    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = str(run.info.run_id)
    try:
        for i in range(0, max(len(param_list), len(metric_list)), 100):
            client.log_batch(
                run_id, metrics=metric_list[i : i + 100], params=param_list[i : i + 100]
            )
        for path in paths:
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            else:
                client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
