"""Domain logic of the git service: commit experiment artifacts to a git repository."""

from mlmesh_git.committer import (
    CommitInputError,
    CommitResult,
    RepositoryStateError,
    branch_name,
    commit_experiment,
    tag_name,
)

__all__ = [
    "CommitInputError",
    "CommitResult",
    "RepositoryStateError",
    "branch_name",
    "commit_experiment",
    "tag_name",
]
