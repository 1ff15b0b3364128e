"""GitConfig from the environment, URL redaction, the environment files and key metrics."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from mlmesh_git.config import GitConfig, GitConfigError, redact_text, redact_url
from mlmesh_git.environment import environment_files, requirements_lock
from mlmesh_git.layout import ExperimentFacts, experiment_stages, key_metrics, summary_line


def test_defaults_put_the_dvc_remote_under_home(tmp_path: Path) -> None:
    config = GitConfig.from_env(tmp_path / "repo", tmp_path / "home", env={})
    assert config.dvc_remote == str(tmp_path / "home" / "dvc-remote")
    assert (config.remote_url, config.token, config.pull_request) == ("", "", None)
    assert config.author == "mlmesh <mlmesh@localhost>"


def test_everything_from_the_environment(tmp_path: Path) -> None:
    config = GitConfig.from_env(tmp_path / "repo", tmp_path, env={
        "MLMESH_DVC_REMOTE": "s3://bucket/dvc", "MLMESH_GIT_REMOTE": "https://git.example/r.git",
        "MLMESH_GIT_USERNAME": "bot", "MLMESH_GIT_TOKEN": "tok-123",
        "MLMESH_GIT_AUTHOR": "Bot <bot@example.org>", "MLMESH_GIT_PR_PROVIDER": "GitLab",
        "MLMESH_GIT_PR_API_URL": "https://gitlab.example/api/v4/", "MLMESH_GIT_PR_REPO": "g/r",
        "MLMESH_GIT_PR_TOKEN": "pr-tok-456"})
    assert config.dvc_remote == "s3://bucket/dvc" and config.token == "tok-123"
    assert config.pull_request is not None
    assert config.pull_request.provider == "gitlab"
    assert config.pull_request.api_url == "https://gitlab.example/api/v4"
    assert "tok-123" not in repr(config) and "pr-tok-456" not in repr(config)


@pytest.mark.parametrize(("env", "match"), [
    ({"MLMESH_GIT_REMOTE": "https://bot:tok@git.example/r.git"}, "carries a password"),
    ({"MLMESH_GIT_PR_PROVIDER": "bitbucket"}, "not supported"),
    ({"MLMESH_GIT_PR_PROVIDER": "github", "MLMESH_GIT_PR_REPO": "o/r"},
     "MLMESH_GIT_PR_API_URL, MLMESH_GIT_PR_TOKEN"),
    ({"MLMESH_GIT_PR_PROVIDER": "github", "MLMESH_GIT_PR_REPO": "o/r",
      "MLMESH_GIT_PR_API_URL": "http://api", "MLMESH_GIT_PR_TOKEN": "t"},
     "MLMESH_GIT_REMOTE is empty"),
])
def test_bad_settings_say_what_to_fix(tmp_path: Path, env: dict, match: str) -> None:
    with pytest.raises(GitConfigError, match=match) as raised:
        GitConfig.from_env(tmp_path, tmp_path, env=env)
    assert "tok@" not in str(raised.value)


def test_redaction() -> None:
    assert redact_url("https://bot:tok@git.example:8443/r.git") == "https://git.example:8443/r.git"
    assert redact_url("/srv/git/r.git") == "/srv/git/r.git"
    assert redact_text("fatal: https://bot:tok@h/r and tok again", "tok") == (
        "fatal: https://***@h/r and *** again")


def test_environment_files_describe_this_interpreter() -> None:
    files = environment_files()
    lock = requirements_lock()
    assert files["requirements.lock"].decode() == lock
    pins = {line.split("==")[0].lower() for line in lock.splitlines() if "==" in line}
    assert {"dvc", "gitpython", "httpx"} <= pins
    assert files[".python-version"].decode().strip() == platform.python_version()
    assert json.loads(files["platform.json"])["machine"] == platform.machine()


def _facts(tmp_path: Path, **overrides) -> ExperimentFacts:
    prepared = tmp_path / "prepared"
    prepared.mkdir(exist_ok=True)
    for name in ("train.parquet", "test.parquet", "folds.parquet"):
        (prepared / name).write_bytes(name.encode())
    (prepared / "preprocessor.joblib").write_bytes(b"pickle")
    (prepared / "prep.json").write_text('{"steps": ["impute"]}')
    values = dict(
        experiment_id="e9", config={"target": "y"}, prepared_dir=prepared, profile={"n": 1},
        winner_family="xgboost", winner_params={"max_depth": 3}, metric="rmse",
        metrics={"test_score": 1.23456, "baseline_test_score": 4.5,
                 "test_metrics": {"rmse": 1.23456, "r2": 0.81234}},
        leaderboard=[{"family": "xgboost", "cv_mean": 1.3}], environment={"x.lock": b"a==1\n"})
    return ExperimentFacts(**{**values, **overrides})


def test_stages_and_key_metrics_from_facts(tmp_path: Path) -> None:
    facts = _facts(tmp_path, reproduction=b"print(1)\n", reports={"report.md": b"# r"})
    stages = experiment_stages(facts)
    assert [s.stage for s in stages] == ["data", "pipeline", "evaluation", "report"]
    assert set(stages[0].dvc_files) == {f"experiments/e9/data/{n}.parquet"
                                        for n in ("train", "test", "folds")}
    assert "experiments/e9/pipeline/reproduce.py" in stages[1].files
    assert "experiments/e9/environment/x.lock" in stages[1].files
    csv_text = stages[2].files["experiments/e9/evaluation/leaderboard.csv"].decode()
    assert csv_text.splitlines()[1].startswith("1,xgboost,,1.3")
    assert key_metrics(facts) == {"model": "xgboost", "test rmse": "1.2346",
                                  "baseline rmse": "4.5000", "test r2": "0.8123"}
    assert summary_line(facts) == "xgboost test rmse=1.2346 (baseline 4.5000)"


def test_no_report_stage_without_docs_and_no_data_is_an_error(tmp_path: Path) -> None:
    assert [s.stage for s in experiment_stages(_facts(tmp_path))] == [
        "data", "pipeline", "evaluation"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no .parquet files"):
        experiment_stages(_facts(tmp_path, prepared_dir=empty))
