"""A worker's trial: evaluation, pruning on real folds, crash safety; family planning."""

import optuna
import pytest
from optuna.trial import TrialState

from mlmesh_common.modeling import load_oof, load_prepared
from mlmesh_tune import (
    NothingToTuneError,
    ask_trial,
    candidate_for,
    evaluate_trial,
    family_for_trial,
    finished_result,
    make_pruner,
    next_family,
    open_study,
    pick_families,
    record_complete,
    record_failure,
    run_trial,
    worth_keeping,
    write_oof,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST_LGBM = {"n_estimators": 30, "num_leaves": 8, "early_stopping_rounds": 0}


def test_evaluate_trial_measures_the_model(cancer_prepared):
    out = evaluate_trial(
        cancer_prepared, "xgboost", {"n_estimators": 30, "max_depth": 3}, seed=0, device="cpu"
    )
    assert out.metric == "roc_auc" and out.value > 0.95 and len(out.fold_scores) == 3
    assert out.device == "cpu" and out.cv_std >= 0 and not out.truncated
    assert out.latency_ms > 0 and out.size_bytes > 1000
    assert out.cv.oof.shape == (len(out.cv.oof), 2)
    assert out.to_dict()["params"] == {"n_estimators": 30, "max_depth": 3}


def test_a_bad_trial_is_pruned_on_real_folds(tmp_path, cancer_prepared):
    data = load_prepared(cancer_prepared)
    study = open_study(
        "prune",
        f"journal://{tmp_path / 'p.log'}",
        direction="maximize",
        pruner=make_pruner("median", data.n_folds),
    )
    for _ in range(4):
        n, _ = ask_trial(study, "lightgbm", "binary")
        run = run_trial(study, n, data, "lightgbm", FAST_LGBM, seed=0, device="cpu")
        record_complete(study, n, candidate_for(run))
    # Leaves need 1000 rows: no split is possible, every fold scores AUC 0.5.
    n, _ = ask_trial(study, "lightgbm", "binary")
    bad = {**FAST_LGBM, "min_child_samples": 1000}
    run = run_trial(study, n, data, "lightgbm", bad, seed=0, device="cpu")
    assert run.state == "pruned" and "pruned after 1 fold" in run.error
    trial = study.get_trials()[n]
    assert trial.state == TrialState.PRUNED and trial.intermediate_values == {1: 0.5}
    assert finished_result(study, n).state == "pruned"


def test_worker_crash_after_tell_loses_and_duplicates_nothing(tmp_path, cancer_prepared):
    """The worker tells the study, then dies before emitting: the redelivered event finds
    the finished trial and re-emits the recorded candidate without evaluating again."""
    data = load_prepared(cancer_prepared)
    study = open_study("crash", f"journal://{tmp_path / 'c.log'}", direction="maximize")
    n, params = ask_trial(study, "linear", "binary")
    assert finished_result(study, n) is None  # not told yet: a redelivery evaluates it
    run = run_trial(study, n, data, "linear", params, seed=0, device="cpu")
    assert run.keep_oof  # the first trial is among the best so far
    oof = write_oof(run, tmp_path / "oof")
    values, classes = load_oof(oof)
    assert values.shape == (len(data.X_train), 2) and classes == [0, 1]
    ref = {"uri": "file:///oof.parquet", "sha256": "ab", "size_bytes": "10"}
    recorded = record_complete(study, n, candidate_for(run, oof_ref=ref, mlflow_run_id="r1"))
    # ... crash here; a fresh worker (another study handle) gets the event again:
    again = open_study("crash", f"journal://{tmp_path / 'c.log'}", direction="maximize")
    prior = finished_result(again, n)
    assert prior.already_finished and prior.candidate == recorded
    assert prior.candidate["oof_predictions"] == ref and prior.candidate["latency_ms"] > 0
    # A late duplicate tell is a no-op that returns the first record.
    assert record_complete(again, n, {**recorded, "cv_mean": 0.1}) == recorded
    assert len(again.get_trials()) == 1 and again.best_value == recorded["cv_mean"]
    n2, _ = ask_trial(study, "linear", "binary")
    record_failure(study, n2, "ValueError: boom")
    assert finished_result(again, n2).error == "ValueError: boom"


def test_worth_keeping():
    assert worth_keeping(0.9, [0.95, 0.8], maximize=True, keep=2)
    assert not worth_keeping(0.9, [0.95, 0.91], maximize=True, keep=2)
    assert worth_keeping(10.0, [12.0, 11.0], maximize=False, keep=1)
    with pytest.raises(ValueError, match="keep"):
        worth_keeping(1.0, [], maximize=True, keep=0)


def test_pick_and_plan_families():
    ranked = [{"family": f} for f in ("dummy", "autogluon", "catboost", "knn", "catboost")]
    assert pick_families(ranked, top_k=2) == ["catboost", "knn"]
    with pytest.raises(NothingToTuneError, match="no tunable family"):
        pick_families([{"family": "dummy"}])
    fams = ["lightgbm", "xgboost"]
    assert [family_for_trial(i, fams) for i in range(4)] == fams * 2
    assert next_family({"knn": 1, "lightgbm": 1}, ["knn", "lightgbm"], {}) == "knn"
    assert next_family({"knn": 24, "lightgbm": 3}, ["knn", "lightgbm"], {"knn": 24}) == "lightgbm"
    assert next_family({"knn": 24}, ["knn"], {"knn": 24}) is None
