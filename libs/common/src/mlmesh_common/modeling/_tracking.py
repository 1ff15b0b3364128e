"""Recording one finished run through the configured tracker(s), idempotently."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlmesh_common.tracking import (
    FAILED,
    RUN_ID_TAG,
    TRACKING_URI_ENV,
    TrackingConfigError,
    TrackingInputError,
    check_artifact,
    make_tracker,
    metric_number,
    param_text,
)

__all__ = ["RUN_ID_TAG", "TRACKING_URI_ENV", "TrackingConfigError", "TrackingInputError", "log_run"]


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
    """Record one finished run with the trackers of MLMESH_TRACKERS and return its run id.

    The run id is the first tracker's (MLflow's by default). MLflow's URI comes from
    ``tracking_uri`` or ``MLFLOW_TRACKING_URI``. With ``run_id_tag`` (e.g. the event id) a
    finished run already carrying that tag in the experiment is returned instead of logging
    a second one. ``artifacts`` are files or folders; ``artifact_location`` is only used
    when the experiment has to be created.
    """
    if not experiment_name:
        raise TrackingInputError("experiment_name must not be empty")
    # Validate everything before a run exists, so bad input leaves no half-logged run.
    paths = []
    missing = []
    for artifact in artifacts:
        try:
            paths.append(check_artifact(artifact))
        except TrackingInputError:
            missing.append(str(artifact))
    if missing:
        raise TrackingInputError(f"artifacts do not exist: {', '.join(missing)}")
    for key, value in params.items():
        param_text(str(key), value)
    for key, value in metrics.items():
        metric_number(str(key), value)

    tracker = make_tracker(tracking_uri=tracking_uri, artifact_location=artifact_location)
    run_id = tracker.start_run(
        experiment_name, run_name, tags=tags, parent_run_id=parent_run_id, run_id_tag=run_id_tag
    )
    try:
        tracker.log_params(params)
        tracker.log_metrics(metrics)
        for path in paths:
            tracker.log_artifact(path)
    except BaseException:
        tracker.end_run(FAILED)
        raise
    tracker.end_run()
    return run_id
