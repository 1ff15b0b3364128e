"""MLflow adapter: runs through MlflowClient (thread-safe, no global active run)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ._base import Tracker, TrackingConfigError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
RUN_ID_TAG = "mlmesh.run_id_tag"
"""The MLflow tag holding the caller's idempotency key (e.g. the event id)."""
PARENT_TAG = "mlflow.parentRunId"


class MlflowTracker(Tracker):
    """Records runs in MLflow; nested runs carry ``mlflow.parentRunId`` (the UI nests them).

    The tracking URI comes from ``tracking_uri`` or ``MLFLOW_TRACKING_URI``.
    ``artifact_location`` is used only when an experiment has to be created.
    """

    name = "mlflow"

    def __init__(
        self, tracking_uri: str | None = None, *, artifact_location: str | None = None
    ) -> None:
        super().__init__()
        uri = tracking_uri or os.environ.get(TRACKING_URI_ENV)
        if not uri:
            raise TrackingConfigError(
                f"no MLflow tracking URI: set {TRACKING_URI_ENV} (e.g. http://mlflow:5000 or "
                "sqlite:///path/mlflow.db) or pass tracking_uri"
            )
        from mlflow.tracking import MlflowClient

        self.tracking_uri = uri
        self.artifact_location = artifact_location
        self.client = MlflowClient(tracking_uri=uri)

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            return str(exp.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=self.artifact_location))
        except MlflowException:
            # Another process created it between our lookup and create.
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def _find_tagged_run(self, experiment_id: str, tag_value: str) -> Any | None:
        from mlflow.entities import ViewType

        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_ID_TAG}` = '{tag_value}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=10,
        )
        finished = [r for r in runs if r.info.status == "FINISHED"]
        for stale in (r for r in runs if r.info.status != "FINISHED"):
            # A previous attempt died half-way: drop its partial run so only one survives.
            self.client.delete_run(stale.info.run_id)
        return finished[0] if finished else None

    def _start(self, experiment, run_name, tags, parent_run_id, run_id_tag):
        all_tags = dict(tags)
        if run_id_tag is not None:
            all_tags[RUN_ID_TAG] = run_id_tag
        if parent_run_id is not None:
            all_tags[PARENT_TAG] = parent_run_id
        experiment_id = self._experiment_id(experiment)
        if run_id_tag is not None:
            existing = self._find_tagged_run(experiment_id, run_id_tag)
            if existing is not None:
                return str(existing.info.run_id), True
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        return str(run.info.run_id), False

    def _log_params(self, run_id, params):
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def _log_metrics(self, run_id, metrics, step):
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        items = [Metric(k, v, now_ms, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, metrics=items[i : i + 100])

    def _log_artifact(self, run_id, path: Path, artifact_path):
        if path.is_dir():
            target = f"{artifact_path}/{path.name}" if artifact_path else path.name
            self.client.log_artifacts(run_id, str(path), artifact_path=target)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def _set_tags(self, run_id, tags):
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _end(self, run_id, status):
        self.client.set_terminated(run_id, status)
