import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.events.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictionLogged(_message.Message):
    __slots__ = ("model_name", "model_version", "rows_json", "predictions_json", "request_ids", "probabilities_json")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_JSON_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    rows_json: str
    predictions_json: str
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    probabilities_json: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., rows_json: _Optional[str] = ..., predictions_json: _Optional[str] = ..., request_ids: _Optional[_Iterable[str]] = ..., probabilities_json: _Optional[str] = ...) -> None: ...

class GroundTruthLogged(_message.Message):
    __slots__ = ("model_name", "model_version", "request_ids", "outcomes_json")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_JSON_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    outcomes_json: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., request_ids: _Optional[_Iterable[str]] = ..., outcomes_json: _Optional[str] = ...) -> None: ...

class DriftDetected(_message.Message):
    __slots__ = ("model_name", "model_version", "dataset_drift", "share_drifted", "drifted_columns", "window_rows", "report", "source_experiment_id", "kinds", "window_id", "window_start", "window_end", "prediction_drift", "prediction_drift_score", "prediction_drift_stattest", "performance_decay", "metric", "window_score", "reference_score", "decay", "labeled_rows", "report_json", "retrain_experiment_id", "retrain_decision")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_DRIFT_FIELD_NUMBER: _ClassVar[int]
    SHARE_DRIFTED_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ROWS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_SCORE_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_STATTEST_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_DECAY_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SCORE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SCORE_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    LABELED_ROWS_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_DECISION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    dataset_drift: bool
    share_drifted: float
    drifted_columns: _containers.RepeatedScalarFieldContainer[str]
    window_rows: int
    report: _common_pb2.ArtifactRef
    source_experiment_id: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    window_id: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    prediction_drift: bool
    prediction_drift_score: float
    prediction_drift_stattest: str
    performance_decay: bool
    metric: str
    window_score: float
    reference_score: float
    decay: float
    labeled_rows: int
    report_json: _common_pb2.ArtifactRef
    retrain_experiment_id: str
    retrain_decision: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., dataset_drift: _Optional[bool] = ..., share_drifted: _Optional[float] = ..., drifted_columns: _Optional[_Iterable[str]] = ..., window_rows: _Optional[int] = ..., report: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., source_experiment_id: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., window_id: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prediction_drift: _Optional[bool] = ..., prediction_drift_score: _Optional[float] = ..., prediction_drift_stattest: _Optional[str] = ..., performance_decay: _Optional[bool] = ..., metric: _Optional[str] = ..., window_score: _Optional[float] = ..., reference_score: _Optional[float] = ..., decay: _Optional[float] = ..., labeled_rows: _Optional[int] = ..., report_json: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., retrain_experiment_id: _Optional[str] = ..., retrain_decision: _Optional[str] = ...) -> None: ...
