"""Model building shared by train-gpu, tune and select: data, families, CV, metrics, MLflow.

Plain Python: nothing here knows about Kafka, protobuf or the service runtime. Exceptions
named ``*Error`` subclass ValueError and mean bad input that a retry cannot fix.
"""

from ._data import PREPARED_FILES, SPLITS, PreparedData, PreparedDataError, load_prepared
from ._device import DEVICE_ENV, DEVICES, Device, detect_device
from ._evaluate import CVResult, cross_validate, fit_and_score, score_model, score_model_many
from ._families import (
    FAMILIES,
    GPU_FAMILIES,
    RESERVED_PARAMS,
    InvalidParamsError,
    UnknownDeviceError,
    UnknownFamilyError,
    build_estimator,
    check_family,
    default_params,
    effective_device,
)
from ._metrics import (
    METRICS,
    PROBLEM_TYPES,
    MetricInputError,
    UnknownMetricError,
    UnknownProblemTypeError,
    check_problem_type,
    default_metric,
    greater_is_better,
    metrics_for,
    needs_proba,
    score,
)
from ._model import MeshModel, MissingFeaturesError, TargetError
from ._tracking import (
    RUN_ID_TAG,
    TRACKING_URI_ENV,
    TrackingConfigError,
    TrackingInputError,
    log_run,
)

__all__ = [
    "DEVICES",
    "DEVICE_ENV",
    "FAMILIES",
    "GPU_FAMILIES",
    "METRICS",
    "PREPARED_FILES",
    "PROBLEM_TYPES",
    "RESERVED_PARAMS",
    "RUN_ID_TAG",
    "SPLITS",
    "TRACKING_URI_ENV",
    "CVResult",
    "Device",
    "InvalidParamsError",
    "MeshModel",
    "MetricInputError",
    "MissingFeaturesError",
    "PreparedData",
    "PreparedDataError",
    "TargetError",
    "TrackingConfigError",
    "TrackingInputError",
    "UnknownDeviceError",
    "UnknownFamilyError",
    "UnknownMetricError",
    "UnknownProblemTypeError",
    "build_estimator",
    "check_family",
    "check_problem_type",
    "cross_validate",
    "default_metric",
    "default_params",
    "detect_device",
    "effective_device",
    "fit_and_score",
    "greater_is_better",
    "load_prepared",
    "log_run",
    "metrics_for",
    "needs_proba",
    "score",
    "score_model",
    "score_model_many",
]
