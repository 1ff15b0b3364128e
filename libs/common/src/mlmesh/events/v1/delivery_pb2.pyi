from mlmesh.events.v1 import common_pb2 as _common_pb2
from mlmesh.events.v1 import training_pb2 as _training_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocsGenerated(_message.Message):
    __slots__ = ("selection", "report_html", "report_markdown", "model_card", "skipped", "white_paper_pdf", "white_paper_tex", "executive_summary", "reproduction", "folder")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    REPORT_HTML_FIELD_NUMBER: _ClassVar[int]
    REPORT_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    MODEL_CARD_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    WHITE_PAPER_PDF_FIELD_NUMBER: _ClassVar[int]
    WHITE_PAPER_TEX_FIELD_NUMBER: _ClassVar[int]
    EXECUTIVE_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REPRODUCTION_FIELD_NUMBER: _ClassVar[int]
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    selection: _training_pb2.ModelSelected
    report_html: _common_pb2.ArtifactRef
    report_markdown: _common_pb2.ArtifactRef
    model_card: _common_pb2.ArtifactRef
    skipped: bool
    white_paper_pdf: _common_pb2.ArtifactRef
    white_paper_tex: _common_pb2.ArtifactRef
    executive_summary: _common_pb2.ArtifactRef
    reproduction: _common_pb2.ArtifactRef
    folder: _common_pb2.ArtifactRef
    def __init__(self, selection: _Optional[_Union[_training_pb2.ModelSelected, _Mapping]] = ..., report_html: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., report_markdown: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., model_card: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., skipped: _Optional[bool] = ..., white_paper_pdf: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., white_paper_tex: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., executive_summary: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., reproduction: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., folder: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ExperimentCommitted(_message.Message):
    __slots__ = ("docs", "repository", "branch", "commit", "tag", "skipped", "remote", "pull_request_url", "commits", "release_tag")
    DOCS_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    PULL_REQUEST_URL_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_TAG_FIELD_NUMBER: _ClassVar[int]
    docs: DocsGenerated
    repository: str
    branch: str
    commit: str
    tag: str
    skipped: bool
    remote: str
    pull_request_url: str
    commits: _containers.RepeatedScalarFieldContainer[str]
    release_tag: str
    def __init__(self, docs: _Optional[_Union[DocsGenerated, _Mapping]] = ..., repository: _Optional[str] = ..., branch: _Optional[str] = ..., commit: _Optional[str] = ..., tag: _Optional[str] = ..., skipped: _Optional[bool] = ..., remote: _Optional[str] = ..., pull_request_url: _Optional[str] = ..., commits: _Optional[_Iterable[str]] = ..., release_tag: _Optional[str] = ...) -> None: ...

class ModelPublished(_message.Message):
    __slots__ = ("committed", "registered_model", "model_version", "model_uri", "model", "serving_app", "reference_data", "feature_columns", "skipped", "mlflow_run_id", "onnx", "alias", "promoted_to_champion", "native_model", "serving_docs")
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVING_APP_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DATA_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ONNX_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_TO_CHAMPION_FIELD_NUMBER: _ClassVar[int]
    NATIVE_MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVING_DOCS_FIELD_NUMBER: _ClassVar[int]
    committed: ExperimentCommitted
    registered_model: str
    model_version: str
    model_uri: str
    model: _common_pb2.ArtifactRef
    serving_app: _common_pb2.ArtifactRef
    reference_data: _common_pb2.ArtifactRef
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    skipped: bool
    mlflow_run_id: str
    onnx: _common_pb2.ArtifactRef
    alias: str
    promoted_to_champion: bool
    native_model: _common_pb2.ArtifactRef
    serving_docs: _common_pb2.ArtifactRef
    def __init__(self, committed: _Optional[_Union[ExperimentCommitted, _Mapping]] = ..., registered_model: _Optional[str] = ..., model_version: _Optional[str] = ..., model_uri: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., serving_app: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., reference_data: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., feature_columns: _Optional[_Iterable[str]] = ..., skipped: _Optional[bool] = ..., mlflow_run_id: _Optional[str] = ..., onnx: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., alias: _Optional[str] = ..., promoted_to_champion: _Optional[bool] = ..., native_model: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., serving_docs: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
