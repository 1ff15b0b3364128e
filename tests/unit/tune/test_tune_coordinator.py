"""The coordinator: config, idempotent asks (crash/resume), budgets, grid exhaustion, and a
small tuning loop end to end with its summary, Pareto front and report."""

import json

import optuna
import pytest

import mlmesh_tune.study as study_module
from mlmesh_common.ledger import open_ledger
from mlmesh_common.modeling import load_prepared
from mlmesh_tune import (
    KEEP_PER_FAMILY,
    StrategyError,
    TuneConfig,
    ask_batch,
    ask_trial,
    candidate_for,
    is_done,
    open_studies,
    pareto_indices,
    record_complete,
    run_trial,
    summarize,
    tell_trial,
    write_report,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _config(tmp_path, **kw):
    args = {
        "study_prefix": "mlmesh-exp",
        "storage_url": f"journal://{tmp_path / 'optuna.log'}",
        "metric": "roc_auc",
        "problem_type": "binary",
        "families": ["knn", "lightgbm"],
        "max_trials": 60,
        "time_budget_s": 600,
        "started_at": 1000.0,
        **kw,
    }
    return TuneConfig.create(**args)


def test_config(tmp_path):
    config = _config(tmp_path, objectives=["score"])
    assert config.samplers == {"knn": "grid", "lightgbm": "tpe"}
    assert config.trial_limit("knn") == 24 and config.trial_limit("lightgbm") is None
    assert TuneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.directions == ["maximize"] and config.deadline == 1600.0
    multi = _config(tmp_path, objectives=["score", "latency"], max_trials=4)
    assert multi.multi_objective and multi.samplers == {"knn": "tpe", "lightgbm": "tpe"}
    with pytest.raises(StrategyError, match="unknown pruner"):
        _config(tmp_path, pruner="eager")


def test_coordinator_resumes_from_study_and_ledger(tmp_path):
    """A coordinator that dies after asking (before saving or emitting) re-emits the same
    trials on the redelivered event, and asks nothing twice."""
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    config = _config(tmp_path)
    ledger.state_init("tune:exp", {"config": config.to_dict()})
    first = ask_batch(config, open_studies(config), "event-1", n_finished=0, now=1001.0)
    assert [t.family for t in first] == ["knn", "lightgbm"]
    # -- crash: nothing emitted; a new process starts from the ledger and the studies.
    study_module._storages.clear()
    config = TuneConfig.from_dict(ledger.state_get("tune:exp")["config"])
    studies = open_studies(config)
    again = ask_batch(config, studies, "event-1", n_finished=0, now=1002.0)
    assert again == first
    assert sum(len(s.get_trials()) for s in studies.values()) == 2
    # Another event while both trials are in flight asks nothing; one result frees a slot.
    assert ask_batch(config, studies, "event-2", n_finished=0, now=1003.0) == []
    # A crash half-way through a batch: the asked trial is reused, the rest asked.
    ask_trial(studies["knn"], "knn", "binary", tag="event-3:0", grid=True)
    third = ask_batch(config, studies, "event-3", n_finished=2, now=1004.0)
    assert len(third) == 2 and third[0].family == "knn" and third[0].number == 1
    assert sum(len(s.get_trials()) for s in studies.values()) == 4
    assert [t.slot for t in first] == [0, 1] and [t.slot for t in again] == [0, 1]


def test_a_trial_takes_the_slot_of_the_trial_that_finished(tmp_path):
    """Slots pick the partition, hence the worker: the worker that finished a trial gets the
    experiment's next one, while the other keeps its own."""
    config = _config(tmp_path)
    studies = open_studies(config)
    first = ask_batch(config, studies, "e1", n_finished=0, now=1001.0)
    assert [t.slot for t in first] == [0, 1]
    tell_trial(studies[first[1].family], first[1].number, 0.9)  # slot 1 finishes first
    second = ask_batch(config, studies, "e2", n_finished=1, now=1002.0)
    assert [t.slot for t in second] == [1]
    tell_trial(studies[first[0].family], first[0].number, 0.8)
    third = ask_batch(config, studies, "e3", n_finished=2, now=1003.0)
    assert [t.slot for t in third] == [0]
    # The redelivered event gets its trial back with the same slot.
    assert ask_batch(config, studies, "e3", n_finished=2, now=1004.0) == third


def test_budget_by_trials_and_wall_time(tmp_path):
    config = _config(tmp_path, max_trials=3, families=["lightgbm"])
    studies = open_studies(config)
    assert ask_batch(config, studies, "late", n_finished=0, now=1600.0) == []  # deadline
    tickets = ask_batch(config, studies, "e1", n_finished=0, now=1001.0)
    assert len(tickets) == 2 and not is_done(config, studies, n_finished=0, now=1001.0)
    assert len(ask_batch(config, studies, "e2", n_finished=2, now=1002.0)) == 1  # 3 = max
    assert ask_batch(config, studies, "e3", n_finished=2, now=1003.0) == []
    assert is_done(config, studies, n_finished=3, now=1004.0)  # all trials in
    # Past the deadline: done once the trials in flight are in, or after the grace time.
    assert not is_done(config, studies, n_finished=2, now=1601.0)
    assert is_done(config, studies, n_finished=2, now=1600.0 + 151.0)


def test_grid_search_stops_when_the_grid_is_exhausted(tmp_path):
    config = _config(tmp_path, families=["svm_linear"], sampler="grid", parallelism=10)
    studies = open_studies(config)
    tickets = ask_batch(config, studies, "e1", n_finished=0, now=1001.0)
    assert len(tickets) == 5  # the grid of C, though 10 could run
    assert len({t.params["C"] for t in tickets}) == 5
    for t in tickets:
        tell_trial(studies["svm_linear"], t.number, 0.9)
    assert is_done(config, studies, n_finished=5, now=1002.0)


def _tune(config, data, params_for=lambda p: p):
    studies = open_studies(config, n_folds=data.n_folds)
    finished, tag = 0, 0
    while not is_done(config, studies, n_finished=finished, now=1001.0):
        tag += 1
        for t in ask_batch(config, studies, f"e{tag}", n_finished=finished, now=1001.0):
            study = studies[t.family]
            run = run_trial(
                study,
                t.number,
                data,
                t.family,
                params_for(t.params),
                seed=0,
                device="cpu",
                now=1001.0,
            )
            if run.state == "complete":
                record_complete(study, t.number, candidate_for(run))
            finished += 1
    return studies


def test_multi_objective_tuning_keeps_the_pareto_front(tmp_path, cancer_prepared):
    data = load_prepared(cancer_prepared)
    config = _config(
        tmp_path,
        objectives=["score", "latency"],
        families=["linear", "knn"],
        max_trials=8,
        parallelism=4,
    )
    studies = _tune(config, data)
    summary = summarize(
        config, studies, trained=[{"family": "dummy", "cv_mean": 0.5, "source": "train"}]
    )
    assert len(summary.measured) == summary.counts["complete"] >= 6
    front = summary.pareto_front
    assert front and all(c["pareto_optimal"] for c in front)
    points = [(c["cv_mean"], c["latency_ms"]) for c in summary.measured]
    on_front = {(c["family"], c["trial_number"]) for c in front}
    expected = {
        (summary.measured[i]["family"], summary.measured[i]["trial_number"])
        for i in pareto_indices(points, ["maximize", "minimize"])
    }
    assert on_front == expected
    assert on_front <= {(c["family"], c["trial_number"]) for c in summary.kept}
    assert [c["latency_ms"] for c in front] == sorted(c["latency_ms"] for c in front)
    assert summary.best["cv_mean"] == max(c["cv_mean"] for c in summary.measured)
    report = write_report(
        studies,
        tmp_path / "report",
        metric="roc_auc",
        maximize=True,
        pareto=front,
        points=summary.measured,
    )
    assert {"history.png", "pareto.png"} <= set(report["plots"])
    assert all((tmp_path / "report" / p).stat().st_size > 5000 for p in report["plots"])


def test_single_objective_tuning_prunes_and_reports(tmp_path, cancer_prepared):
    data = load_prepared(cancer_prepared)
    config = _config(tmp_path, families=["lightgbm"], max_trials=10, parallelism=1, pruner="median")

    def fast(params):
        return {
            **params,
            "n_estimators": min(params["n_estimators"], 40),
            "early_stopping_rounds": 0,
        }

    studies = _tune(config, data, fast)
    summary = summarize(config, studies)
    counts = summary.counts
    assert counts["complete"] + counts["pruned"] == 10 and counts["running"] == 0
    assert len(summary.kept) == min(KEEP_PER_FAMILY, counts["complete"])
    assert all(c["oof_predictions"] is None for c in summary.kept)  # no store in this test
    assert summary.pareto_front == []
    report = write_report(studies, tmp_path / "r", metric="roc_auc", maximize=True)
    history = (tmp_path / "r" / "history.csv").read_text().splitlines()
    assert len(history) == 11 and "params_learning_rate" in history[0]
    assert report["importance"]["lightgbm"]
    assert abs(sum(report["importance"]["lightgbm"].values()) - 1.0) < 1e-6
    assert (tmp_path / "r" / "importance_lightgbm.png").exists()


def test_pareto_indices():
    pts = [(0.9, 5.0), (0.95, 10.0), (0.8, 6.0), (0.95, 12.0), (0.7, 1.0)]
    assert pareto_indices(pts, ["maximize", "minimize"]) == [0, 1, 4]
    assert pareto_indices([(1.0,), (2.0,)], ["minimize"]) == [0]
    assert pareto_indices([], ["maximize"]) == []
    with pytest.raises(ValueError, match="one per direction"):
        pareto_indices([(1.0, 2.0)], ["maximize"])
