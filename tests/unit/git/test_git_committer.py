"""Unit tests for mlmesh_git.committer against temporary repositories."""

from __future__ import annotations

import multiprocessing
import subprocess
import threading
from pathlib import Path

import git
import pytest

from mlmesh_git.committer import (
    README_TEXT,
    CommitInputError,
    RepositoryStateError,
    commit_experiment,
)

FILES = {
    "experiments/exp1/report.md": b"# Report\n\nroc_auc 0.97\n",
    "experiments/exp1/model_card.md": b"# Model card\n",
    "experiments/exp1/metrics.json": b'{"roc_auc": 0.97}\n',
}
MESSAGE = "exp1: lightgbm roc_auc=0.9700 (baseline 0.5000)"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _tree_files(repo: Path, ref: str) -> dict[str, bytes]:
    names = _git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {
        name: subprocess.run(
            ["git", "-C", str(repo), "show", f"{ref}:{name}"], check=True, capture_output=True
        ).stdout
        for name in names
    }


def test_creates_repository_branch_and_annotated_tag(tmp_path):
    repo = tmp_path / "experiments-repo"
    result = commit_experiment(
        repo, "exp1", FILES, message=MESSAGE, author="Mesh Bot <bot@example.org>"
    )

    assert result.created is True
    assert result.branch == "exp/exp1"
    assert result.tag == "exp-exp1"
    assert result.repo_path == repo.resolve()
    assert _git(repo, "rev-parse", "refs/heads/exp/exp1") == result.sha

    # main: exactly one commit with the README, checked out and clean
    assert _git(repo, "rev-list", "--count", "main") == "1"
    assert _tree_files(repo, "main") == {"README.md": README_TEXT.encode()}
    assert _git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert _git(repo, "status", "--porcelain") == ""
    assert (repo / "README.md").read_text() == README_TEXT
    assert not (repo / "experiments").exists()

    # branch: main + the files, one commit on top of main
    assert _tree_files(repo, result.sha) == {"README.md": README_TEXT.encode(), **FILES}
    assert _git(repo, "rev-parse", f"{result.sha}^") == _git(repo, "rev-parse", "main")
    assert _git(repo, "log", "-1", "--format=%an <%ae>|%cn|%B", result.sha) == (
        f"Mesh Bot <bot@example.org>|Mesh Bot|{MESSAGE}"
    )

    # tag: annotated, on the commit, carrying the message
    assert _git(repo, "cat-file", "-t", "refs/tags/exp-exp1") == "tag"
    assert _git(repo, "rev-parse", "exp-exp1^{commit}") == result.sha
    assert _git(repo, "tag", "-l", "--format=%(contents)", "exp-exp1") == MESSAGE


def test_same_files_again_is_a_no_op(tmp_path):
    repo = tmp_path / "r"
    first = commit_experiment(repo, "exp1", FILES, message=MESSAGE)
    refs_before = _git(repo, "for-each-ref")
    objects_before = _git(repo, "rev-list", "--all", "--count")

    again = commit_experiment(repo, "exp1", dict(FILES), message="a different message")

    assert again.created is False
    assert again.sha == first.sha
    assert (again.branch, again.tag) == (first.branch, first.tag)
    assert _git(repo, "for-each-ref") == refs_before
    assert _git(repo, "rev-list", "--all", "--count") == objects_before
    assert _git(repo, "tag", "-l", "--format=%(contents)", "exp-exp1") == MESSAGE


def test_different_files_add_a_commit_and_keep_the_tag(tmp_path):
    repo = tmp_path / "r"
    first = commit_experiment(repo, "exp1", FILES, message=MESSAGE)
    update = {"experiments/exp1/report.md": b"# Report v2\n", "experiments/exp1/extra.txt": b"x"}

    second = commit_experiment(repo, "exp1", update, message="exp1: report regenerated")

    assert second.created is True
    assert second.sha != first.sha
    assert _git(repo, "rev-parse", f"{second.sha}^") == first.sha
    assert _git(repo, "rev-parse", "refs/heads/exp/exp1") == second.sha
    assert _git(repo, "rev-parse", "exp-exp1^{commit}") == first.sha  # tag unchanged
    files = _tree_files(repo, second.sha)
    assert files["experiments/exp1/report.md"] == b"# Report v2\n"
    assert files["experiments/exp1/extra.txt"] == b"x"
    assert files["experiments/exp1/metrics.json"] == FILES["experiments/exp1/metrics.json"]
    assert _git(repo, "rev-list", "--count", "main") == "1"
    assert len(_git(repo, "tag", "-l").splitlines()) == 1


def test_existing_worktree_index_and_head_are_untouched(tmp_path):
    repo_dir = tmp_path / "work"
    repo = git.Repo.init(repo_dir, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Person")
        config.set_value("user", "email", "person@example.org")
    (repo_dir / "notes.txt").write_text("committed\n")
    repo.index.add(["notes.txt"])
    repo.index.commit("person's commit")
    (repo_dir / "notes.txt").write_text("edited but not committed\n")
    (repo_dir / "staged.txt").write_text("staged\n")
    repo.index.add(["staged.txt"])
    (repo_dir / "untracked.txt").write_text("untracked\n")
    status_before = _git(repo_dir, "status", "--porcelain")
    head_before = _git(repo_dir, "rev-parse", "HEAD")
    index_before = (repo_dir / ".git" / "index").read_bytes()

    result = commit_experiment(repo_dir, "exp7", {"exp7/report.md": b"r"}, message="exp7")

    assert _git(repo_dir, "status", "--porcelain") == status_before
    assert _git(repo_dir, "rev-parse", "HEAD") == head_before
    assert (repo_dir / ".git" / "index").read_bytes() == index_before
    assert (repo_dir / "notes.txt").read_text() == "edited but not committed\n"
    assert not (repo_dir / "exp7").exists()
    assert _git(repo_dir, "rev-parse", f"{result.sha}^") == head_before
    assert set(_tree_files(repo_dir, result.sha)) == {"notes.txt", "exp7/report.md"}


def _commit_many(repo: str, worker: int, barrier, queue) -> None:
    barrier.wait()
    for n in range(3):
        exp = f"w{worker}-e{n}"
        result = commit_experiment(
            Path(repo), exp, {f"{exp}/result.txt": exp.encode()}, message=f"{exp} done"
        )
        queue.put((exp, result.sha, result.created))


def test_concurrent_processes_commit_different_experiments(tmp_path):
    repo = tmp_path / "shared-repo"  # created by whichever process gets there first
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_commit_many, args=(str(repo), w, barrier, queue)) for w in (0, 1)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=30) for _ in range(6)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    assert len(results) == 6
    assert all(created for _, _, created in results)
    assert _git(repo, "rev-list", "--count", "main") == "1"
    for exp, sha, _ in results:
        assert _git(repo, "rev-parse", f"refs/heads/exp/{exp}") == sha
        assert _git(repo, "rev-parse", f"exp-{exp}^{{commit}}") == sha
        assert _tree_files(repo, sha)[f"{exp}/result.txt"] == exp.encode()
    assert _git(repo, "fsck", "--no-progress") == ""


def test_concurrent_redelivery_of_one_experiment_commits_once(tmp_path):
    repo = tmp_path / "r"
    commit_experiment(repo, "seed", {"seed.txt": b"s"}, message="seed")  # repo exists
    barrier = threading.Barrier(4)
    results = []

    def deliver() -> None:
        barrier.wait()
        results.append(commit_experiment(repo, "exp1", FILES, message=MESSAGE))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4
    assert sum(r.created for r in results) == 1
    assert len({r.sha for r in results}) == 1
    assert _git(repo, "rev-list", "--count", "main..exp/exp1") == "1"


def test_repository_with_commits_but_no_main_is_refused(tmp_path):
    repo_dir = tmp_path / "legacy"
    repo = git.Repo.init(repo_dir, initial_branch="master")
    (repo_dir / "a.txt").write_text("a")
    repo.index.add(["a.txt"])
    repo.index.commit("init", author=git.Actor("a", "a@b"), committer=git.Actor("a", "a@b"))
    with pytest.raises(RepositoryStateError, match="no 'main' branch"):
        commit_experiment(repo_dir, "exp1", FILES, message=MESSAGE)


def test_non_repository_directory_is_refused(tmp_path):
    (tmp_path / "something.txt").write_text("not a repo")
    with pytest.raises(RepositoryStateError, match="not a git repository"):
        commit_experiment(tmp_path, "exp1", FILES, message=MESSAGE)


@pytest.mark.parametrize(
    ("experiment_id", "files", "author", "match"),
    [
        ("bad id", FILES, "a <a@b>", "cannot name a git branch"),
        ("a..b", FILES, "a <a@b>", "not a valid git ref component"),
        ("x.lock", FILES, "a <a@b>", "not a valid git ref component"),
        ("exp1", {}, "a <a@b>", "no files to commit"),
        ("exp1", {"../escape.txt": b"x"}, "a <a@b>", "clean relative POSIX path"),
        ("exp1", {"/abs.txt": b"x"}, "a <a@b>", "clean relative POSIX path"),
        ("exp1", {".git/config": b"x"}, "a <a@b>", "clean relative POSIX path"),
        ("exp1", {"a//b.txt": b"x"}, "a <a@b>", "clean relative POSIX path"),
        ("exp1", {"text.txt": "not bytes"}, "a <a@b>", "expected bytes"),
        ("exp1", {"d": b"x", "d/f": b"y"}, "a <a@b>", "also a directory"),
        ("exp1", FILES, "no email here", "not of the form 'Name <email>'"),
    ],
)
def test_bad_input_is_rejected_before_touching_disk(tmp_path, experiment_id, files, author, match):
    repo = tmp_path / "r"
    with pytest.raises(CommitInputError, match=match):
        commit_experiment(repo, experiment_id, files, message=MESSAGE, author=author)
    assert not repo.exists()
