"""Domain logic of the monitor service: windows of served rows, drift of features and
predictions, performance decay on joined ground truth, and the retraining policy."""

# Must run before anything imports evidently (see the module's docstring).
from mlmesh_monitor import _evidently_compat  # noqa: F401
from mlmesh_monitor.drift import (
    DriftInputError,
    DriftResult,
    compute_drift,
    drift_report,
    render_drift_html,
)
from mlmesh_monitor.windows import (
    ModelWindows,
    TumblingWindow,
    WindowConfigError,
    WindowInputError,
)

__all__ = [
    "DriftInputError",
    "DriftResult",
    "ModelWindows",
    "TumblingWindow",
    "WindowConfigError",
    "WindowInputError",
    "compute_drift",
    "drift_report",
    "render_drift_html",
]
