"""Pushing with credentials to a local smart-HTTP remote, and pull/merge requests against a
local fake GitHub / GitLab API."""

from __future__ import annotations

import base64
import logging
import subprocess
from pathlib import Path

import pytest
from git_fakes import fake_pull_request_api, git_http_remote

from mlmesh_git.config import GitConfig, PullRequestConfig
from mlmesh_git.pull_requests import PullRequestError, open_pull_request
from mlmesh_git.repository import (
    ExperimentRecord,
    RepositoryStateError,
    StageCommit,
    record_experiment,
)

TOKEN = "ghp_s3cretT0kenValue1234567890"
USER = "mesh-bot"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _record(tmp: Path, experiment_id: str = "exp1") -> ExperimentRecord:
    data = tmp / f"{experiment_id}-train.parquet"
    data.write_bytes(b"rows")
    root = f"experiments/{experiment_id}"
    return ExperimentRecord(
        experiment_id, "penguins", "species", "lightgbm test accuracy=0.9800 (baseline 0.4400)",
        [StageCommit("data", "configuration and data", {f"{root}/config.json": b"{}"},
                     {f"{root}/data/train.parquet": data}),
         StageCommit("evaluation", "metrics", {f"{root}/metrics.json": b"{}"})],
        {"test accuracy": "0.9800"})


def _all_text_under(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_push_over_https_uses_token_and_stores_it_nowhere(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with git_http_remote(tmp_path / "served", USER, TOKEN) as remote:
        config = GitConfig(repo_path=tmp_path / "repo", dvc_remote=str(tmp_path / "dvc"),
                           remote_url=remote.url, username=USER, token=TOKEN)
        (tmp_path / "scratch").mkdir()
        result = record_experiment(config, _record(tmp_path), tmp_path / "scratch")
        again = record_experiment(config, _record(tmp_path), tmp_path / "scratch")

    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert expected in remote.authorizations  # the server got the credentials
    assert result.pushed and not again.pushed
    assert _git(remote.bare, "rev-parse", "exp/exp1") == result.sha
    assert _git(remote.bare, "rev-parse", "penguins/species/model-v1.0.0^{commit}") == result.sha
    assert result.remote == remote.url and TOKEN not in repr(result) and TOKEN not in repr(config)
    repo_git = tmp_path / "repo" / ".git"
    assert TOKEN not in (repo_git / "config").read_text()
    assert TOKEN not in _all_text_under(repo_git)
    assert TOKEN not in caplog.text
    assert not list((tmp_path / "scratch").iterdir())  # askpass script removed


def test_wrong_token_fails_with_a_message_without_the_token(tmp_path: Path) -> None:
    with git_http_remote(tmp_path / "served", USER, TOKEN) as remote:
        config = GitConfig(repo_path=tmp_path / "repo", dvc_remote=str(tmp_path / "dvc"),
                           remote_url=remote.url, username=USER, token="wrong-" + TOKEN)
        with pytest.raises(RepositoryStateError, match="MLMESH_GIT_TOKEN") as raised:
            record_experiment(config, _record(tmp_path), tmp_path)
    assert TOKEN not in str(raised.value)
    assert _git(remote.bare, "for-each-ref") == ""


def test_diverged_remote_branch_is_refused_not_overwritten(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    other = GitConfig(repo_path=tmp_path / "other", dvc_remote=str(tmp_path / "dvc"),
                      remote_url=str(bare))
    record_experiment(other, _record(tmp_path), tmp_path)  # another repository pushed exp1
    theirs = _git(bare, "rev-parse", "exp/exp1")
    mine = GitConfig(repo_path=tmp_path / "mine", dvc_remote=str(tmp_path / "dvc"),
                     remote_url=str(bare), author="someone else <x@y>")
    with pytest.raises(RepositoryStateError, match="was refused"):
        record_experiment(mine, _record(tmp_path), tmp_path)
    assert _git(bare, "rev-parse", "exp/exp1") == theirs


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_pull_request_opened_once_with_auth_and_payload(tmp_path: Path, provider: str) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    with fake_pull_request_api(provider, "acme/experiments", TOKEN) as api:
        config = GitConfig(
            repo_path=tmp_path / "repo", dvc_remote=str(tmp_path / "dvc"), remote_url=str(bare),
            pull_request=PullRequestConfig(provider, api.url, "acme/experiments", TOKEN))
        first = record_experiment(config, _record(tmp_path), tmp_path)
        again = record_experiment(config, _record(tmp_path), tmp_path)

    assert len(api.created) == 1
    assert first.pull_request_url == again.pull_request_url == api.created[0]["html_url"]
    created = api.created[0]
    if provider == "github":
        assert (created["head"], created["base"]) == ("exp/exp1", "main")
        body = created["body"]
        auth = [h["authorization"] for m, _, h in api.requests if m == "POST"]
        assert auth == [f"Bearer {TOKEN}"]
    else:
        assert (created["source_branch"], created["target_branch"]) == ("exp/exp1", "main")
        body = created["description"]
        auth = [h["private-token"] for m, _, h in api.requests if m == "POST"]
        assert auth == [TOKEN]
    assert "exp1" in created["title"] and "accuracy=0.9800" in created["title"]
    assert "penguins/species/model-v1.0.0" in body and first.sha in body
    assert TOKEN not in repr(first)


def test_pull_request_with_a_bad_token_says_what_to_fix(tmp_path: Path) -> None:
    with fake_pull_request_api("github", "acme/experiments", TOKEN) as api:
        config = PullRequestConfig("github", api.url, "acme/experiments", "bad-token-value")
        with pytest.raises(PullRequestError, match="401.*MLMESH_GIT_PR_TOKEN") as raised:
            open_pull_request(config, "exp/exp1", "t", "b")
    assert "bad-token-value" not in str(raised.value) and not api.created


def test_pull_request_for_an_unknown_repository_is_a_404_error(tmp_path: Path) -> None:
    with fake_pull_request_api("gitlab", "acme/experiments", TOKEN) as api:
        config = PullRequestConfig("gitlab", api.url, "acme/other", TOKEN)
        with pytest.raises(PullRequestError, match="404.*MLMESH_GIT_PR_REPO"):
            open_pull_request(config, "exp/exp1", "t", "b")
