"""Building the tracker(s) the settings name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._base import CompositeTracker, Tracker, TrackingConfigError
from ._mlflow import MlflowTracker
from ._wandb import WandbTracker

TRACKERS = ("mlflow", "wandb")


def tracker_names(spec: str | Sequence[str] | None = None) -> list[str]:
    """Tracker names from ``spec`` (``"mlflow,wandb"`` or a list); default: the settings'."""
    if spec is None:
        from mlmesh_common.settings import Settings

        spec = Settings().trackers
    raw = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for name in (n.strip().lower() for n in raw):
        if not name or name in names:
            continue
        if name not in TRACKERS:
            raise TrackingConfigError(
                f"unknown tracker {name!r} in MLMESH_TRACKERS; use a comma-separated subset "
                f"of {', '.join(TRACKERS)}"
            )
        names.append(name)
    if not names:
        raise TrackingConfigError(
            f"no tracker configured; set MLMESH_TRACKERS to some of {', '.join(TRACKERS)}"
        )
    return names


def make_tracker(
    names: str | Sequence[str] | None = None,
    *,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
    wandb_dir: Path | str | None = None,
) -> Tracker:
    """The tracker for ``names`` (default: MLMESH_TRACKERS); a composite for several.

    MLflow's URI comes from ``tracking_uri`` or MLFLOW_TRACKING_URI; the W&B folder from
    ``wandb_dir``, else MLMESH_WANDB_DIR, else ``<MLMESH_HOME>/wandb``.
    """
    trackers: list[Tracker] = []
    for name in tracker_names(names):
        if name == "mlflow":
            trackers.append(MlflowTracker(tracking_uri, artifact_location=artifact_location))
        else:
            if wandb_dir is None:
                from mlmesh_common.settings import Settings

                settings = Settings()
                wandb_dir = settings.wandb_dir or settings.resolved_home / "wandb"
            trackers.append(WandbTracker(wandb_dir))
    return trackers[0] if len(trackers) == 1 else CompositeTracker(trackers)
