"""record_experiment against temporary repositories, a local DVC remote and bare remotes."""

from __future__ import annotations

import hashlib
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import git
import pytest

from mlmesh_git.config import GitConfig
from mlmesh_git.repository import (
    README_TEXT,
    CommitInputError,
    ExperimentRecord,
    RepositoryStateError,
    StageCommit,
    next_release_version,
    record_experiment,
    release_namespace,
)

SUMMARY = "lightgbm test accuracy=0.9800 (baseline 0.4400)"
KEY_METRICS = {"model": "lightgbm", "test accuracy": "0.9800", "baseline accuracy": "0.4400"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _changed(repo: Path, sha: str) -> set[str]:
    return set(_git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split())


def _record(tmp: Path, experiment_id: str, *, project: str = "penguins",
            target: str = "species", stages: tuple[str, ...] = ("data", "pipeline",
                                                                   "evaluation", "report"),
            ) -> ExperimentRecord:
    src = tmp / "src" / experiment_id
    src.mkdir(parents=True, exist_ok=True)
    (src / "train.parquet").write_bytes(f"train rows of {experiment_id}".encode())
    (src / "test.parquet").write_bytes(f"test rows of {experiment_id}".encode())
    root = f"experiments/{experiment_id}"
    all_stages = {
        "data": StageCommit("data", "configuration and data (DVC)",
                            {f"{root}/config/experiment.json": b'{"target": "species"}\n'},
                            {f"{root}/data/train.parquet": src / "train.parquet",
                             f"{root}/data/test.parquet": src / "test.parquet"}),
        "pipeline": StageCommit("pipeline", "pipeline code and exact environment",
                                {f"{root}/pipeline/pipeline.json": b"{}\n",
                                 f"{root}/environment/requirements.lock": b"dvc==3\n"}),
        "evaluation": StageCommit("evaluation", "metrics and leaderboard",
                                  {f"{root}/evaluation/metrics.json": b'{"accuracy": 0.98}\n'}),
        "report": StageCommit("report", "report and model card",
                              {f"{root}/report/report.md": b"# Report\n"}),
    }
    return ExperimentRecord(experiment_id, project, target, SUMMARY,
                            [all_stages[s] for s in stages], KEY_METRICS)


def _config(tmp: Path, **kwargs) -> GitConfig:
    return GitConfig(repo_path=tmp / "repo", dvc_remote=str(tmp / "dvc-remote"), **kwargs)


def test_stage_commits_standard_files_dvc_and_tags(tmp_path: Path) -> None:
    config = _config(tmp_path, author="Mesh Bot <bot@example.org>")
    record = _record(tmp_path, "exp1")
    result = record_experiment(config, record, scratch_dir=tmp_path)
    repo = tmp_path / "repo"

    # main: the standard files only, checked out, clean, no worktree left behind
    assert set(_git(repo, "ls-tree", "-r", "--name-only", "main").split()) == {
        "README.md", "LICENSE", ".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvcignore"}
    assert (repo / "README.md").read_text() == README_TEXT
    assert "MIT License" in (repo / "LICENSE").read_text()
    assert f"url = {tmp_path / 'dvc-remote'}" in _git(repo, "show", "main:.dvc/config")
    assert _git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert _git(repo, "status", "--porcelain") == ""
    assert not (repo / "experiments").exists()
    assert len(_git(repo, "worktree", "list").splitlines()) == 1

    # four commits on top of main, one per stage, in order
    assert result.created and result.branch == "exp/exp1" and len(result.commits) == 4
    assert _git(repo, "rev-list", "--reverse", "main..exp/exp1").split() == result.commits
    assert result.sha == _git(repo, "rev-parse", "exp/exp1")
    data, pipeline, evaluation, report = result.commits
    assert _changed(repo, data) == {
        "experiments/exp1/config/experiment.json", "experiments/exp1/data/.gitignore",
        "experiments/exp1/data/train.parquet.dvc", "experiments/exp1/data/test.parquet.dvc"}
    assert _changed(repo, pipeline) == {"experiments/exp1/pipeline/pipeline.json",
                                        "experiments/exp1/environment/requirements.lock"}
    assert _changed(repo, evaluation) == {"experiments/exp1/evaluation/metrics.json"}
    assert _changed(repo, report) == {"experiments/exp1/report/report.md"}
    for sha, stage in zip(result.commits, ("data", "pipeline", "evaluation", "report"),
                          strict=True):
        message = _git(repo, "log", "-1", "--format=%B", sha)
        assert message.startswith(f"exp exp1 {stage}: ")
        assert SUMMARY in message.splitlines()[0] and "test accuracy: 0.9800" in message
        assert f"Mlmesh-Stage: {stage}" in message
        assert _git(repo, "log", "-1", "--format=%an <%ae>", sha) == "Mesh Bot <bot@example.org>"

    # data: the parquet content is in the DVC remote, only pointers are in git
    assert sorted(_git(repo, "show", f"{data}:experiments/exp1/data/.gitignore").split()) == [
        "/test.parquet", "/train.parquet"]
    pointer = _git(repo, "show", f"{data}:experiments/exp1/data/train.parquet.dvc")
    md5 = hashlib.md5(b"train rows of exp1").hexdigest()
    assert f"md5: {md5}" in pointer
    assert (tmp_path / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == (
        b"train rows of exp1")

    # tags: experiment and release, both annotated, on the last commit
    assert result.tag == "exp-exp1" and result.release_tag == "penguins/species/model-v1.0.0"
    for tag in (result.tag, result.release_tag):
        assert _git(repo, "cat-file", "-t", f"refs/tags/{tag}") == "tag"
        assert _git(repo, "rev-parse", f"{tag}^{{commit}}") == result.sha
    assert "exp1" in _git(repo, "tag", "-l", "--format=%(contents)", result.release_tag)


def test_the_data_can_be_pulled_back_with_dvc(tmp_path: Path) -> None:
    result = record_experiment(_config(tmp_path), _record(tmp_path, "exp1"), tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--branch", result.branch,
                    str(tmp_path / "repo"), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "pull", "--quiet"], cwd=clone, check=True,
                   capture_output=True)
    assert (clone / "experiments/exp1/data/test.parquet").read_bytes() == b"test rows of exp1"


def test_redelivery_creates_no_commit_tag_or_push(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    pushes = tmp_path / "pushes.log"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ncat >> {pushes}\necho push >> {pushes}.count\n")
    hook.chmod(0o755)
    config = _config(tmp_path, remote_url=str(remote))
    record = _record(tmp_path, "exp1")

    first = record_experiment(config, record, tmp_path)
    refs, objects = _git(tmp_path / "repo", "for-each-ref"), _git(tmp_path / "repo",
                                                                  "count-objects", "-v")
    remote_refs = _git(remote, "for-each-ref")
    again = record_experiment(config, record, tmp_path)

    assert first.created and first.pushed
    assert not again.created and not again.pushed
    assert again.commits == first.commits and again.release_tag == first.release_tag
    assert _git(tmp_path / "repo", "for-each-ref") == refs
    assert _git(tmp_path / "repo", "count-objects", "-v") == objects
    assert _git(remote, "for-each-ref") == remote_refs
    assert Path(f"{pushes}.count").read_text().count("push") == 1
    assert {line.split()[2] for line in pushes.read_text().splitlines()} == {
        "refs/heads/main", "refs/heads/exp/exp1", "refs/tags/exp-exp1",
        "refs/tags/penguins/species/model-v1.0.0"}
    assert _git(remote, "rev-parse", "exp/exp1") == first.sha
    assert first.remote == str(remote)


def test_interrupted_experiment_is_completed_not_duplicated(tmp_path: Path) -> None:
    config = _config(tmp_path)
    partial = record_experiment(config, _record(tmp_path, "exp1", stages=("data", "pipeline")),
                                tmp_path)
    full = record_experiment(config, _record(tmp_path, "exp1"), tmp_path)

    assert len(partial.commits) == 2 and full.created
    assert full.commits[:2] == partial.commits and len(full.commits) == 4
    assert _git(tmp_path / "repo", "rev-list", "--count", "main..exp/exp1") == "4"


def test_release_versions_per_project_and_target(tmp_path: Path) -> None:
    config = _config(tmp_path)
    tags = [record_experiment(config, _record(tmp_path, exp, project=p, target=t), tmp_path
                              ).release_tag
            for exp, p, t in (("a1", "penguins", "species"), ("a2", "penguins", "species"),
                              ("b1", "penguins", "body mass"), ("a3", "penguins", "species"))]
    assert tags == ["penguins/species/model-v1.0.0", "penguins/species/model-v1.1.0",
                    "penguins/body-mass/model-v1.0.0", "penguins/species/model-v1.2.0"]
    assert _git(tmp_path / "repo", "rev-parse", "exp-a2^{commit}") == _git(
        tmp_path / "repo", "rev-parse", "penguins/species/model-v1.1.0^{commit}")


def test_no_release_tag_when_not_a_release(tmp_path: Path) -> None:
    record = _record(tmp_path, "exp1")
    record = ExperimentRecord(record.experiment_id, record.project, record.target,
                              record.summary, record.stages, record.key_metrics, release=False)
    result = record_experiment(_config(tmp_path), record, tmp_path)
    assert result.release_tag == "" and _git(tmp_path / "repo", "tag", "-l") == "exp-exp1"


@pytest.mark.parametrize(("tags", "expected"), [
    ([], (1, 0, 0)),
    (["p/t/model-v1.0.0"], (1, 1, 0)),
    (["p/t/model-v1.0.0", "p/t/model-v1.9.0", "p/t/model-v1.10.0"], (1, 11, 0)),
    (["p/t/model-v2.0.3", "p/t/model-v1.4.0", "p/t/not-a-version"], (2, 1, 0)),
])
def test_next_release_version(tags: list[str], expected: tuple[int, int, int]) -> None:
    assert next_release_version(tags) == expected


def test_release_namespace_is_a_valid_ref() -> None:
    assert release_namespace("my project", "Body Mass (g)") == "my-project/Body-Mass-g"
    assert release_namespace("", "") == "default/target"
    assert release_namespace("..x.lock", "a..b") == "x/a.b"


def test_existing_worktree_index_and_head_are_untouched(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    repo = git.Repo.init(repo_dir, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Person")
        cfg.set_value("user", "email", "person@example.org")
    (repo_dir / "notes.txt").write_text("committed\n")
    repo.index.add(["notes.txt"])
    repo.index.commit("person's commit")
    (repo_dir / "notes.txt").write_text("edited but not committed\n")
    (repo_dir / "staged.txt").write_text("staged\n")
    repo.index.add(["staged.txt"])
    status, head = _git(repo_dir, "status", "--porcelain"), _git(repo_dir, "rev-parse", "HEAD")
    index = (repo_dir / ".git" / "index").read_bytes()

    result = record_experiment(_config(tmp_path), _record(tmp_path, "exp7"), tmp_path)

    assert _git(repo_dir, "status", "--porcelain") == status
    assert _git(repo_dir, "rev-parse", "HEAD") == head
    assert (repo_dir / ".git" / "index").read_bytes() == index
    assert not (repo_dir / "experiments").exists() and not (repo_dir / ".dvc").exists()
    assert _git(repo_dir, "rev-parse", f"{result.commits[0]}^") == head
    # the first stage brings the DVC project files the repository lacked
    assert {".dvc/config", ".dvcignore"} <= _changed(repo_dir, result.commits[0])


def _record_many(tmp: str, worker: int, barrier, queue) -> None:
    barrier.wait()
    for n in range(2):
        exp = f"w{worker}-e{n}"
        result = record_experiment(_config(Path(tmp)), _record(Path(tmp), exp, stages=(
            "data", "evaluation")), Path(tmp))
        queue.put((exp, result.sha, result.release_tag))


def test_concurrent_processes_record_different_experiments(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_record_many, args=(str(tmp_path), w, barrier, queue))
             for w in (0, 1)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in range(4)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    repo = tmp_path / "repo"
    assert _git(repo, "rev-list", "--count", "main") == "1"
    for exp, sha, _ in results:
        assert _git(repo, "rev-parse", f"exp/{exp}") == sha
    assert sorted(tag for _, _, tag in results) == [
        f"penguins/species/model-v1.{minor}.0" for minor in range(4)]
    assert _git(repo, "fsck", "--no-progress") == ""


def test_concurrent_redelivery_of_one_experiment_records_once(tmp_path: Path) -> None:
    config, record = _config(tmp_path), _record(tmp_path, "exp1")
    barrier, results = threading.Barrier(3), []

    def deliver() -> None:
        barrier.wait()
        results.append(record_experiment(config, record, tmp_path))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.created for r in results) == 1
    assert len({tuple(r.commits) for r in results}) == 1
    assert _git(tmp_path / "repo", "rev-list", "--count", "main..exp/exp1") == "4"


def test_repository_with_commits_but_no_main_is_refused(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path / "repo", initial_branch="master")
    (tmp_path / "repo" / "a.txt").write_text("a")
    repo.index.add(["a.txt"])
    repo.index.commit("init", author=git.Actor("a", "a@b"), committer=git.Actor("a", "a@b"))
    with pytest.raises(RepositoryStateError, match="no 'main' branch"):
        record_experiment(_config(tmp_path), _record(tmp_path, "exp1"), tmp_path)


def test_non_repository_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "something.txt").write_text("not a repo")
    with pytest.raises(RepositoryStateError, match="not a git repository"):
        record_experiment(_config(tmp_path), _record(tmp_path, "exp1"), tmp_path)


def _stage(files=None, dvc=None, name="data") -> list[StageCommit]:
    return [StageCommit(name, "t", files or {}, dvc or {})]


@pytest.mark.parametrize(("experiment_id", "stages", "author", "match"), [
    ("bad id", _stage({"a": b"x"}), "a <a@b>", "cannot name a git branch"),
    ("a..b", _stage({"a": b"x"}), "a <a@b>", "not a valid git ref component"),
    ("exp1", [], "a <a@b>", "no stages to commit"),
    ("exp1", _stage({"a": b"x"}, name="deploy"), "a <a@b>", "must be distinct names"),
    ("exp1", _stage({"a": b"x"}) * 2, "a <a@b>", "must be distinct names"),
    ("exp1", _stage(), "a <a@b>", "has no files"),
    ("exp1", _stage({"../escape": b"x"}), "a <a@b>", "clean relative POSIX path"),
    ("exp1", _stage({".git/config": b"x"}), "a <a@b>", "clean relative POSIX path"),
    ("exp1", _stage({"t.txt": "text"}), "a <a@b>", "expected bytes"),
    ("exp1", _stage({"d": b"x", "d/f": b"y"}), "a <a@b>", "also a directory"),
    ("exp1", _stage(dvc={"d.parquet": Path("/nonexistent/x")}), "a <a@b>", "is not a file"),
    ("exp1", _stage({"a": b"x"}), "no email here", "not of the form 'Name <email>'"),
])
def test_bad_input_is_rejected_before_touching_disk(tmp_path, experiment_id, stages, author,
                                                    match) -> None:
    record = ExperimentRecord(experiment_id, "p", "t", SUMMARY, stages)
    with pytest.raises(CommitInputError, match=match):
        record_experiment(_config(tmp_path, author=author), record, tmp_path)
    assert not (tmp_path / "repo").exists()
