import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.events.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentSpec(_message.Message):
    __slots__ = ("dataset_uri", "dataset_sha256", "target", "problem_type", "metric", "time_budget_s", "seed", "stages", "project", "tags", "parent_experiment_id", "max_trials", "source_options", "families", "split_strategy", "group_column", "time_column", "sensitive_columns", "max_latency_ms", "max_model_size_mb", "objectives", "sampler", "pruner")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SourceOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASET_URI_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    SPLIT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    GROUP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TIME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    SENSITIVE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MODEL_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    dataset_uri: str
    dataset_sha256: str
    target: str
    problem_type: _common_pb2.ProblemType
    metric: str
    time_budget_s: int
    seed: int
    stages: _containers.RepeatedScalarFieldContainer[str]
    project: str
    tags: _containers.ScalarMap[str, str]
    parent_experiment_id: str
    max_trials: int
    source_options: _containers.ScalarMap[str, str]
    families: _containers.RepeatedScalarFieldContainer[str]
    split_strategy: str
    group_column: str
    time_column: str
    sensitive_columns: _containers.RepeatedScalarFieldContainer[str]
    max_latency_ms: float
    max_model_size_mb: float
    objectives: _containers.RepeatedScalarFieldContainer[str]
    sampler: str
    pruner: str
    def __init__(self, dataset_uri: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., target: _Optional[str] = ..., problem_type: _Optional[_Union[_common_pb2.ProblemType, str]] = ..., metric: _Optional[str] = ..., time_budget_s: _Optional[int] = ..., seed: _Optional[int] = ..., stages: _Optional[_Iterable[str]] = ..., project: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., parent_experiment_id: _Optional[str] = ..., max_trials: _Optional[int] = ..., source_options: _Optional[_Mapping[str, str]] = ..., families: _Optional[_Iterable[str]] = ..., split_strategy: _Optional[str] = ..., group_column: _Optional[str] = ..., time_column: _Optional[str] = ..., sensitive_columns: _Optional[_Iterable[str]] = ..., max_latency_ms: _Optional[float] = ..., max_model_size_mb: _Optional[float] = ..., objectives: _Optional[_Iterable[str]] = ..., sampler: _Optional[str] = ..., pruner: _Optional[str] = ...) -> None: ...

class ExperimentRequested(_message.Message):
    __slots__ = ("spec", "requested_at", "requested_by")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    spec: ExperimentSpec
    requested_at: _timestamp_pb2.Timestamp
    requested_by: str
    def __init__(self, spec: _Optional[_Union[ExperimentSpec, _Mapping]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ...) -> None: ...

class ExperimentCompleted(_message.Message):
    __slots__ = ("project", "winner_family", "metric", "test_score", "baseline_test_score", "registered_model", "model_version", "git_commit", "report", "serving_app", "duration_s", "mlflow_run_id")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    WINNER_FAMILY_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SERVING_APP_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    project: str
    winner_family: str
    metric: str
    test_score: float
    baseline_test_score: float
    registered_model: str
    model_version: str
    git_commit: str
    report: _common_pb2.ArtifactRef
    serving_app: _common_pb2.ArtifactRef
    duration_s: float
    mlflow_run_id: str
    def __init__(self, project: _Optional[str] = ..., winner_family: _Optional[str] = ..., metric: _Optional[str] = ..., test_score: _Optional[float] = ..., baseline_test_score: _Optional[float] = ..., registered_model: _Optional[str] = ..., model_version: _Optional[str] = ..., git_commit: _Optional[str] = ..., report: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., serving_app: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., duration_s: _Optional[float] = ..., mlflow_run_id: _Optional[str] = ...) -> None: ...

class ExperimentFailed(_message.Message):
    __slots__ = ("stage", "reason", "error_type", "dead_letter_topic", "retryable")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TOPIC_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    reason: str
    error_type: str
    dead_letter_topic: str
    retryable: bool
    def __init__(self, stage: _Optional[str] = ..., reason: _Optional[str] = ..., error_type: _Optional[str] = ..., dead_letter_topic: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class ExperimentCancel(_message.Message):
    __slots__ = ("reason", "requested_by")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    requested_by: str
    def __init__(self, reason: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class StageProgress(_message.Message):
    __slots__ = ("stage", "state", "percent", "message", "bytes_done", "bytes_total", "eta_s")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[StageProgress.State]
        STATE_STARTED: _ClassVar[StageProgress.State]
        STATE_RUNNING: _ClassVar[StageProgress.State]
        STATE_FINISHED: _ClassVar[StageProgress.State]
        STATE_SKIPPED: _ClassVar[StageProgress.State]
        STATE_FAILED: _ClassVar[StageProgress.State]
    STATE_UNSPECIFIED: StageProgress.State
    STATE_STARTED: StageProgress.State
    STATE_RUNNING: StageProgress.State
    STATE_FINISHED: StageProgress.State
    STATE_SKIPPED: StageProgress.State
    STATE_FAILED: StageProgress.State
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    stage: str
    state: StageProgress.State
    percent: float
    message: str
    bytes_done: int
    bytes_total: int
    eta_s: float
    def __init__(self, stage: _Optional[str] = ..., state: _Optional[_Union[StageProgress.State, str]] = ..., percent: _Optional[float] = ..., message: _Optional[str] = ..., bytes_done: _Optional[int] = ..., bytes_total: _Optional[int] = ..., eta_s: _Optional[float] = ...) -> None: ...
