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
    fold_reporter,
    load_study,
    make_pruner,
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
    with pytest.raises(StudyConflictError, match="already exists with directions"):
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


def test_completed_candidates_are_the_recorded_ones(tmp_path):
    study = open_study("c", f"journal://{Path(tmp_path) / 'c.log'}", direction="maximize", seed=0)
    n0, _ = ask_trial(study, "xgboost", "binary")
    n1, _ = ask_trial(study, "xgboost", "binary")
    tell_trial(study, n0, 0.93, attrs={"candidate": {"family": "xgboost", "cv_mean": 0.93}})
    tell_trial(study, n1, None, "fail")
    assert completed_candidates(study) == [
        {"family": "xgboost", "cv_mean": 0.93, "trial_number": n0}
    ]


def test_tagged_asks_are_idempotent(tmp_path):
    study = open_study("i", f"journal://{tmp_path / 'i.log'}", direction="maximize", seed=0)
    first = ask_trial(study, "knn", "binary", tag="event-1:0", attrs={"deadline": 5.0})
    again = ask_trial(study, "knn", "binary", tag="event-1:0")
    other = ask_trial(study, "knn", "binary", tag="event-1:1")
    assert first == again and other[0] == first[0] + 1
    assert len(study.get_trials()) == 2
    assert study.get_trials()[0].user_attrs["deadline"] == 5.0


def test_multi_objective_values(tmp_path):
    study = open_study(
        "mo", f"journal://{tmp_path / 'mo.log'}", directions=["maximize", "minimize"], seed=0
    )
    n, _ = ask_trial(study, "knn", "binary")
    with pytest.raises(TrialResultError, match="needs 2 values"):
        tell_trial(study, n, 0.9)
    assert tell_trial(study, n, [0.9, 0.02]).values == [0.9, 0.02]
    with pytest.raises(StudyConflictError, match="directions"):
        open_study("mo", f"journal://{tmp_path / 'mo.log'}", direction="maximize")


def test_fold_reporter_prunes_a_bad_trial(tmp_path):
    study = open_study(
        "p",
        f"journal://{tmp_path / 'p.log'}",
        direction="maximize",
        pruner=make_pruner("median", 5),
    )
    for _ in range(4):
        n, _ = ask_trial(study, "knn", "binary")
        report = fold_reporter(study, n)
        for fold in range(5):
            report(fold, 0.9 + fold / 100)
        tell_trial(study, n, 0.92)
    good, _ = ask_trial(study, "knn", "binary")
    fold_reporter(study, good)(0, 0.95)  # above the median: goes on
    bad, _ = ask_trial(study, "knn", "binary")
    with pytest.raises(optuna.TrialPruned, match="pruned after 1 fold"):
        fold_reporter(study, bad)(0, 0.5)
    assert study.get_trials()[bad].intermediate_values == {1: 0.5}
    # Several objectives cannot prune: the reporter does nothing.
    mo = open_study("mo", f"journal://{tmp_path / 'p.log'}", directions=["maximize"] * 2)
    n, _ = ask_trial(mo, "knn", "binary")
    fold_reporter(mo, n)(0, 0.0)


def test_postgresql_storage(postgres_url):
    """PostgreSQL (the at-scale storage): a plain postgresql:// URL works with psycopg 3."""
    study = open_study("pg", postgres_url, direction="minimize", seed=1)
    n, params = ask_trial(study, "lightgbm", "regression", tag="e:0")
    tell_trial(study, n, 42.0, attrs={"candidate": {"cv_mean": 42.0}})
    other = load_study("pg", postgres_url)
    assert other.best_value == 42.0 and other.best_trial.user_attrs["params"] == params
    assert ask_trial(other, "lightgbm", "regression", tag="e:0")[0] == n
    with pytest.raises(TrialResultError, match="no study"):
        load_study("missing", postgres_url)
