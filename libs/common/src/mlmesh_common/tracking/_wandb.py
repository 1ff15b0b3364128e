"""Weights & Biases adapter (offline by default: runs are written under a local folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._base import FINISHED, Tracker

MODE_ENV = "WANDB_MODE"


def _clean(name: str, limit: int = 128) -> str:
    return (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run")[:limit]


class WandbTracker(Tracker):
    """Records runs with ``wandb`` in ``mode`` (default: WANDB_MODE, else ``offline``).

    An experiment is a W&B project; a nested run joins the W&B group named after its
    parent's run id (W&B has no run hierarchy) with job type ``nested``. Params go to the
    run config, tags to the config key ``mlmesh_tags`` (W&B tags are short labels),
    artifacts become W&B artifacts of type ``file`` or ``folder``. Offline runs are
    written under ``directory`` and can be uploaded later with ``wandb sync``.
    W&B keeps no idempotency key: ``run_id_tag`` is recorded but never reuses a run.
    """

    name = "wandb"

    def __init__(self, directory: Path | str, *, mode: str | None = None) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.mode = mode or os.environ.get(MODE_ENV) or "offline"
        self._runs: dict[str, Any] = {}
        self.run_dirs: dict[str, Path] = {}
        """Local folder of every run started, by run id (offline runs keep all there)."""

    def _start(self, experiment, run_name, tags, parent_run_id, run_id_tag):
        import wandb

        self.directory.mkdir(parents=True, exist_ok=True)
        config = {"mlmesh_tags": dict(tags)}
        if run_id_tag is not None:
            config["mlmesh_run_id_tag"] = run_id_tag
        run = wandb.init(
            project=_clean(experiment),
            name=run_name,
            dir=str(self.directory),
            mode=self.mode,
            reinit="create_new",
            group=parent_run_id,
            job_type="nested" if parent_run_id else "run",
            config=config,
            settings=wandb.Settings(
                silent=True,
                console="off",
                save_code=False,
                disable_git=True,
                x_disable_stats=True,
                x_disable_machine_info=True,
            ),
        )
        self._runs[run.id] = run
        self.run_dirs[run.id] = Path(run.dir).parent
        return str(run.id), False

    def _log_params(self, run_id, params):
        self._runs[run_id].config.update(params, allow_val_change=True)

    def _log_metrics(self, run_id, metrics, step):
        run = self._runs[run_id]
        if step is None:
            run.log(metrics)
        else:
            run.log(metrics, step=step)
        for key, value in metrics.items():
            run.summary[key] = value

    def _log_artifact(self, run_id, path: Path, artifact_path):
        import wandb

        kind = "folder" if path.is_dir() else "file"
        artifact = wandb.Artifact(_clean(f"{artifact_path or ''}-{path.name}"), type=kind)
        if path.is_dir():
            artifact.add_dir(str(path), name=path.name)
        else:
            artifact.add_file(str(path), name=path.name)
        self._runs[run_id].log_artifact(artifact)

    def _set_tags(self, run_id, tags):
        run = self._runs[run_id]
        merged = {**dict(run.config.get("mlmesh_tags") or {}), **tags}
        run.config.update({"mlmesh_tags": merged}, allow_val_change=True)

    def _end(self, run_id, status):
        run = self._runs.pop(run_id)
        run.finish(exit_code=0 if status == FINISHED else 1)
