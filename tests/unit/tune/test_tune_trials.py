"""evaluate_trial, pick_families, family_for_trial; a tiny end-to-end tuning loop."""

import optuna
import pytest

from mlmesh_tune import (
    NothingToTuneError,
    TuningBudget,
    ask_trial,
    completed_candidates,
    direction_for,
    evaluate_trial,
    family_for_trial,
    open_study,
    pick_families,
    tell_trial,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_evaluate_trial(cancer_prepared):
    out = evaluate_trial(
        cancer_prepared, "xgboost", {"n_estimators": 30, "max_depth": 3}, seed=0, device="cpu"
    )
    assert out.metric == "roc_auc" and out.value > 0.95 and len(out.fold_scores) == 3
    assert out.device == "cpu" and out.cv_std >= 0 and not out.truncated
    assert out.to_dict()["params"] == {"n_estimators": 30, "max_depth": 3}


def test_pick_families_skips_untunable():
    ranked = [{"family": f} for f in ("dummy", "catboost", "linear", "catboost", "xgboost")]
    assert pick_families(ranked, top_k=2) == ["catboost", "linear"]
    assert pick_families(ranked, top_k=5) == ["catboost", "linear", "xgboost"]
    with pytest.raises(NothingToTuneError, match="no tunable family"):
        pick_families([{"family": "dummy"}])


def test_family_for_trial_round_robin():
    fams = ["lightgbm", "xgboost"]
    assert [family_for_trial(i, fams) for i in range(4)] == fams * 2
    with pytest.raises(NothingToTuneError):
        family_for_trial(0, [])


def test_small_tuning_loop(tmp_path, diabetes_prepared):
    """Coordinator loop: budget -> ask -> evaluate -> tell, until done."""
    budget = TuningBudget(max_trials=4, time_budget_s=60, parallelism=2)
    study = open_study(
        "loop", f"journal://{tmp_path / 'loop.log'}", direction=direction_for("rmse"), seed=0
    )
    families = ["linear", "lightgbm"]
    asked = finished = 0
    while not budget.is_done(asked, finished, 0.0):
        batch = []
        for _ in range(budget.next_batch_size(asked, finished, 0.0)):
            family = family_for_trial(asked, families)
            number, params = ask_trial(study, family, "regression")
            if family == "lightgbm":
                params = {**params, "n_estimators": 30}
            batch.append((number, family, params))
            asked += 1
        for number, family, params in batch:
            out = evaluate_trial(diabetes_prepared, family, params, seed=0, device="cpu")
            tell_trial(study, number, out.value, attrs={"cv_std": out.cv_std})
            finished += 1
    candidates = completed_candidates(study, "rmse")
    assert len(candidates) == 4
    assert {c["family"] for c in candidates} == set(families)
    assert all(40 < c["cv_mean"] < 90 for c in candidates)
    assert study.best_value == min(c["cv_mean"] for c in candidates)
