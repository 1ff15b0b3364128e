"""Domain logic of the git service: record experiments in a git repository with DVC data."""

from mlmesh_git.config import GitConfig, GitConfigError, PullRequestConfig, redact_url
from mlmesh_git.layout import ExperimentFacts, experiment_stages, key_metrics, summary_line
from mlmesh_git.pull_requests import PullRequestError, open_pull_request
from mlmesh_git.repository import (
    CommitInputError,
    ExperimentRecord,
    RecordResult,
    RepositoryStateError,
    StageCommit,
    TransientPushError,
    branch_name,
    next_release_version,
    record_experiment,
    release_namespace,
    tag_name,
)

__all__ = [
    "CommitInputError",
    "ExperimentFacts",
    "ExperimentRecord",
    "GitConfig",
    "GitConfigError",
    "PullRequestConfig",
    "PullRequestError",
    "RecordResult",
    "RepositoryStateError",
    "StageCommit",
    "TransientPushError",
    "branch_name",
    "experiment_stages",
    "key_metrics",
    "next_release_version",
    "open_pull_request",
    "record_experiment",
    "redact_url",
    "release_namespace",
    "summary_line",
    "tag_name",
]
