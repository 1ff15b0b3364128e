from mlmesh.events.v1 import common_pb2 as _common_pb2
from mlmesh.events.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Candidate(_message.Message):
    __slots__ = ("family", "params_json", "metric", "cv_mean", "cv_std", "fold_scores", "fit_seconds", "device", "mlflow_run_id", "source", "greater_is_better", "oof_predictions", "latency_ms", "size_bytes", "fallback_from", "pareto_optimal", "ensemble_json")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CV_MEAN_FIELD_NUMBER: _ClassVar[int]
    CV_STD_FIELD_NUMBER: _ClassVar[int]
    FOLD_SCORES_FIELD_NUMBER: _ClassVar[int]
    FIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GREATER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    OOF_PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    PARETO_OPTIMAL_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_JSON_FIELD_NUMBER: _ClassVar[int]
    family: str
    params_json: str
    metric: str
    cv_mean: float
    cv_std: float
    fold_scores: _containers.RepeatedScalarFieldContainer[float]
    fit_seconds: float
    device: str
    mlflow_run_id: str
    source: str
    greater_is_better: bool
    oof_predictions: _common_pb2.ArtifactRef
    latency_ms: float
    size_bytes: int
    fallback_from: str
    pareto_optimal: bool
    ensemble_json: str
    def __init__(self, family: _Optional[str] = ..., params_json: _Optional[str] = ..., metric: _Optional[str] = ..., cv_mean: _Optional[float] = ..., cv_std: _Optional[float] = ..., fold_scores: _Optional[_Iterable[float]] = ..., fit_seconds: _Optional[float] = ..., device: _Optional[str] = ..., mlflow_run_id: _Optional[str] = ..., source: _Optional[str] = ..., greater_is_better: _Optional[bool] = ..., oof_predictions: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., latency_ms: _Optional[float] = ..., size_bytes: _Optional[int] = ..., fallback_from: _Optional[str] = ..., pareto_optimal: _Optional[bool] = ..., ensemble_json: _Optional[str] = ...) -> None: ...

class TrainJob(_message.Message):
    __slots__ = ("job_id", "family", "params_json", "dataset", "time_budget_s", "job_index", "job_count")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    JOB_INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    family: str
    params_json: str
    dataset: _dataset_pb2.DatasetPrepared
    time_budget_s: float
    job_index: int
    job_count: int
    def __init__(self, job_id: _Optional[str] = ..., family: _Optional[str] = ..., params_json: _Optional[str] = ..., dataset: _Optional[_Union[_dataset_pb2.DatasetPrepared, _Mapping]] = ..., time_budget_s: _Optional[float] = ..., job_index: _Optional[int] = ..., job_count: _Optional[int] = ...) -> None: ...

class TrainJobCompleted(_message.Message):
    __slots__ = ("job_id", "candidate", "error", "job_count")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    candidate: Candidate
    error: str
    job_count: int
    def __init__(self, job_id: _Optional[str] = ..., candidate: _Optional[_Union[Candidate, _Mapping]] = ..., error: _Optional[str] = ..., job_count: _Optional[int] = ...) -> None: ...

class TrainingCompleted(_message.Message):
    __slots__ = ("dataset", "candidates", "best_family")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    BEST_FAMILY_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetPrepared
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    best_family: str
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetPrepared, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., best_family: _Optional[str] = ...) -> None: ...

class TuneTrial(_message.Message):
    __slots__ = ("trial_id", "study_name", "storage_url", "trial_number", "family", "params_json", "dataset")
    TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    STUDY_NAME_FIELD_NUMBER: _ClassVar[int]
    STORAGE_URL_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    trial_id: str
    study_name: str
    storage_url: str
    trial_number: int
    family: str
    params_json: str
    dataset: _dataset_pb2.DatasetPrepared
    def __init__(self, trial_id: _Optional[str] = ..., study_name: _Optional[str] = ..., storage_url: _Optional[str] = ..., trial_number: _Optional[int] = ..., family: _Optional[str] = ..., params_json: _Optional[str] = ..., dataset: _Optional[_Union[_dataset_pb2.DatasetPrepared, _Mapping]] = ...) -> None: ...

class TuneTrialCompleted(_message.Message):
    __slots__ = ("trial_id", "trial_number", "candidate", "error")
    TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    trial_id: str
    trial_number: int
    candidate: Candidate
    error: str
    def __init__(self, trial_id: _Optional[str] = ..., trial_number: _Optional[int] = ..., candidate: _Optional[_Union[Candidate, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class TuningCompleted(_message.Message):
    __slots__ = ("dataset", "candidates", "best", "study_name", "n_trials", "skipped", "history", "pareto_front", "plots")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    STUDY_NAME_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PARETO_FRONT_FIELD_NUMBER: _ClassVar[int]
    PLOTS_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetPrepared
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    best: Candidate
    study_name: str
    n_trials: int
    skipped: bool
    history: _common_pb2.ArtifactRef
    pareto_front: _containers.RepeatedCompositeFieldContainer[Candidate]
    plots: _common_pb2.ArtifactRef
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetPrepared, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., best: _Optional[_Union[Candidate, _Mapping]] = ..., study_name: _Optional[str] = ..., n_trials: _Optional[int] = ..., skipped: _Optional[bool] = ..., history: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., pareto_front: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., plots: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ModelSelected(_message.Message):
    __slots__ = ("dataset", "winner", "leaderboard", "metric", "test_score", "baseline_test_score", "test_metrics", "model", "selection", "mlflow_run_id", "n_test", "test_score_ci_low", "test_score_ci_high", "ensemble_kind")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    LEADERBOARD_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    TEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    N_TEST_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_KIND_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetPrepared
    winner: Candidate
    leaderboard: _containers.RepeatedCompositeFieldContainer[Candidate]
    metric: str
    test_score: float
    baseline_test_score: float
    test_metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    model: _common_pb2.ArtifactRef
    selection: _common_pb2.ArtifactRef
    mlflow_run_id: str
    n_test: int
    test_score_ci_low: float
    test_score_ci_high: float
    ensemble_kind: str
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetPrepared, _Mapping]] = ..., winner: _Optional[_Union[Candidate, _Mapping]] = ..., leaderboard: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., metric: _Optional[str] = ..., test_score: _Optional[float] = ..., baseline_test_score: _Optional[float] = ..., test_metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., model: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., selection: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., mlflow_run_id: _Optional[str] = ..., n_test: _Optional[int] = ..., test_score_ci_low: _Optional[float] = ..., test_score_ci_high: _Optional[float] = ..., ensemble_kind: _Optional[str] = ...) -> None: ...
