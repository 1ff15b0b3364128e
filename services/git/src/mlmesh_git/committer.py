"""Commit an experiment's artifacts to a git repository, one branch and tag per experiment.

Layout of the repository:

- ``main`` holds only the README written when the repository is created here (or whatever
  the owner keeps there); it is the base every experiment branch starts from.
- ``exp/<experiment_id>`` holds the experiment's files, committed on top of ``main``.
- ``exp-<experiment_id>`` is an annotated tag on the first commit of the experiment.

Commits are built with plumbing (blobs, a private temporary index, ``write-tree``,
``commit-tree``, ``update-ref``), so the main worktree, its index and ``HEAD`` are never
touched: a person can have ``main`` checked out while the service commits.

Idempotency and concurrency: the whole operation runs under an exclusive ``flock`` on the
repository directory (which also serialises creating the repository), and every ref is
moved with compare-and-swap (``update-ref <ref> <new> <old>``), so concurrent calls from
threads or processes for different experiments both land, and a redelivered call for the
same experiment finds the existing commit instead of making another. ``flock`` is honoured
by local filesystems; on network storage without lock support keep a single git service
replica per repository.

Re-committing an experiment with *different* content adds a new commit on top of its
branch (the given files are written over the branch's tree; files not given are kept,
except that a given file replaces a directory of the same path and vice versa) and
returns ``created=True``; the tag stays on the experiment's first commit, so it always
names what was first published.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

BASE_BRANCH = "main"
README_TEXT = (
    "# mlmesh experiments\n\n"
    "This repository is written by the mlmesh git service. Each experiment lives on its own\n"
    "branch `exp/<experiment_id>` (branched from `main`) and is tagged `exp-<experiment_id>`\n"
    "on its first commit.\n"
)
_ZERO_SHA = "0" * 40
_AUTHOR_RE = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")


class CommitInputError(ValueError):
    """The experiment id, file paths, contents or author cannot be committed as given."""


class RepositoryStateError(ValueError):
    """The target repository is in a state the committer will not change on its own."""


@dataclass(frozen=True)
class CommitResult:
    """Where an experiment's files were committed.

    ``created`` is False when the branch already held exactly these files and nothing was
    written (a redelivered event).
    """

    sha: str
    branch: str
    tag: str
    repo_path: Path
    created: bool


def branch_name(experiment_id: str) -> str:
    """Branch holding an experiment's files."""
    return f"exp/{experiment_id}"


def tag_name(experiment_id: str) -> str:
    """Annotated tag marking an experiment's first commit."""
    return f"exp-{experiment_id}"


def commit_experiment(
    repo_path: Path,
    experiment_id: str,
    files: Mapping[str, bytes],
    *,
    message: str,
    author: str = "mlmesh <mlmesh@localhost>",
) -> CommitResult:
    """Commit ``files`` (relative POSIX path -> content) on branch ``exp/<experiment_id>``.

    Creates the repository (with a README on ``main``) when ``repo_path`` is missing or
    empty. Tags the experiment's first commit ``exp-<experiment_id>`` with ``message``
    as the annotation. See the module docstring for idempotency and concurrency rules.
    """
    _check_experiment_id(experiment_id)
    entries = _check_files(files)
    if not message.strip():
        raise CommitInputError("commit message is empty; pass a summary of the experiment")
    name, email = _parse_author(author)
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    repo_path = Path(repo_path).resolve()
    if repo_path.exists() and not repo_path.is_dir():
        raise RepositoryStateError(
            f"{repo_path} exists and is not a directory; point the git service at a repository"
        )
    repo_path.mkdir(parents=True, exist_ok=True)
    with _directory_lock(repo_path):
        repo, initialised = _open_or_init(repo_path, env)
        try:
            _ensure_base_branch(repo, env, checkout=initialised)
            return _commit_locked(repo, repo_path, experiment_id, entries, message, env)
        finally:
            repo.close()


# --------------------------------------------------------------------------- validation


def _check_experiment_id(experiment_id: str) -> None:
    if not experiment_id or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", experiment_id):
        raise CommitInputError(
            f"experiment id {experiment_id!r} cannot name a git branch; use letters, digits, "
            "'.', '_' and '-' only, starting with a letter or digit"
        )
    if experiment_id.endswith((".lock", ".")) or ".." in experiment_id:
        raise CommitInputError(
            f"experiment id {experiment_id!r} is not a valid git ref component "
            "(no '..', no trailing '.' or '.lock')"
        )


def _check_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    if not files:
        raise CommitInputError("no files to commit; pass at least one path -> content")
    entries: dict[str, bytes] = {}
    for raw_path, content in files.items():
        if not isinstance(content, bytes | bytearray | memoryview):
            raise CommitInputError(
                f"content of {raw_path!r} is {type(content).__name__}, expected bytes; "
                "encode text before committing"
            )
        path = PurePosixPath(raw_path)
        parts = path.parts
        if (
            not raw_path
            or "\\" in raw_path
            or path.is_absolute()
            or any(p in ("", ".", "..") for p in parts)
            or any(p.lower() == ".git" for p in parts)
            or any(ch in raw_path for ch in "\0\n\r")
            or str(path) != raw_path.rstrip("/")
            or raw_path.endswith("/")
        ):
            raise CommitInputError(
                f"file path {raw_path!r} is not a clean relative POSIX path inside the "
                "repository (no absolute paths, '..', '.', '.git', backslashes or newlines)"
            )
        entries[raw_path] = bytes(content)
    names = sorted(entries)
    for shorter, longer in zip(names, names[1:], strict=False):
        if longer.startswith(shorter + "/"):
            raise CommitInputError(
                f"{shorter!r} is given as a file but is also a directory of {longer!r}"
            )
    return entries


def _parse_author(author: str) -> tuple[str, str]:
    match = _AUTHOR_RE.match(author or "")
    if not match:
        raise CommitInputError(
            f"author {author!r} is not of the form 'Name <email>', e.g. 'mlmesh <mlmesh@localhost>'"
        )
    return match.group("name"), match.group("email")


# --------------------------------------------------------------------------- repository


def _open_or_init(repo_path: Path, env: Mapping[str, str]) -> tuple[git.Repo, bool]:
    """Open the repository, creating it when missing; the flag says it was created here."""
    try:
        return git.Repo(repo_path), False
    except git.NoSuchPathError:
        pass
    except git.InvalidGitRepositoryError:
        if any(repo_path.iterdir()):
            raise RepositoryStateError(
                f"{repo_path} is a non-empty directory that is not a git repository; "
                "point the git service at an existing repository or an empty/missing directory"
            ) from None
    git.Git(str(repo_path)).execute(
        ["git", "init", "--quiet", f"--initial-branch={BASE_BRANCH}", str(repo_path)],
        env=dict(env),
    )
    return git.Repo(repo_path), True


@contextmanager
def _directory_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on the repository directory itself (threads and processes).

    Locking the directory rather than a file inside ``.git`` also serialises creating
    the repository, and leaves no lock file behind.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _ensure_base_branch(repo: git.Repo, env: Mapping[str, str], *, checkout: bool) -> None:
    """Create ``main`` with the README when the repository has no commit yet.

    ``checkout`` (only for a repository created by this call) also refreshes its index and
    worktree so they show the README; an existing worktree is never touched.
    """
    if _rev(repo, f"refs/heads/{BASE_BRANCH}") is not None:
        return
    if _has_any_commit(repo):
        raise RepositoryStateError(
            f"repository {repo.working_dir} has commits but no '{BASE_BRANCH}' branch; "
            f"create '{BASE_BRANCH}' (the base for experiment branches) and retry"
        )
    blob = _write_blob(repo, README_TEXT.encode())
    with _temporary_index(repo) as index_env:
        full_env = {**env, **index_env}
        _update_index(repo, {"README.md": blob}, full_env)
        tree = repo.git.write_tree(env=full_env)
    commit = repo.git.commit_tree(tree, "-m", "Initialise mlmesh experiment repository", env=env)
    repo.git.update_ref(f"refs/heads/{BASE_BRANCH}", commit, _ZERO_SHA, env=env)
    if checkout and repo.working_tree_dir is not None:
        repo.git.reset("--hard", "--quiet", commit)


def _commit_locked(
    repo: git.Repo,
    repo_path: Path,
    experiment_id: str,
    entries: Mapping[str, bytes],
    message: str,
    env: Mapping[str, str],
) -> CommitResult:
    branch = branch_name(experiment_id)
    tag = tag_name(experiment_id)
    branch_ref = f"refs/heads/{branch}"
    tip = _rev(repo, branch_ref)
    parent = tip or _rev(repo, f"refs/heads/{BASE_BRANCH}")
    assert parent is not None  # _ensure_base_branch guarantees main exists

    blobs = {path: _write_blob(repo, content) for path, content in entries.items()}
    with _temporary_index(repo) as index_env:
        full_env = {**env, **index_env}
        repo.git.read_tree(parent, env=full_env)
        _update_index(repo, blobs, full_env)
        tree = repo.git.write_tree(env=full_env)

    if tip is not None and repo.git.rev_parse(f"{tip}^{{tree}}") == tree:
        _ensure_tag(repo, tag, branch_ref, message, env)
        return CommitResult(tip, branch, tag, repo_path, created=False)

    commit = repo.git.commit_tree(tree, "-p", parent, "-m", message, env=env)
    # Compare-and-swap: fails instead of overwriting if the branch moved meanwhile.
    repo.git.update_ref(branch_ref, commit, tip or _ZERO_SHA, env=env)
    _ensure_tag(repo, tag, branch_ref, message, env)
    return CommitResult(commit, branch, tag, repo_path, created=True)


def _ensure_tag(
    repo: git.Repo, tag: str, branch_ref: str, message: str, env: Mapping[str, str]
) -> None:
    """Create the annotated tag on the branch's first experiment commit if it is missing."""
    if _rev(repo, f"refs/tags/{tag}") is not None:
        return
    first = _first_experiment_commit(repo, branch_ref)
    repo.git.tag("-a", tag, first, "-m", message, env=env)


def _first_experiment_commit(repo: git.Repo, branch_ref: str) -> str:
    commits = repo.git.rev_list("--reverse", branch_ref, f"^refs/heads/{BASE_BRANCH}").split()
    return commits[0] if commits else repo.git.rev_parse(branch_ref)


# --------------------------------------------------------------------------- plumbing


def _rev(repo: git.Repo, ref: str) -> str | None:
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return None


def _has_any_commit(repo: git.Repo) -> bool:
    return bool(repo.git.for_each_ref("--count=1", "refs/heads", "refs/tags").strip())


def _write_blob(repo: git.Repo, content: bytes) -> str:
    with tempfile.TemporaryFile() as handle:
        handle.write(content)
        handle.seek(0)
        return repo.git.hash_object("-w", "--stdin", istream=handle)


@contextmanager
def _temporary_index(repo: git.Repo) -> Iterator[dict[str, str]]:
    """A private index file so plumbing never touches the worktree's index."""
    fd, path = tempfile.mkstemp(prefix="mlmesh-index-", dir=repo.common_dir)
    os.close(fd)
    os.unlink(path)  # git wants to create the index itself
    try:
        yield {"GIT_INDEX_FILE": path}
    finally:
        for leftover in (path, path + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _update_index(repo: git.Repo, blobs: Mapping[str, str], env: Mapping[str, str]) -> None:
    lines = b"".join(f"100644 {sha}\t{path}".encode() + b"\0" for path, sha in blobs.items())
    with tempfile.TemporaryFile() as handle:
        handle.write(lines)
        handle.seek(0)
        repo.git.update_index("-z", "--index-info", istream=handle, env=dict(env))
