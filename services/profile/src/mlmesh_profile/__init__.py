"""Domain logic of the profile service: describe a table, pick target, task and metric,
check its quality, recommend what prep should do, and write plots and an HTML report."""

from mlmesh_profile._common import (
    CLASSIFICATION_METRICS,
    COLUMN_KINDS,
    DEFAULT_METRICS,
    DEFAULT_SAMPLE_ROWS,
    PROBLEM_TYPES,
    REGRESSION_METRICS,
    TASK_KINDS,
    EmptyTableError,
    InvalidMetricError,
    InvalidProblemTypeError,
    ProfileError,
    TargetNotFoundError,
    UnusableTargetError,
)
from mlmesh_profile._kinds import column_kind
from mlmesh_profile._plots import render_plots
from mlmesh_profile._report import render_report
from mlmesh_profile._sampling import sample_table
from mlmesh_profile._target import allowed_metrics
from mlmesh_profile.profiling import (
    PROFILE_FILE,
    PROFILE_VERSION,
    REPORT_FILE,
    build_profile,
    profile_table,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "COLUMN_KINDS",
    "DEFAULT_METRICS",
    "DEFAULT_SAMPLE_ROWS",
    "PROBLEM_TYPES",
    "PROFILE_FILE",
    "PROFILE_VERSION",
    "REGRESSION_METRICS",
    "REPORT_FILE",
    "TASK_KINDS",
    "EmptyTableError",
    "InvalidMetricError",
    "InvalidProblemTypeError",
    "ProfileError",
    "TargetNotFoundError",
    "UnusableTargetError",
    "allowed_metrics",
    "build_profile",
    "column_kind",
    "profile_table",
    "render_plots",
    "render_report",
    "sample_table",
]
