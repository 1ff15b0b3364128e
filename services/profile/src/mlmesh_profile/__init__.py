"""Domain logic of the profile service: describe a table and pick target, task and metric."""

from mlmesh_profile.profiling import (
    CLASSIFICATION_METRICS,
    COLUMN_KINDS,
    DEFAULT_METRICS,
    PROBLEM_TYPES,
    REGRESSION_METRICS,
    EmptyTableError,
    InvalidMetricError,
    InvalidProblemTypeError,
    ProfileError,
    TargetNotFoundError,
    UnusableTargetError,
    allowed_metrics,
    column_kind,
    profile_table,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "COLUMN_KINDS",
    "DEFAULT_METRICS",
    "PROBLEM_TYPES",
    "REGRESSION_METRICS",
    "EmptyTableError",
    "InvalidMetricError",
    "InvalidProblemTypeError",
    "ProfileError",
    "TargetNotFoundError",
    "UnusableTargetError",
    "allowed_metrics",
    "column_kind",
    "profile_table",
]
