"""Record an experiment in the experiments git repository.

Layout:

- ``main`` starts with the standard files (README, LICENSE, .gitignore and a DVC project
  whose default remote is the configured DVC remote); every experiment branches from it.
- ``exp/<experiment_id>`` holds one commit per stage (data, pipeline, evaluation, report),
  each message carrying the experiment id, the key metrics and the trailers
  ``Mlmesh-Experiment`` / ``Mlmesh-Stage`` that make a redelivery find what is done.
- ``exp-<experiment_id>`` is an annotated tag on the experiment's last commit, and
  ``<project>/<target>/model-vMAJOR.MINOR.PATCH`` an annotated release tag on the same
  commit: 1.0.0 for the first model of a project and target, the next MINOR after that.

Commits are made in a temporary worktree of the experiment branch (DVC runs there too),
so the main worktree, its index and ``HEAD`` are never touched. Everything runs under an
exclusive ``flock`` on the repository directory, so concurrent calls (threads or
processes) serialise, and a redelivered call finds its stages, tags, pushed refs and pull
request and creates nothing new.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from mlmesh_git.config import GitConfig, redact_text, redact_url
from mlmesh_git.dvc_tracking import add_and_push, dvc_repository_files
from mlmesh_git.pull_requests import open_pull_request

BASE_BRANCH = "main"
STAGES = ("data", "pipeline", "evaluation", "report")
README_TEXT = (
    "# mlmesh experiments\n\n"
    "Written by the mlmesh git service. Each experiment lives on its own branch\n"
    "`exp/<experiment_id>` (from `main`) with one commit per stage:\n\n"
    "1. configuration and data (datasets tracked with DVC: `dvc pull` fetches them),\n"
    "2. pipeline code and the exact environment (requirements lock, Python, platform),\n"
    "3. evaluation (metrics, leaderboard),\n"
    "4. report (report, model card, white paper).\n\n"
    "Tags: `exp-<experiment_id>` on the experiment's last commit, and\n"
    "`<project>/<target>/model-vMAJOR.MINOR.PATCH` for each model release.\n"
)
GITIGNORE_TEXT = (
    "__pycache__/\n*.py[cod]\n.venv/\nvenv/\n.ipynb_checkpoints/\nmlruns/\n"
    ".DS_Store\n*.log\n"
)
LICENSE_TEXT = """MIT License

Copyright (c) {year} {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
_ZERO_SHA = "0" * 40
_AUTHOR_RE = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")
_VERSION_RE = re.compile(r"model-v(\d+)\.(\d+)\.(\d+)$")
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$MLMESH_GIT_ASKPASS_USERNAME" ;;
  *) printf '%s\\n' "$MLMESH_GIT_ASKPASS_PASSWORD" ;;
esac
"""


class CommitInputError(ValueError):
    """The experiment id, stages, file paths, contents or author cannot be committed."""


class RepositoryStateError(ValueError):
    """The repository or its remote is in a state the service will not change on its own."""


class TransientPushError(RuntimeError):
    """Pushing to (or reading) the git remote failed in a way a retry may fix."""


@dataclass(frozen=True)
class StageCommit:
    """One stage's commit: files written as given, and local files tracked with DVC.

    ``dvc_files`` maps a repository path to the local file copied there and ``dvc add``-ed
    (its ``.dvc`` pointer is committed, its content pushed to the DVC remote).
    """

    stage: str
    title: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    dvc_files: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentRecord:
    """What to record for one experiment."""

    experiment_id: str
    project: str
    target: str
    summary: str
    stages: Sequence[StageCommit]
    key_metrics: Mapping[str, str] = field(default_factory=dict)
    release: bool = True


@dataclass(frozen=True)
class RecordResult:
    """Where the experiment was recorded. ``created`` is False for a redelivery."""

    branch: str
    tag: str
    release_tag: str
    commits: list[str]
    repo_path: Path
    created: bool
    remote: str = ""
    pushed: bool = False
    pull_request_url: str = ""

    @property
    def sha(self) -> str:
        """The experiment's last commit."""
        return self.commits[-1]


def branch_name(experiment_id: str) -> str:
    """Branch holding an experiment's commits."""
    return f"exp/{experiment_id}"


def tag_name(experiment_id: str) -> str:
    """Annotated tag on an experiment's last commit."""
    return f"exp-{experiment_id}"


def release_namespace(project: str, target: str) -> str:
    """Tag prefix of a project's and target's model releases, e.g. ``penguins/species``."""
    return f"{_ref_component(project or 'default')}/{_ref_component(target or 'target')}"


def next_release_version(existing_tags: Sequence[str]) -> tuple[int, int, int]:
    """1.0.0 for the first release, else the highest version with MINOR + 1 and PATCH 0."""
    versions = [tuple(int(g) for g in m.groups()) for t in existing_tags
                if (m := _VERSION_RE.search(t))]
    if not versions:
        return (1, 0, 0)
    major, minor, _ = max(versions)
    return (major, minor + 1, 0)


def record_experiment(config: GitConfig, record: ExperimentRecord,
                      scratch_dir: Path | None = None) -> RecordResult:
    """Commit the experiment's stages on ``exp/<id>``, tag, push and open a pull request.

    Creates the repository (standard files on ``main``) when ``config.repo_path`` is
    missing or empty. See the module docstring for the layout and the idempotency rules.
    """
    _check_experiment_id(record.experiment_id)
    stages = _check_stages(record.stages)
    if not record.summary.strip():
        raise CommitInputError("summary is empty; pass the key metrics in one line")
    env = _author_env(config.author)
    repo_path = Path(config.repo_path).resolve()
    if repo_path.exists() and not repo_path.is_dir():
        raise RepositoryStateError(
            f"{repo_path} exists and is not a directory; point MLMESH_GIT_REPO at a repository")
    repo_path.mkdir(parents=True, exist_ok=True)
    with _directory_lock(repo_path):
        repo, initialised = _open_or_init(repo_path, env)
        try:
            _ensure_base_branch(repo, config, env, checkout=initialised)
            repo.git.worktree("prune")
            created = _commit_missing_stages(repo, config, record, stages, env, scratch_dir)
            branch = branch_name(record.experiment_id)
            commits = [sha for sha, _ in _recorded_stages(repo, record.experiment_id)]
            tip = commits[-1]
            tag = tag_name(record.experiment_id)
            _ensure_tag(repo, tag, tip, _tag_message(record), env)
            release = _ensure_release_tag(repo, record, tip, env) if record.release else ""
            result = RecordResult(branch=branch, tag=tag, release_tag=release, commits=commits,
                                  repo_path=repo_path, created=created)
            if not config.remote_url:
                return result
            pushed = _push(repo, config, branch, [tag, *([release] if release else [])],
                           scratch_dir)
            pr_url = ""
            if config.pull_request is not None:
                pr_url = open_pull_request(config.pull_request, branch,
                                           _pull_request_title(record),
                                           _pull_request_body(record, commits, release))
            return RecordResult(branch=branch, tag=tag, release_tag=release, commits=commits,
                                repo_path=repo_path, created=created,
                                remote=redact_url(config.remote_url), pushed=pushed,
                                pull_request_url=pr_url)
        finally:
            repo.close()


# --------------------------------------------------------------------------- validation


def _check_experiment_id(experiment_id: str) -> None:
    if not experiment_id or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", experiment_id):
        raise CommitInputError(
            f"experiment id {experiment_id!r} cannot name a git branch; use letters, digits, "
            "'.', '_' and '-' only, starting with a letter or digit")
    if experiment_id.endswith((".lock", ".")) or ".." in experiment_id:
        raise CommitInputError(
            f"experiment id {experiment_id!r} is not a valid git ref component "
            "(no '..', no trailing '.' or '.lock')")


def _check_stages(stages: Sequence[StageCommit]) -> list[StageCommit]:
    if not stages:
        raise CommitInputError("no stages to commit; pass at least the data stage")
    names = [s.stage for s in stages]
    unknown = [n for n in names if n not in STAGES]
    if unknown or len(set(names)) != len(names):
        raise CommitInputError(f"stages {names} must be distinct names out of {list(STAGES)}")
    for stage in stages:
        if not stage.files and not stage.dvc_files:
            raise CommitInputError(f"stage {stage.stage!r} has no files; leave the stage out")
        _check_files({**stage.files, **{p: b"" for p in stage.dvc_files}})
        for path, source in stage.dvc_files.items():
            if not Path(source).is_file():
                raise CommitInputError(f"DVC source {source} for {path!r} is not a file")
    return list(stages)


def _check_files(files: Mapping[str, bytes]) -> None:
    for raw_path, content in files.items():
        if not isinstance(content, bytes | bytearray | memoryview):
            raise CommitInputError(f"content of {raw_path!r} is {type(content).__name__}, "
                                   "expected bytes; encode text before committing")
        path = PurePosixPath(raw_path)
        if (not raw_path or "\\" in raw_path or path.is_absolute()
                or any(p in ("", ".", "..") for p in path.parts)
                or any(p.lower() == ".git" for p in path.parts)
                or any(ch in raw_path for ch in "\0\n\r")
                or str(path) != raw_path or raw_path.endswith("/")):
            raise CommitInputError(
                f"file path {raw_path!r} is not a clean relative POSIX path inside the "
                "repository (no absolute paths, '..', '.', '.git', backslashes or newlines)")
    names = sorted(files)
    for shorter, longer in zip(names, names[1:], strict=False):
        if longer.startswith(shorter + "/"):
            raise CommitInputError(
                f"{shorter!r} is given as a file but is also a directory of {longer!r}")


def _author_env(author: str) -> dict[str, str]:
    match = _AUTHOR_RE.match(author or "")
    if not match:
        raise CommitInputError(f"author {author!r} is not of the form 'Name <email>', "
                               "e.g. 'mlmesh <mlmesh@localhost>' (MLMESH_GIT_AUTHOR)")
    name, email = match.group("name"), match.group("email")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def _ref_component(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = cleaned[:-5] if cleaned.endswith(".lock") else cleaned
    return cleaned or "unnamed"


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
                f"{repo_path} is a non-empty directory that is not a git repository; point "
                "MLMESH_GIT_REPO at an existing repository or an empty/missing directory",
            ) from None
    git.Git(str(repo_path)).execute(
        ["git", "init", "--quiet", f"--initial-branch={BASE_BRANCH}", str(repo_path)],
        env=dict(env))
    return git.Repo(repo_path), True


@contextmanager
def _directory_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on the repository directory (threads and processes)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def standard_files(config: GitConfig) -> dict[str, bytes]:
    """README, LICENSE, .gitignore and the DVC project files of a new repository."""
    holder = _AUTHOR_RE.match(config.author).group("name")  # type: ignore[union-attr]
    return {
        "README.md": README_TEXT.encode(),
        "LICENSE": LICENSE_TEXT.format(year=dt.date.today().year, holder=holder).encode(),
        ".gitignore": GITIGNORE_TEXT.encode(),
        **dvc_repository_files(config.dvc_remote),
    }


def _ensure_base_branch(repo: git.Repo, config: GitConfig, env: Mapping[str, str], *,
                        checkout: bool) -> None:
    """Create ``main`` with the standard files when the repository has no commit yet.

    ``checkout`` (only for a repository created by this call) also refreshes its index and
    worktree; an existing worktree is never touched.
    """
    if _rev(repo, f"refs/heads/{BASE_BRANCH}") is not None:
        return
    if repo.git.for_each_ref("--count=1", "refs/heads", "refs/tags").strip():
        raise RepositoryStateError(
            f"repository {repo.working_dir} has commits but no '{BASE_BRANCH}' branch; "
            f"create '{BASE_BRANCH}' (the base for experiment branches) and retry")
    blobs = {path: _write_blob(repo, content) for path, content in standard_files(config).items()}
    with _temporary_index(repo) as index_env:
        full_env = {**env, **index_env}
        lines = b"".join(f"100644 {sha}\t{path}".encode() + b"\0" for path, sha in blobs.items())
        with tempfile.TemporaryFile() as handle:
            handle.write(lines)
            handle.seek(0)
            repo.git.update_index("-z", "--index-info", istream=handle, env=full_env)
        tree = repo.git.write_tree(env=full_env)
    commit = repo.git.commit_tree(tree, "-m", "Initialise mlmesh experiment repository", env=env)
    repo.git.update_ref(f"refs/heads/{BASE_BRANCH}", commit, _ZERO_SHA, env=env)
    if checkout and repo.working_tree_dir is not None:
        repo.git.reset("--hard", "--quiet", commit)


def _recorded_stages(repo: git.Repo, experiment_id: str) -> list[tuple[str, str]]:
    """(commit, stage) of the experiment's stage commits on its branch, oldest first."""
    branch_ref = f"refs/heads/{branch_name(experiment_id)}"
    if _rev(repo, branch_ref) is None:
        return []
    log = repo.git.log("--reverse", "--format=%H%x1f%(trailers:key=Mlmesh-Experiment,valueonly,"
                       "separator=%x2C)%x1f%(trailers:key=Mlmesh-Stage,valueonly,"
                       "separator=%x2C)%x1e", branch_ref)
    found = []
    for entry in log.split("\x1e"):
        parts = entry.strip().split("\x1f")
        if len(parts) == 3 and parts[1].strip() == experiment_id and parts[2].strip():
            found.append((parts[0], parts[2].strip()))
    return found


def _commit_missing_stages(repo: git.Repo, config: GitConfig, record: ExperimentRecord,
                           stages: Sequence[StageCommit], env: Mapping[str, str],
                           scratch_dir: Path | None) -> bool:
    done = {stage for _, stage in _recorded_stages(repo, record.experiment_id)}
    missing = [s for s in stages if s.stage not in done]
    if not missing:
        return False
    branch = branch_name(record.experiment_id)
    with _worktree(repo, branch, scratch_dir) as worktree:
        wt = git.Repo(worktree)
        try:
            for stage in missing:
                files = dict(stage.files)
                if stage.dvc_files:
                    files = {**dvc_repository_files(config.dvc_remote), **files}
                for path, content in files.items():
                    target = worktree / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(bytes(content))
                for path, source in stage.dvc_files.items():
                    target = worktree / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                add_and_push(worktree, sorted(stage.dvc_files))
                wt.git.add("--all", env=env)
                wt.git.commit("--quiet", "--no-verify", "--allow-empty", "--no-gpg-sign",
                              "-m", _commit_message(record, stage), env=env)
        finally:
            wt.close()
    return True


@contextmanager
def _worktree(repo: git.Repo, branch: str, scratch_dir: Path | None) -> Iterator[Path]:
    """A temporary worktree with ``branch`` checked out (created from main when missing)."""
    holder = Path(tempfile.mkdtemp(prefix="mlmesh-git-", dir=scratch_dir))
    path = holder / "worktree"
    try:
        if _rev(repo, f"refs/heads/{branch}") is None:
            repo.git.worktree("add", "--quiet", "-b", branch, str(path), BASE_BRANCH)
        else:
            repo.git.worktree("add", "--quiet", "--force", str(path), branch)
        yield path
    finally:
        try:
            repo.git.worktree("remove", "--force", str(path))
        except git.GitCommandError:
            repo.git.worktree("prune")
        shutil.rmtree(holder, ignore_errors=True)


def _commit_message(record: ExperimentRecord, stage: StageCommit) -> str:
    lines = [f"exp {record.experiment_id} {stage.stage}: {stage.title} | {record.summary}", ""]
    lines += [f"{name}: {value}" for name, value in record.key_metrics.items()]
    if record.key_metrics:
        lines.append("")
    lines += [f"Mlmesh-Experiment: {record.experiment_id}", f"Mlmesh-Stage: {stage.stage}"]
    return "\n".join(lines) + "\n"


def _tag_message(record: ExperimentRecord) -> str:
    return f"experiment {record.experiment_id}: {record.summary}\n"


def _ensure_tag(repo: git.Repo, tag: str, target: str, message: str,
                env: Mapping[str, str]) -> None:
    """Create the annotated tag on ``target`` when it does not exist yet."""
    if _rev(repo, f"refs/tags/{tag}") is None:
        repo.git.tag("-a", tag, target, "-m", message, env=env)


def _ensure_release_tag(repo: git.Repo, record: ExperimentRecord, tip: str,
                        env: Mapping[str, str]) -> str:
    """The release tag already on ``tip``, or a new one with the next version."""
    pattern = f"{release_namespace(record.project, record.target)}/model-v*"
    on_tip = [t for t in repo.git.tag("--list", pattern, "--points-at", tip).split() if t]
    if on_tip:
        return sorted(on_tip)[0]
    major, minor, patch = next_release_version(repo.git.tag("--list", pattern).split())
    tag = f"{release_namespace(record.project, record.target)}/model-v{major}.{minor}.{patch}"
    message = (f"model release {major}.{minor}.{patch} of {record.project or 'default'} / "
               f"{record.target}\n\nexperiment {record.experiment_id}: {record.summary}\n")
    repo.git.tag("-a", tag, tip, "-m", message, env=env)
    return tag


def _pull_request_title(record: ExperimentRecord) -> str:
    return f"Experiment {record.experiment_id}: {record.summary}"


def _pull_request_body(record: ExperimentRecord, commits: Sequence[str], release: str) -> str:
    lines = [f"Experiment `{record.experiment_id}` recorded by mlmesh.", ""]
    lines += [f"- {name}: {value}" for name, value in record.key_metrics.items()]
    if release:
        lines += ["", f"Release tag: `{release}`"]
    lines += ["", "Commits:", *[f"- {sha}" for sha in commits]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- remote


def _push(repo: git.Repo, config: GitConfig, branch: str, tags: Sequence[str],
          scratch_dir: Path | None) -> bool:
    """Push the branch and tags the remote lacks (and main when it has none); False when the
    remote already had everything."""
    wanted = {f"refs/heads/{branch}": repo.git.rev_parse(f"refs/heads/{branch}")}
    wanted |= {f"refs/tags/{t}": repo.git.rev_parse(f"refs/tags/{t}") for t in tags}
    with _credentials_env(config, scratch_dir) as env:
        remote_refs = _remote_refs(repo, config, env)
        if f"refs/heads/{BASE_BRANCH}" not in remote_refs:
            wanted[f"refs/heads/{BASE_BRANCH}"] = repo.git.rev_parse(f"refs/heads/{BASE_BRANCH}")
        missing = sorted(ref for ref, sha in wanted.items() if remote_refs.get(ref) != sha)
        if not missing:
            return False
        _run_remote(repo, config, env, "push", "--porcelain", "--no-verify",
                    config.remote_url, *[f"{ref}:{ref}" for ref in missing])
    return True


def _remote_refs(repo: git.Repo, config: GitConfig, env: Mapping[str, str]) -> dict[str, str]:
    out = _run_remote(repo, config, env, "ls-remote", config.remote_url)
    refs = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            refs[ref.strip()] = sha.strip()
    return refs


def _run_remote(repo: git.Repo, config: GitConfig, env: Mapping[str, str], *args: str) -> str:
    try:
        return repo.git.execute(["git", *args], env=dict(env))
    except git.GitCommandError as exc:
        stderr = redact_text(str(exc.stderr or ""), config.token, config.username
                             if config.token else "").strip()
        where = redact_url(config.remote_url)
        if any(s in stderr for s in ("Authentication failed", "could not read Username",
                                      "could not read Password", "returned error: 403")):
            raise RepositoryStateError(
                f"git {args[0]} to {where} was not authorised: {stderr[-800:]}; check "
                "MLMESH_GIT_USERNAME / MLMESH_GIT_TOKEN and the token's write access") from None
        if any(s in stderr for s in ("non-fast-forward", "[rejected]", "already exists",
                                      "does not appear to be a git repository")):
            raise RepositoryStateError(
                f"git {args[0]} to {where} was refused: {stderr[-800:]}; fix the remote "
                "(it has diverging refs or is not a repository) and replay") from None
        raise TransientPushError(f"git {args[0]} to {where} failed: {stderr[-800:]}") from None


@contextmanager
def _credentials_env(config: GitConfig, scratch_dir: Path | None) -> Iterator[dict[str, str]]:
    """Environment for git talking to the remote: credentials come from an askpass script
    reading them from the child's environment, so they never reach argv, a URL in
    ``.git/config`` or a credential store."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": ""}
    if not config.token:
        yield env
        return
    holder = Path(tempfile.mkdtemp(prefix="mlmesh-askpass-", dir=scratch_dir))
    script = holder / "askpass.sh"
    try:
        script.write_text(_ASKPASS)
        script.chmod(stat.S_IRWXU)
        yield {**env, "GIT_ASKPASS": str(script),
               "MLMESH_GIT_ASKPASS_USERNAME": config.username or "mlmesh",
               "MLMESH_GIT_ASKPASS_PASSWORD": config.token}
    finally:
        shutil.rmtree(holder, ignore_errors=True)


# --------------------------------------------------------------------------- plumbing


def _rev(repo: git.Repo, ref: str) -> str | None:
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return None


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
    os.unlink(path)
    try:
        yield {"GIT_INDEX_FILE": path}
    finally:
        for leftover in (path, path + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)


__all__ = ["BASE_BRANCH", "STAGES", "CommitInputError", "ExperimentRecord", "RecordResult",
           "RepositoryStateError", "StageCommit", "TransientPushError", "branch_name",
           "next_release_version", "record_experiment", "release_namespace", "standard_files",
           "tag_name"]
