"""Constants, errors and small helpers shared by the profiling modules."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

# The metric names are the mesh's, shared with the gateway's spec validation (re-exported).
from mlmesh_common.problems import CLASSIFICATION_METRICS as CLASSIFICATION_METRICS
from mlmesh_common.problems import DEFAULT_METRICS as DEFAULT_METRICS
from mlmesh_common.problems import REGRESSION_METRICS as REGRESSION_METRICS

#: Problem types on the wire (and in profile.json's ``problem_type``): what is trained.
PROBLEM_TYPES = ("binary", "multiclass", "regression")
#: Task kinds in profile.json's ``task.kind``: what the data is, before it is mapped to a
#: trainable problem type.
TASK_KINDS = ("binary", "multiclass", "multilabel", "regression", "time_series_forecasting")
COLUMN_KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id", "constant")

#: Rows the sampled parts of the profile (relations, leakage, isolation forest, plots,
#: string shapes) look at; counts, missing values and column statistics stay exact.
DEFAULT_SAMPLE_ROWS = 50_000
DEFAULT_SEED = 42

#: Called between profiling steps with the fraction done (0..1) and what comes next.
StepCallback = Callable[[float, str], None]


class ProfileError(ValueError):
    """Base of profiling errors that retrying cannot fix."""


class EmptyTableError(ProfileError):
    """The table has no rows or no columns."""


class TargetNotFoundError(ProfileError):
    """The requested target column is not in the table, or no column looks like a target."""


class UnusableTargetError(ProfileError):
    """The target column cannot be learned (all missing, one class, a class per row...)."""


class InvalidProblemTypeError(ProfileError):
    """The problem-type hint is unknown or contradicts the target's values."""


class InvalidMetricError(ProfileError):
    """The metric hint is unknown or does not fit the problem type."""


def num(value: Any, digits: int | None = None) -> float | None:
    """A JSON-safe float: None for None, NaN and infinity; optionally rounded."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def short(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_string_like(s: pd.Series) -> bool:
    """Strings or Python objects (pandas' ``str``/``string``/``object`` dtypes)."""
    return pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)


def is_plain_numeric(s: pd.Series) -> bool:
    """Numbers that are not booleans."""
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def as_float(s: pd.Series) -> np.ndarray:
    """The values as float64 with NaN for missing (and for non-finite values kept as is)."""
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def share(part: int, whole: int) -> float:
    """``part / whole`` rounded to 6 digits, 0.0 for an empty whole."""
    return round(part / whole, 6) if whole else 0.0


def is_listlike_cell(value: Any) -> bool:
    """A cell that holds several values (a list, tuple, set or 1-d array)."""
    return isinstance(value, list | tuple | set | frozenset | np.ndarray)
