"""One tracker interface for runs (params, metrics, tags, artifacts, nested runs).

Adapters: :class:`MlflowTracker` and :class:`WandbTracker` (offline by default), usable
together through :class:`CompositeTracker`. :func:`make_tracker` builds what the settings
name (``MLMESH_TRACKERS=mlflow,wandb``; default ``mlflow``).
"""

from ._base import (
    FAILED,
    FINISHED,
    MAX_PARAM_CHARS,
    CompositeTracker,
    NoActiveRunError,
    Tracker,
    TrackingConfigError,
    TrackingInputError,
    check_artifact,
    metric_number,
    param_text,
)
from ._factory import TRACKERS, make_tracker, tracker_names
from ._mlflow import RUN_ID_TAG, TRACKING_URI_ENV, MlflowTracker
from ._wandb import WandbTracker

__all__ = [
    "FAILED",
    "FINISHED",
    "MAX_PARAM_CHARS",
    "RUN_ID_TAG",
    "TRACKERS",
    "TRACKING_URI_ENV",
    "CompositeTracker",
    "MlflowTracker",
    "NoActiveRunError",
    "Tracker",
    "TrackingConfigError",
    "TrackingInputError",
    "WandbTracker",
    "check_artifact",
    "make_tracker",
    "metric_number",
    "param_text",
    "tracker_names",
]
