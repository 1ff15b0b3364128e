from mlmesh.events.v1 import common_pb2 as _common_pb2
from mlmesh.events.v1 import experiment_pb2 as _experiment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetAcquired(_message.Message):
    __slots__ = ("spec", "table", "manifest", "source_uri", "source_sha256", "source_bytes", "source_format", "n_rows", "n_columns", "columns")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    N_ROWS_FIELD_NUMBER: _ClassVar[int]
    N_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    spec: _experiment_pb2.ExperimentSpec
    table: _common_pb2.ArtifactRef
    manifest: _common_pb2.ArtifactRef
    source_uri: str
    source_sha256: str
    source_bytes: int
    source_format: str
    n_rows: int
    n_columns: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spec: _Optional[_Union[_experiment_pb2.ExperimentSpec, _Mapping]] = ..., table: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., manifest: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., source_uri: _Optional[str] = ..., source_sha256: _Optional[str] = ..., source_bytes: _Optional[int] = ..., source_format: _Optional[str] = ..., n_rows: _Optional[int] = ..., n_columns: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class ColumnSummary(_message.Message):
    __slots__ = ("name", "kind", "dtype", "missing", "unique")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    dtype: str
    missing: int
    unique: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., dtype: _Optional[str] = ..., missing: _Optional[int] = ..., unique: _Optional[int] = ...) -> None: ...

class DatasetProfiled(_message.Message):
    __slots__ = ("spec", "table", "profile", "target", "problem_type", "metric", "target_reasons", "columns", "n_rows", "warnings")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TARGET_REASONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    N_ROWS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    spec: _experiment_pb2.ExperimentSpec
    table: _common_pb2.ArtifactRef
    profile: _common_pb2.ArtifactRef
    target: str
    problem_type: _common_pb2.ProblemType
    metric: str
    target_reasons: _containers.RepeatedScalarFieldContainer[str]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSummary]
    n_rows: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spec: _Optional[_Union[_experiment_pb2.ExperimentSpec, _Mapping]] = ..., table: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., profile: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., target: _Optional[str] = ..., problem_type: _Optional[_Union[_common_pb2.ProblemType, str]] = ..., metric: _Optional[str] = ..., target_reasons: _Optional[_Iterable[str]] = ..., columns: _Optional[_Iterable[_Union[ColumnSummary, _Mapping]]] = ..., n_rows: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetPrepared(_message.Message):
    __slots__ = ("spec", "prepared", "profile", "target", "problem_type", "metric", "n_train", "n_valid", "n_test", "n_folds", "feature_columns", "split_strategy", "n_generated_features")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    N_TRAIN_FIELD_NUMBER: _ClassVar[int]
    N_VALID_FIELD_NUMBER: _ClassVar[int]
    N_TEST_FIELD_NUMBER: _ClassVar[int]
    N_FOLDS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    N_GENERATED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    spec: _experiment_pb2.ExperimentSpec
    prepared: _common_pb2.ArtifactRef
    profile: _common_pb2.ArtifactRef
    target: str
    problem_type: _common_pb2.ProblemType
    metric: str
    n_train: int
    n_valid: int
    n_test: int
    n_folds: int
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    split_strategy: str
    n_generated_features: int
    def __init__(self, spec: _Optional[_Union[_experiment_pb2.ExperimentSpec, _Mapping]] = ..., prepared: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., profile: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., target: _Optional[str] = ..., problem_type: _Optional[_Union[_common_pb2.ProblemType, str]] = ..., metric: _Optional[str] = ..., n_train: _Optional[int] = ..., n_valid: _Optional[int] = ..., n_test: _Optional[int] = ..., n_folds: _Optional[int] = ..., feature_columns: _Optional[_Iterable[str]] = ..., split_strategy: _Optional[str] = ..., n_generated_features: _Optional[int] = ...) -> None: ...
