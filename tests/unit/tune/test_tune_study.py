"""open_study / ask_trial / tell_trial on journal and SQLite storage."""

import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mlmesh_tune import (
    StorageUrlError,
    StudyConflictError,
    TrialResultError,
    ask_trial,
    completed_candidates,
    direction_for,
    open_study,
    tell_trial,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_two_handles_on_one_journal_share_trials(tmp_path):
    url = f"journal://{tmp_path / 'studies' / 'tune.log'}"
    a = open_study("exp-1-lightgbm", url, direction="maximize", seed=0)
    b = open_study("exp-1-lightgbm", url, direction="maximize", seed=0)
    n0, p0 = ask_trial(a, "lightgbm", "binary")
    assert [t.number for t in b.get_trials()] == [n0]
    tell_trial(a, n0, 0.91, attrs={"cv_std": 0.02})
    seen = b.get_trials()[0]
    assert seen.state == TrialState.COMPLETE and seen.value == 0.91
    assert seen.user_attrs == {
        "family": "lightgbm",
        "problem_type": "binary",
        "params": p0,
        "cv_std": 0.02,
    }
    n1, _ = ask_trial(b, "xgboost", "binary")
    tell_trial(b, n1, 0.95)
    assert n1 == n0 + 1
    assert a.best_trial.number == n1
    # A different study name in the same file is independent.
    other = open_study("exp-2", url, direction="minimize", seed=0)
    assert other.get_trials() == []


def test_reopened_study_does_not_replay_suggestions(tmp_path):
    url = f"journal://{tmp_path / 'tune.log'}"
    first = open_study("s", url, direction="maximize", seed=0)
    _, p0 = ask_trial(first, "lightgbm", "binary")
    again = open_study("s", url, direction="maximize", seed=0)
    _, p1 = ask_trial(again, "lightgbm", "binary")
    assert p0 != p1


_WORKER = """
import sys
from mlmesh_tune import ask_trial, open_study, tell_trial
study = open_study("shared", sys.argv[1], direction="maximize", seed=int(sys.argv[2]))
for i in range(5):
    n, params = ask_trial(study, "linear", "binary")
    tell_trial(study, n, params["C"])
"""


def test_several_processes_share_a_journal(tmp_path):
    url = f"journal://{tmp_path / 'tune.log'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, url, str(seed)], env=env)
        for seed in (1, 2)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    trials = open_study("shared", url, direction="maximize", seed=0).get_trials()
    assert sorted(t.number for t in trials) == list(range(10))
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_sqlite_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'optuna.db'}"
    study = open_study("sq", url, direction=direction_for("rmse"), seed=3)
    n, _ = ask_trial(study, "catboost", "regression")
    tell_trial(study, n, 55.0)
    again = open_study("sq", url, direction="minimize", seed=3)
    assert again.best_value == 55.0
    with pytest.raises(StudyConflictError, match="already exists with direction minimize"):
        open_study("sq", url, direction="maximize", seed=3)


def test_bad_storage_urls(tmp_path):
    with pytest.raises(StorageUrlError, match="absolute"):
        open_study("s", "journal://relative/tune.log", direction="maximize", seed=0)
    with pytest.raises(StorageUrlError, match="unsupported"):
        open_study("s", str(tmp_path / "tune.log"), direction="maximize", seed=0)
    with pytest.raises(StudyConflictError, match="direction"):
        open_study("s", f"journal://{tmp_path}/t.log", direction="up", seed=0)


def test_tell_trial_states_and_idempotency(tmp_path):
    study = open_study("t", f"journal://{tmp_path / 't.log'}", direction="maximize", seed=0)
    n, _ = ask_trial(study, "linear", "multiclass")
    with pytest.raises(TrialResultError, match="no value"):
        tell_trial(study, n, None)
    tell_trial(study, n, 0.8, "complete", attrs={"cv_std": 0.1})
    again = tell_trial(study, n, 0.1, "fail", attrs={"cv_std": 9.0})  # redelivery: no-op
    assert again.state == TrialState.COMPLETE and again.value == 0.8
    assert again.user_attrs["cv_std"] == 0.1

    n_fail, _ = ask_trial(study, "linear", "multiclass")
    assert tell_trial(study, n_fail, None, "fail").state == TrialState.FAIL
    n_nan, _ = ask_trial(study, "linear", "multiclass")
    assert tell_trial(study, n_nan, math.nan).state == TrialState.FAIL
    n_pruned, _ = ask_trial(study, "linear", "multiclass")
    assert tell_trial(study, n_pruned, None, TrialState.PRUNED).state == TrialState.PRUNED

    with pytest.raises(TrialResultError, match="no trial 99"):
        tell_trial(study, 99, 0.5)
    n_last, _ = ask_trial(study, "linear", "multiclass")
    with pytest.raises(TrialResultError, match="unknown trial state"):
        tell_trial(study, n_last, 0.5, "done")


def test_failed_suggestion_does_not_leave_a_running_trial(tmp_path):
    study = open_study("f", f"journal://{tmp_path / 'f.log'}", direction="maximize", seed=0)
    with pytest.raises(ValueError, match="no search space"):
        ask_trial(study, "dummy", "binary")
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


def test_completed_candidates(tmp_path):
    study = open_study("c", f"journal://{Path(tmp_path) / 'c.log'}", direction="maximize", seed=0)
    n0, p0 = ask_trial(study, "xgboost", "binary")
    n1, _ = ask_trial(study, "xgboost", "binary")
    tell_trial(study, n0, 0.93, attrs={"cv_std": 0.01})
    tell_trial(study, n1, None, "fail")
    assert completed_candidates(study, "roc_auc") == [
        {
            "family": "xgboost",
            "params": p0,
            "source": "tune",
            "cv_mean": 0.93,
            "cv_std": 0.01,
            "metric": "roc_auc",
            "trial_number": n0,
        }
    ]
